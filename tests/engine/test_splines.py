"""Properties of the rational-quadratic spline, in float64."""

import pytest
import torch

from nvf_sklearn._engine.splines import n_spline_parameters, rq_spline

BOUND = 3.0


def _random_case(n_points=2000, n_bins=8, scale=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = 2.0 * BOUND * (torch.rand(n_points, generator=generator, dtype=torch.float64) - 0.5) * 1.5
    params = scale * torch.randn(n_points, n_spline_parameters(n_bins), generator=generator, dtype=torch.float64)
    return x, params


def test_some_points_lie_in_the_tails():
    x, _ = _random_case()
    assert (x.abs() > BOUND).float().mean() > 0.2


@pytest.mark.parametrize("n_bins", [2, 5, 16])
def test_inverse_recovers_inputs(n_bins):
    x, params = _random_case(n_bins=n_bins)
    y, _ = rq_spline(x, params, BOUND)
    x_back, _ = rq_spline(y, params, BOUND, inverse=True)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=0)


def test_forward_and_inverse_log_det_cancel():
    x, params = _random_case()
    y, log_det = rq_spline(x, params, BOUND)
    _, inverse_log_det = rq_spline(y, params, BOUND, inverse=True)
    torch.testing.assert_close(log_det + inverse_log_det, torch.zeros_like(x), atol=1e-8, rtol=0)


@pytest.mark.parametrize("inverse", [False, True])
def test_log_det_matches_autograd_derivative(inverse):
    x, params = _random_case()
    x = x.clone().requires_grad_(True)
    y, log_det = rq_spline(x, params, BOUND, inverse=inverse)
    (derivative,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det, derivative.log(), atol=1e-6, rtol=0)


def test_identity_tails_and_zero_parameters_give_identity():
    x, params = _random_case()
    y, log_det = rq_spline(x, params, BOUND)
    outside = x.abs() >= BOUND
    assert torch.equal(y[outside], x[outside])
    assert torch.equal(log_det[outside], torch.zeros_like(log_det[outside]))
    y0, log_det0 = rq_spline(x, torch.zeros_like(params), BOUND)
    torch.testing.assert_close(y0, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_det0, torch.zeros_like(x), atol=1e-12, rtol=0)


def test_map_is_monotone_and_maps_interval_onto_itself():
    grid = torch.linspace(-BOUND, BOUND, 4001, dtype=torch.float64)
    params = 3.0 * torch.randn(n_spline_parameters(8), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, _ = rq_spline(grid, params.expand(grid.shape[0], -1), BOUND)
    assert torch.all(y[1:] > y[:-1])
    torch.testing.assert_close(y[[0, -1]], torch.tensor([-BOUND, BOUND], dtype=torch.float64))


def test_extreme_parameters_and_inputs_stay_finite():
    x = torch.tensor([-1e30, -1e6, -BOUND, -1.0, 0.0, 1.0, BOUND, 1e6, 1e30], dtype=torch.float64)
    params = torch.full((x.shape[0], n_spline_parameters(8)), 1e4, dtype=torch.float64)
    params[:, ::2] = -1e4
    for inverse in (False, True):
        y, log_det = rq_spline(x, params, BOUND, inverse=inverse)
        assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
