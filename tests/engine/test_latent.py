"""The K-state latent model, in float64: its density, both objectives, the Gaussian-mixture start, sampling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import multivariate_normal
from torch.testing import assert_close

from nvf_sklearn._engine.base import CHUNK_VALUES
from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.latent import LatentFlowDensity, gumbel_softmax_straight_through

from .conftest import (
    F64,
    PROGRESS,
    assert_every_parameter_has_a_gradient,
    assert_uniform_training_inputs,
    generator,
    randomise_,
    small_spline_flow,
    tabular_points,
)

K, D = 3, 2


def _model(objective="exact", state_affine="full", lu_linear=True, learn_weights=True, n_features=D):
    flow = small_spline_flow(n_features, K, lu_linear=lu_linear, state_affine=state_affine)
    model = LatentFlowDensity(flow, K, encoder_hidden_sizes=(8,), objective=objective, learn_weights=learn_weights)
    return model.double()


def _randomised(objective="exact", state_affine="full"):
    return randomise_(_model(objective, state_affine), 0.25)


# ---------------------------------------------------------------- density
@pytest.mark.parametrize("state_affine", [None, "diagonal", "full"])
def test_log_joint_equals_a_loop_over_states(state_affine):
    model, x = _randomised(state_affine=state_affine), tabular_points(8, D)
    log_joint = model.log_joint(x)
    assert log_joint.shape == (8, K)
    for k in range(K):
        state = F.one_hot(torch.full((8,), k), K).to(F64)
        expected = model.log_weights()[k] + model.flow(state).log_prob(x)
        assert_close(log_joint[:, k], expected, atol=1e-12, rtol=0)


def test_log_weights_are_normalised():
    model = _randomised()
    assert_close(model.log_weights().exp().sum(), torch.ones((), dtype=F64), atol=1e-15, rtol=0)
    assert_close(model.log_weights().exp(), torch.softmax(model.weight_logits, -1), atol=1e-15, rtol=0)
    assert (model.log_weights() - model.log_weights().mean()).abs().max() > 0.05  # not uniform: a real test


def test_fixed_weights_are_a_buffer_and_stay_uniform():
    model = _model(learn_weights=False)
    assert "weight_logits" not in dict(model.named_parameters())
    maps = torch.eye(D, dtype=F64).expand(K, D, D)
    model.initialize_states(torch.zeros(K, D, dtype=F64), maps, torch.tensor([0.5, 0.3, 0.2], dtype=F64))
    assert_close(model.log_weights().exp(), torch.full((K,), 1 / K, dtype=F64), atol=1e-15, rtol=0)


def test_exact_training_loss_is_minus_the_log_likelihood():
    model, x = _randomised(), tabular_points(8, D)
    expected = -model.log_joint(x).logsumexp(-1)
    assert model.training_inputs(torch.arange(8), generator()) is None
    assert_close(model.training_loss(x, None, PROGRESS), expected, atol=0, rtol=0)
    assert_close(model.validation_loss(x), expected, atol=0, rtol=0)


def test_elbo_training_inputs_is_one_uniform_per_state():
    assert_uniform_training_inputs(_randomised("elbo"), K)


def test_elbo_loss_takes_the_gumbel_max_state():
    """One sample of ``KL(q || pi) - log p(x | k)``, with k the Gumbel-max draw of the encoder's q(k | x)."""
    model, x = _randomised("elbo"), tabular_points(8, D)
    noise = model.training_inputs(torch.arange(8), generator())
    log_q = torch.log_softmax(model.encoder(x), -1)
    chosen = (log_q - torch.log(-torch.log(noise))).argmax(-1)
    kl = (log_q.exp() * (log_q - model.log_weights())).sum(-1)
    log_likelihoods = model.log_joint(x) - model.log_weights()
    expected = kl - log_likelihoods[torch.arange(8), chosen]
    assert_close(model.training_loss(x, noise, PROGRESS), expected, atol=1e-12, rtol=0)
    assert chosen.unique().numel() > 1


def test_analytic_elbo_is_below_the_exact_log_likelihood_by_the_posterior_kl():
    """``E_q[log p(x|k)] - KL(q || pi) = log p(x) - KL(q(k|x) || p(k|x)) <= log p(x)``."""
    model, x = _randomised("elbo"), tabular_points(8, D)
    log_q = torch.log_softmax(model.encoder(x), -1)
    q = log_q.exp()
    log_joint = model.log_joint(x)
    log_likelihoods = log_joint - model.log_weights()
    elbo = (q * log_likelihoods).sum(-1) - (q * (log_q - model.log_weights())).sum(-1)
    log_p = log_joint.logsumexp(-1)
    posterior_kl = (q * (log_q - torch.log_softmax(log_joint, -1))).sum(-1)
    assert (elbo < log_p).all()
    assert_close(log_p - elbo, posterior_kl, atol=1e-12, rtol=0)


