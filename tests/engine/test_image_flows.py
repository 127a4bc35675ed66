"""Contract of the image flow, in float64: invertibility, exact log-determinants, identity at init."""

import math

import pytest
import torch

from nvf_sklearn._engine.image_flow import (
    ChannelCoupling,
    CheckerboardCoupling,
    ImageFlow,
    ImageFlowDensity,
    Squeeze,
    match_context,
)
from nvf_sklearn._engine.initialization import initialize_parameters

SHAPE = (1, 4, 4)

CONFIGS = [
    # (context kind, n_scales, logit_alpha)
    (None, 1, None),
    ("grid", 1, 0.05),
    ("vector", 1, None),
    ("grid", 2, 0.05),
]


def _context(kind, n, seed=3):
    generator = torch.Generator().manual_seed(seed)
    if kind == "grid":
        return torch.randn(n, 2, 2, 2, generator=generator, dtype=torch.float64)
    if kind == "vector":
        return torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return None


def _randomised_flow(kind, n_scales, logit_alpha, seed=0):
    flow = ImageFlow(
        SHAPE,
        context_channels=0 if kind is None else 2,
        n_scales=n_scales,
        n_layers_per_scale=4,
        hidden_channels=8,
        n_bins=5,
        tail_bound=3.0,
        logit_alpha=logit_alpha,
    ).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            # Far from the identity, still well conditioned.
            parameter.copy_(0.15 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return flow


def _images(n, logit_alpha, seed=1):
    generator = torch.Generator().manual_seed(seed)
    if logit_alpha is not None:
        return torch.rand(n, *SHAPE, generator=generator, dtype=torch.float64)
    x = 2.0 * torch.randn(n, *SHAPE, generator=generator, dtype=torch.float64)
    x[0] *= 3.0  # pixels in the identity tails
    return x


@pytest.mark.parametrize("kind, n_scales, logit_alpha", CONFIGS)
def test_inverse_of_forward_is_identity(kind, n_scales, logit_alpha):
    flow = _randomised_flow(kind, n_scales, logit_alpha)
    x, context = _images(16, logit_alpha), _context(kind, 16)
    z, _ = flow.transform(x, context)
    assert z.shape == (16, *flow.output_shape)
    torch.testing.assert_close(flow.inverse(z, context), x, atol=1e-9, rtol=0)


@pytest.mark.parametrize("kind, n_scales, logit_alpha", CONFIGS)
def test_log_det_matches_autograd_jacobian(kind, n_scales, logit_alpha):
    flow = _randomised_flow(kind, n_scales, logit_alpha)
    x, context = _images(3, logit_alpha), _context(kind, 3)
    _, log_det = flow.transform(x, context)
    for i in range(x.shape[0]):
        row_context = context[i : i + 1] if context is not None else None

        def forward(v):
            return flow.transform(v.reshape(1, *SHAPE), row_context)[0].flatten()

        jacobian = torch.autograd.functional.jacobian(forward, x[i].flatten())
        assert jacobian.shape == (16, 16)
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(log_det[i], expected, atol=1e-8, rtol=0)


def test_spline_layers_actually_change_the_data():
    """Guards the Jacobian test against a vacuous pass: the maps are far from the identity."""
    flow = _randomised_flow("grid", 1, None)
    x, context = _images(8, None), _context("grid", 8)
    z, log_det = flow.transform(x, context)
    assert (Squeeze().inverse(z) - x).abs().max() > 0.1
    assert log_det.abs().min() > 1e-3


@pytest.mark.parametrize("kind, n_scales, logit_alpha", CONFIGS)
def test_fresh_flow_is_the_identity_after_the_pre_transform(kind, n_scales, logit_alpha):
    flow = _randomised_flow(kind, n_scales, logit_alpha)
    initialize_parameters(flow, torch.Generator().manual_seed(0))
    x, context = _images(8, logit_alpha), _context(kind, 8)
    z, log_det = flow.transform(x, context)
    squeezed, pre_log_det = x, torch.zeros(8, dtype=torch.float64)
    for layer in flow.layers:
        if not isinstance(layer, (CheckerboardCoupling, ChannelCoupling)):  # logit, squeeze
            squeezed, layer_log_det = layer(squeezed)
            pre_log_det = pre_log_det + layer_log_det
    torch.testing.assert_close(z, squeezed, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_det, pre_log_det, atol=1e-12, rtol=0)


def test_logit_flow_density_is_in_pixel_space():
    """With the logit pre-transform at init: log p(y) = log N(s) + log|ds/dy|, computed by hand."""
    alpha = 0.05
    flow = ImageFlow(SHAPE, n_scales=0, n_layers_per_scale=2, hidden_channels=4, logit_alpha=alpha).double()
    initialize_parameters(flow, torch.Generator().manual_seed(0))
    y = _images(4, alpha)
    t = alpha + (1 - 2 * alpha) * y
    s = torch.log(t / (1 - t))
    expected = (
        -0.5 * (s * s) - 0.5 * math.log(2 * math.pi) + math.log(1 - 2 * alpha) - torch.log(t * (1 - t))
    ).flatten(1).sum(1)
    torch.testing.assert_close(flow.log_prob(y), expected, atol=1e-10, rtol=0)


def test_pixels_outside_the_logit_support_get_minus_infinity_not_nan():
    flow = _randomised_flow("grid", 1, 0.05)
    x, context = _images(3, 0.05), _context("grid", 3)
    x[1, 0, 2, 1] = 1.5
    x[2, 0, 0, 0] = -3.0
    log_prob = flow.log_prob(x, context)
    assert torch.isfinite(log_prob[0])
    assert log_prob[1] == -math.inf and log_prob[2] == -math.inf
    with pytest.raises(ValueError, match="logit_alpha"):
        ImageFlow(SHAPE, logit_alpha=0.5)


def test_squeeze_round_trip_and_layout():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    y, log_det = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    assert torch.equal(log_det, torch.zeros(2, dtype=torch.float64))
    # Channel 4c + 2i + j holds pixel (2h + i, 2w + j) of channel c.
    assert y[1, 4 * 2 + 2 * 1 + 0, 1, 2] == x[1, 2, 3, 4]
    assert torch.equal(Squeeze().inverse(y), x)


def test_context_matching():
    grid = torch.arange(4.0).reshape(1, 1, 2, 2)
    up = match_context(grid, 4, 4)
    assert up.shape == (1, 1, 4, 4) and up[0, 0, 3, 0] == grid[0, 0, 1, 0]
    assert torch.equal(match_context(up, 2, 2), grid)
    assert match_context(torch.ones(3, 5), 2, 2).shape == (3, 5, 2, 2)
    assert match_context(None, 2, 2) is None


def test_context_changes_the_density_and_batch_rows_are_independent():
    flow = _randomised_flow("grid", 1, None)
    x, context = _images(6, None), _context("grid", 6)
    full = flow.log_prob(x, context)
    torch.testing.assert_close(flow.log_prob(x[2:4], context[2:4]), full[2:4], atol=1e-12, rtol=0)
    assert (flow.log_prob(x, context.flip(0)) - full).abs().max() > 1e-3


def test_sample_shapes_and_reproducibility():
    flow = _randomised_flow("grid", 1, 0.05)
    context = _context("grid", 5)
    first = flow.sample(5, context, torch.Generator().manual_seed(7))
    again = flow.sample(5, context, torch.Generator().manual_seed(7))
    assert first.shape == (5, *SHAPE)
    assert torch.equal(first, again)
    assert flow.sample(5, context[:1], torch.Generator().manual_seed(7)).shape == (5, *SHAPE)


def test_density_protocol_takes_flat_rows():
    flow = _randomised_flow(None, 1, None)
    model = ImageFlowDensity(flow)
    x = _images(4, None)
    log_joint = model.log_joint(x.flatten(1))
    assert log_joint.shape == (4, 1)
    torch.testing.assert_close(log_joint[:, 0], flow.log_prob(x), atol=0, rtol=0)
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(model.training_loss(x.flatten(1), generator, 0.0), -flow.log_prob(x))
    samples, states = model.sample(3, generator)
    assert samples.shape == (3, 16) and torch.equal(states, torch.zeros(3, dtype=torch.long))


def test_gradients_reach_every_parameter():
    flow = _randomised_flow("grid", 1, 0.05).float()
    x, context = _images(4, 0.05).float(), _context("grid", 4).float()
    flow.log_prob(x, context).sum().backward()
    for name, parameter in flow.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_indivisible_shape_names_the_remedy():
    with pytest.raises(ValueError, match="n_scales"):
        ImageFlow((1, 6, 6), n_scales=2)
