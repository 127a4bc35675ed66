"""Properties of the rational-quadratic spline, in float64."""

import pytest
import torch

from nvf_sklearn._engine.splines import _forward_map, n_spline_parameters, rq_spline, rq_spline_columns

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


def _autograd_reference(x, params, grad_outputs, grad_log_det):
    """Gradients of ``<y, grad_outputs> + <log_det, grad_log_det>`` through autograd's record of the forward map."""
    columns = params.T.contiguous()
    y, log_det, _ = _forward_map(x, columns, BOUND)
    return torch.autograd.grad((y * grad_outputs + log_det * grad_log_det).sum(), [x, params])


@pytest.mark.parametrize("n_bins", [2, 5, 8, 16])
def test_written_out_gradient_matches_autograd(n_bins):
    x, params = _random_case(n_bins=n_bins, seed=n_bins)
    x, params = x.requires_grad_(True), params.requires_grad_(True)
    generator = torch.Generator().manual_seed(n_bins)
    grad_outputs, grad_log_det = torch.randn(2, x.shape[0], generator=generator, dtype=torch.float64)
    y, log_det = rq_spline(x, params, BOUND)
    assert type(y.grad_fn.next_functions[0][0]).__name__ == "_ForwardSplineBackward"  # the written-out gradient
    written_out = torch.autograd.grad((y * grad_outputs + log_det * grad_log_det).sum(), [x, params])
    for ours, reference in zip(written_out, _autograd_reference(x, params, grad_outputs, grad_log_det)):
        assert reference.abs().max() > 1.0  # the comparison is not between zeros
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=1e-10)


def test_written_out_gradient_passes_gradcheck():
    x, params = _random_case(n_points=40, n_bins=4, scale=2.0, seed=3)
    x, params = x.requires_grad_(True), params.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: rq_spline(a, b, BOUND), (x, params))


def test_gradients_stay_finite_at_extreme_parameters():
    x = torch.tensor([-1e6, -BOUND, -2.9, -1.0, 0.0, 1.0, 2.9, BOUND, 1e6], dtype=torch.float64, requires_grad=True)
    params = torch.full((x.shape[0], n_spline_parameters(8)), 1e4, dtype=torch.float64)
    params[:, ::2] = -1e4
    params.requires_grad_(True)
    y, log_det = rq_spline(x, params, BOUND)
    gradients = torch.autograd.grad((y + log_det).sum(), [x, params])
    assert all(torch.isfinite(g).all() for g in gradients)


def test_columns_layout_is_the_same_map():
    x, params = _random_case()
    for inverse in (False, True):
        expected = rq_spline(x, params, BOUND, inverse=inverse)
        for ours, reference in zip(rq_spline_columns(x, params.T, BOUND, inverse=inverse), expected):
            assert torch.equal(ours, reference)


@pytest.mark.parametrize("inverse", [False, True])
def test_an_element_maps_alike_in_any_company(inverse):
    """float32, as a model scores: an element's output and log-det do not depend on the batch around it."""
    x, params = _random_case(n_points=203)
    x, params = x.float(), params.float()
    y, log_det = rq_spline(x, params, BOUND, inverse=inverse)
    for size in (1, 5, 17, 203):
        rows = torch.randperm(203, generator=torch.Generator().manual_seed(size))[:size]
        y_rows, log_det_rows = rq_spline(x[rows], params[rows], BOUND, inverse=inverse)
        assert torch.equal(y_rows, y[rows]) and torch.equal(log_det_rows, log_det[rows])