def test_gumbel_softmax_straight_through_is_hard_forward_soft_backward():
    logits = torch.tensor([[0.5, -1.0, 1.5, 0.0]], dtype=F64).expand(20000, -1).clone().requires_grad_(True)
    uniform = torch.rand(20000, 4, generator=generator(), dtype=F64)
    temperature = torch.tensor(0.7, dtype=F64)
    hard = gumbel_softmax_straight_through(logits, temperature, uniform)
    gumbel = -torch.log(-torch.log(uniform))
    assert torch.equal(hard, F.one_hot((logits + gumbel).argmax(-1), 4).to(F64))
    # Gumbel-max: the hard draws follow softmax(logits), whatever the temperature.
    assert_close(hard.mean(0), torch.softmax(logits[0], -1).detach(), atol=0.01, rtol=0)
    weights = torch.randn(20000, 4, generator=generator(1), dtype=F64)
    (gradient,) = torch.autograd.grad((hard * weights).sum(), logits)
    soft_logits = logits.detach().clone().requires_grad_(True)
    soft = torch.softmax((soft_logits + gumbel) / temperature, -1)
    (expected,) = torch.autograd.grad((soft * weights).sum(), soft_logits)
    assert_close(gradient, expected, atol=1e-12, rtol=0)


def test_temperature_anneals_geometrically():
    model = LatentFlowDensity(small_spline_flow(D, K), K, temperature_start=2.0, temperature_end=0.5)
    for progress, expected in [(0.0, 2.0), (0.5, 1.0), (1.0, 0.5)]:
        assert model.temperature(torch.tensor(progress, dtype=F64)).item() == pytest.approx(expected)


@pytest.mark.parametrize("objective", ["exact", "elbo"])
def test_gradients_reach_every_parameter(objective):
    model, x = _randomised(objective), tabular_points(16, D)
    model.training_loss(x, model.training_inputs(torch.arange(16), generator()), PROGRESS).sum().backward()
    assert_every_parameter_has_a_gradient(model)


def test_density_parameters_exclude_the_encoder():
    model = _randomised("elbo")
    names = {name for name, _ in model.named_parameters()}
    density = {id(parameter) for parameter in model.density_parameters()}
    assert {name for name, p in model.named_parameters() if id(p) in density} == {
        name for name in names if not name.startswith("encoder.")
    }
    assert any(name.startswith("encoder.") for name in names)
    exact = _randomised("exact")
    assert exact.encoder is None and len(list(exact.density_parameters())) == len(list(exact.parameters()))


def test_weight_decay_spares_exactly_the_start_parameters_when_asked():
    """``start_parameters`` are the state maps, weights and tails; ``spare_start`` leaves them out of the decay."""
    flow = spline_flow(3, context_size=4, n_layers=2, hidden_size=8, state_affine="full", tails="student_t")
    model = LatentFlowDensity(flow, 4, spare_start=True)
    started = {id(p) for p in model.start_parameters()}
    assert {name for name, p in model.named_parameters() if id(p) in started} == {
        "weight_logits", "flow.base.dof_bias", "flow.base.dof_weight.weight",
        *(f"flow.layers.0.{part}.weight" for part in ("location", "log_scale", "lower", "upper")),
    }  # fmt: skip
    decayed = {id(p) for p in model.decayed_parameters()}
    assert decayed == {id(p) for p in model.parameters()} - started
    model.spare_start = False
    assert {id(p) for p in model.decayed_parameters()} == {id(p) for p in model.parameters()}


# -------------------------------------------------------- initialisation
def _mixture(n_features, full):
    """Means, covariances and weights of a random K-component Gaussian mixture."""
    draws = generator(5)
    means = 3.0 * torch.randn(K, n_features, generator=draws, dtype=F64)
    if full:
        factors = torch.randn(K, n_features, n_features, generator=draws, dtype=F64)
        covariances = factors @ factors.mT + 0.5 * torch.eye(n_features, dtype=F64)
    else:
        covariances = torch.diag_embed(0.5 + torch.rand(K, n_features, generator=draws, dtype=F64))
    return means, covariances, torch.tensor([0.5, 0.3, 0.2], dtype=F64)


