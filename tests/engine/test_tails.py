"""The Student-t base: exact t densities per feature and state, a normalised flow on it, t-distributed samples."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.testing import assert_close

from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.tails import INITIAL_DOF, MAX_DOF, MIN_DOF, StudentTBase

from .conftest import F64, generator, randomise_


def t_base(n_features, context_size, scale=0.0):
    base = StudentTBase(n_features, context_size).to(F64)
    initialize_parameters(base, generator())
    return randomise_(base, scale, add=True) if scale else base


def test_log_prob_is_the_sum_of_scipy_t_log_densities_per_state():
    base = t_base(3, 4, scale=1.5)
    states = torch.eye(4, dtype=F64)
    z = torch.randn(10, 1, 3, generator=generator(1), dtype=F64) * 3.0
    nu = base.degrees_of_freedom(states).detach().numpy()  # (K, d)
    assert nu.shape == (4, 3) and np.all((nu > MIN_DOF) & (nu < MAX_DOF)) and np.ptp(nu) > 1.0
    expected = stats.t.logpdf(z.numpy(), nu).sum(axis=-1)  # (10, K)
    assert_close(base.log_prob(z, states), torch.as_tensor(expected), atol=1e-10, rtol=0)


def test_starts_at_the_initial_degrees_of_freedom_for_every_state():
    base = t_base(2, 3)
    assert_close(base.degrees_of_freedom(torch.eye(3, dtype=F64)), torch.full((3, 2), INITIAL_DOF, dtype=F64))
    assert_close(StudentTBase(2).degrees_of_freedom(None), torch.full((2,), INITIAL_DOF))


def test_one_feature_flow_on_a_t_base_integrates_to_one():
    flow = randomise_(spline_flow(1, context_size=2, n_layers=2, hidden_size=8, tails="student_t").to(F64), 0.5)
    with torch.no_grad():
        flow.base.dof_bias.fill_(-1.5)  # nu of about 2 to 6: heavy tails
    grid = torch.linspace(-1000.0, 1000.0, 200_001, dtype=F64).unsqueeze(-1)
    for context in torch.eye(2, dtype=F64):
        nu = flow.base.degrees_of_freedom(context).item()
        assert nu < 10  # heavy tails: the integral's range must hold them
        density = flow(context).log_prob(grid).exp()
        assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=2e-3)


def test_samples_follow_each_states_t_distribution():
    base = t_base(2, 2, scale=1.5)
    states = torch.eye(2, dtype=F64)
    contexts = states.repeat_interleave(4000, dim=0)
    draws = base.sample((8000,), contexts, generator(3), torch.zeros((), dtype=F64))
    assert draws.shape == (8000, 2)
    assert torch.equal(draws, base.sample((8000,), contexts, generator(3), torch.zeros((), dtype=F64)))
    nu = base.degrees_of_freedom(states).detach().numpy()
    for k in range(2):
        for j in range(2):
            sample = draws[4000 * k : 4000 * (k + 1), j].numpy()
            assert stats.kstest(sample, stats.t(nu[k, j]).cdf).pvalue > 1e-3


def test_sampling_leaves_the_global_stream_alone():
    state = torch.random.get_rng_state()
    t_base(2, 0).sample((5,), None, generator(), torch.zeros((), dtype=F64))
    assert torch.equal(state, torch.random.get_rng_state())


def test_an_extreme_point_costs_log_not_square_and_has_a_bounded_gradient():
    base = t_base(1, 0)
    z = torch.tensor([[1e8]], dtype=F64, requires_grad=True)
    log_prob = base.log_prob(z, None)
    (gradient,) = torch.autograd.grad(log_prob.sum(), z)
    assert log_prob.item() == pytest.approx(stats.t.logpdf(1e8, INITIAL_DOF), rel=1e-9)
    assert log_prob.item() > -(INITIAL_DOF + 1) * math.log(1e8)  # a normal base: -5e15
    assert abs(gradient.item()) == pytest.approx((INITIAL_DOF + 1) / 1e8, rel=1e-6)


def test_start_at_sets_each_states_degrees_of_freedom():
    base = t_base(2, 3, scale=1.0)
    wanted = torch.tensor([[2.0, 300.0], [30.0, 5.0], [1.5, 100.0]], dtype=F64)
    base.start_at(wanted)
    assert_close(base.degrees_of_freedom(torch.eye(3, dtype=F64)), wanted)