@pytest.mark.parametrize("state_affine", ["diagonal", "full"])
def test_initialized_states_are_the_gaussian_mixture(state_affine):
    """With the spline layers at identity, state k is N(m_k, S_k) for ``maps[k] = cholesky(S_k)^-1``."""
    model = _model(state_affine=state_affine, lu_linear=False, n_features=3)
    initialize_parameters(model, generator())
    means, covariances, weights = _mixture(3, full=state_affine == "full")
    model.initialize_states(means, torch.linalg.inv(torch.linalg.cholesky(covariances)), weights)
    x = tabular_points(20, 3)
    components = [multivariate_normal(means[k].numpy(), covariances[k].numpy()) for k in range(K)]
    expected = np.stack([np.log(weights[k].item()) + components[k].logpdf(x.numpy()) for k in range(K)], axis=1)
    assert_close(model.log_joint(x), torch.from_numpy(expected), atol=1e-10, rtol=0)


def test_diagonal_state_affine_keeps_only_the_diagonal_of_full_maps():
    model = _model(state_affine="diagonal", lu_linear=False, n_features=3)
    means, covariances, weights = _mixture(3, full=True)
    maps = torch.linalg.inv(torch.linalg.cholesky(covariances))
    model.initialize_states(means, maps, weights)
    expected = torch.diag_embed(maps.diagonal(dim1=-2, dim2=-1))
    assert_close(model.flow.layers[0].matrix(model.states), expected, atol=1e-14, rtol=0)


def test_samples_follow_the_weights_and_each_state_its_component():
    model = _model(lu_linear=False)
    initialize_parameters(model, generator())
    means, covariances, weights = _mixture(D, full=True)
    model.initialize_states(means, torch.linalg.inv(torch.linalg.cholesky(covariances)), weights)
    samples, states = model.sample(20000, generator())
    assert samples.shape == (20000, D) and states.shape == (20000,)
    assert_close(torch.bincount(states, minlength=K).to(F64) / 20000, weights, atol=0.015, rtol=0)
    for k in range(K):
        assert_close(samples[states == k].mean(0), means[k], atol=0.1, rtol=0)
    again, states_again = model.sample(20000, generator())
    assert torch.equal(again, samples) and torch.equal(states_again, states)


def test_fit_encoder_learns_the_labels_and_is_a_no_op_without_an_encoder():
    labels = torch.arange(300) % K
    x = torch.tensor([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]], dtype=F64)[labels]
    x = x + 0.3 * torch.randn(300, D, generator=generator(), dtype=F64)
    model = _model("elbo")
    initialize_parameters(model, generator())
    model.fit_encoder(x, labels, generator(), steps=200, batch_size=32)
    assert (model.encoder(x).argmax(-1) == labels).double().mean() > 0.95
    exact = _model("exact")
    before = {name: value.clone() for name, value in exact.state_dict().items()}
    exact.fit_encoder(x, labels, generator())
    assert all(torch.equal(value, before[name]) for name, value in exact.state_dict().items())


@pytest.mark.parametrize("tails", ["gaussian", "student_t"])
def test_the_start_ranking_is_the_log_joint_at_the_warm_start_and_only_there(tails):
    """begin_training ranks states through the first layer and the base: exact while the later layers are the identity.

    Three blocks reverse the features three times: a per-feature t base must see them in the flow's final order.
    """
    flow = spline_flow(3, context_size=K, n_layers=3, hidden_size=16, n_bins=6, tail_bound=3.0, lu_linear=True,
                       state_affine="full", state_splines=True, tails=tails).double()  # fmt: skip
    model = LatentFlowDensity(flow, K, training_states=2).double()
    initialize_parameters(model, generator())
    means, covariances, weights = _mixture(3, full=True)
    model.initialize_states(means, torch.linalg.inv(torch.linalg.cholesky(covariances)), weights)
    if tails == "student_t":
        model.flow.base.start_at(torch.tensor([[3.0, 5.0, 30.0]] * K, dtype=F64))
    x = tabular_points(20, 3)
    assert_close(model.start_log_joint(x), model.log_joint(x), atol=1e-10, rtol=0)
    model.begin_training(x)
    assert torch.equal(model.responsible_states, model.log_joint(x).topk(1, dim=-1).indices)
    with torch.no_grad():
        randomise_(model, 0.25, add=True)  # trained: the later layers are no longer the identity
    assert (model.start_log_joint(x) - model.log_joint(x)).abs().max() > 1e-3


def test_scoring_chunks_hold_a_fixed_number_of_values():
    """Rows per chunk shrink with the states and the features: each chunk holds CHUNK_VALUES row-state features."""
    model = _model(n_features=3)
    assert model.n_features == 3
    assert model.chunk_rows("cpu") == CHUNK_VALUES["cpu"] // (3 * K)
    assert model.chunk_rows("cpu", states_per_row=1) == CHUNK_VALUES["cpu"] // 3
    assert model.chunk_rows("cuda") == CHUNK_VALUES["cuda"] // (3 * K)
