"""Image flows beyond the shared contract (``test_base.py``): layers, layout, contexts, the logit pre-transform."""

import math

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.image_flows import (
    FLOW_CHUNK_PIXELS,
    ChannelCoupling,
    CheckerboardCoupling,
    ImageFlow,
    LogitPreTransform,
    Squeeze,
    image_chunk_rows,
    match_context,
)
from nvf_sklearn._engine.initialization import initialize_parameters

from .conftest import F64, generator, randomise_, small_image_flow

SHAPE = (1, 4, 4)


def _grid_context(n, seed=3):
    return torch.randn(n, 2, 2, 2, generator=generator(seed), dtype=F64)


def _images(n, in_unit_cube=False, seed=1):
    if in_unit_cube:
        return torch.rand(n, *SHAPE, generator=generator(seed), dtype=F64)
    return 2.0 * torch.randn(n, *SHAPE, generator=generator(seed), dtype=F64)


def _grid_flow(logit_alpha=None):
    return randomise_(small_image_flow(SHAPE, 2, 1, logit_alpha), 0.1)


@pytest.mark.parametrize("context_channels, n_scales, logit_alpha", [(0, 0, None), (2, 1, 0.05), (2, 2, None)])
def test_fresh_flow_is_the_identity_after_the_pre_transform(context_channels, n_scales, logit_alpha):
    flow = randomise_(small_image_flow(SHAPE, context_channels, n_scales, logit_alpha), 0.1)
    initialize_parameters(flow, generator())
    x = _images(8, in_unit_cube=logit_alpha is not None)
    context = _grid_context(8) if context_channels else None
    z, log_det = flow(context).transform(x)
    expected, expected_log_det = x, torch.zeros(8, dtype=F64)
    for layer in flow.layers:
        if isinstance(layer, (LogitPreTransform, Squeeze)):
            expected, layer_log_det = layer(expected)
            expected_log_det = expected_log_det + layer_log_det
    assert_close(z, expected, atol=1e-12, rtol=0)
    assert_close(log_det, expected_log_det, atol=1e-12, rtol=0)


def test_logit_flow_density_is_in_pixel_space():
    """With the logit pre-transform at init: log p(y) = log N(s) + log|ds/dy|, computed by hand."""
    alpha = 0.05
    flow = small_image_flow(SHAPE, n_scales=0, logit_alpha=alpha)
    initialize_parameters(flow, generator())
    y = _images(4, in_unit_cube=True)
    t = alpha + (1 - 2 * alpha) * y
    s = torch.log(t / (1 - t))
    log_density = -0.5 * s * s - 0.5 * math.log(2 * math.pi) + math.log(1 - 2 * alpha) - torch.log(t * (1 - t))
    assert_close(flow().log_prob(y), log_density.flatten(1).sum(1), atol=1e-10, rtol=0)


def test_pixels_outside_the_logit_support_get_minus_infinity_not_nan():
    flow = _grid_flow(logit_alpha=0.05)
    x, context = _images(3, in_unit_cube=True), _grid_context(3)
    x[1, 0, 2, 1] = 1.5
    x[2, 0, 0, 0] = -3.0
    log_prob = flow(context).log_prob(x)
    assert torch.isfinite(log_prob[0])
    assert log_prob[1] == -math.inf and log_prob[2] == -math.inf
    # Just inside the box (-a, 1 + a), a = alpha / (1 - 2 alpha), the density is finite.
    margin = 0.05 / 0.9
    x[1, 0, 2, 1], x[2, 0, 0, 0] = 1 + 0.99 * margin, -0.99 * margin
    assert torch.isfinite(flow(context).log_prob(x)).all()
    for alpha in (0.0, 0.5):
        with pytest.raises(ValueError, match="logit_alpha"):
            ImageFlow(SHAPE, logit_alpha=alpha)


def test_squeeze_round_trip_and_layout():
    x = torch.arange(2 * 3 * 4 * 6, dtype=F64).reshape(2, 3, 4, 6)
    y, log_det = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    assert torch.equal(log_det, torch.zeros(2, dtype=F64))
    # Channel 4c + 2i + j holds pixel (2h + i, 2w + j) of channel c.
    assert y[1, 4 * 2 + 2 * 1 + 0, 1, 2] == x[1, 2, 3, 4]
    assert torch.equal(Squeeze().inverse(y), x)


def test_context_matching():
    grid = torch.arange(4.0).reshape(1, 1, 2, 2)
    up = match_context(grid, 4, 4)
    assert up.shape == (1, 1, 4, 4) and up[0, 0, 3, 0] == grid[0, 0, 1, 0]
    assert torch.equal(match_context(up, 2, 2), grid)
    assert match_context(grid, 2, 2) is grid
    vector = torch.arange(15.0).reshape(3, 5)
    spread = match_context(vector, 2, 2)
    assert spread.shape == (3, 5, 2, 2) and torch.equal(spread[:, :, 1, 0], vector)
    assert match_context(None, 2, 2) is None


@pytest.mark.parametrize("layer_kind", ["checkerboard", "channel"])
def test_couplings_change_one_half_given_the_other(layer_kind):
    """Only the transformed half moves, and it depends on the kept half (not on itself through the conditioner)."""
    x = 4.0 * torch.rand(3, 4, 4, 4, generator=generator(1), dtype=F64) - 2.0  # inside the splines' interval
    for parity in (0, 1):
        if layer_kind == "checkerboard":
            layer = CheckerboardCoupling(4, 4, 4, parity, 0, 4, 1, 4, 3.0).double()
            kept = ((torch.arange(4)[:, None] + torch.arange(4)) % 2 != parity).expand(3, 4, 4, 4)
        else:
            layer = ChannelCoupling(4, parity, 0, 4, 1, 4, 3.0).double()
            kept = torch.zeros(3, 4, 4, 4, dtype=torch.bool)
            kept[:, 2 * parity : 2 * parity + 2] = True
        y, _ = randomise_(layer, 0.3)(x)
        assert torch.equal(y[kept], x[kept]) and (y[~kept] - x[~kept]).abs().min() > 0
        # Moving one transformed value moves that output alone; moving the kept half moves the transformed one.
        nudged, first = x.clone(), (~kept).flatten().nonzero()[0, 0]
        nudged.view(-1)[first] += 0.1
        changed = (layer(nudged)[0] != y).flatten().nonzero()[:, 0]
        assert changed.tolist() == [first.item()]
        moved_kept = x.clone()
        moved_kept[kept] += 0.1
        assert (layer(moved_kept)[0][~kept] - y[~kept]).abs().max() > 1e-3


def test_scales_and_coupling_layout():
    """Scale 0: checkerboards of alternating parity; later scales: a squeeze, then channel 0, 1, checker 0, 1."""
    flow = ImageFlow((1, 8, 8), n_scales=2, n_layers_per_scale=4, hidden_channels=4)
    def parity(layer):
        if isinstance(layer, CheckerboardCoupling):  # parity 0 transforms pixel (0, 0)
            return int(layer.mask[0, 0, 0, 0] == 0)
        return getattr(layer, "parity", None)

    layout = [(type(layer).__name__, parity(layer)) for layer in flow.layers]
    scale_0 = [("CheckerboardCoupling", 0), ("CheckerboardCoupling", 1)] * 2
    later = [("Squeeze", None), ("ChannelCoupling", 0), ("ChannelCoupling", 1)]
    later += [("CheckerboardCoupling", 0), ("CheckerboardCoupling", 1)]
    assert layout == scale_0 + later + later
    assert flow.event_shape == (1, 8, 8) and flow.base_shape == (16, 2, 2)
    assert ImageFlow((3, 4, 4), n_scales=0, logit_alpha=0.1).base_shape == (3, 4, 4)


def test_context_changes_the_density_and_batch_rows_are_independent():
    flow = _grid_flow()
    x, context = _images(6), _grid_context(6)
    full = flow(context).log_prob(x)
    assert_close(flow(context[2:4]).log_prob(x[2:4]), full[2:4], atol=1e-12, rtol=0)
    assert (flow(context.flip(0)).log_prob(x) - full).abs().max() > 1e-3


def test_sample_shapes_and_reproducibility():
    flow = _grid_flow(logit_alpha=0.05)
    context = _grid_context(5)
    first = flow(context).sample((), generator(7))
    assert first.shape == (5, *SHAPE)
    assert torch.equal(first, flow(context).sample((), generator(7)))
    assert not torch.equal(first, flow(context).sample((), generator(8)))
    plain = randomise_(small_image_flow(SHAPE), 0.1)
    assert plain().sample((3,), generator()).shape == (3, *SHAPE)


def test_indivisible_shape_names_the_remedy():
    with pytest.raises(ValueError, match="n_scales"):
        ImageFlow((1, 6, 6), n_scales=2)


def test_image_chunk_rows_spends_the_pixel_budget():
    assert image_chunk_rows((1, 28, 28), "cpu") == FLOW_CHUNK_PIXELS["cpu"] // 784
    assert image_chunk_rows((3, 32, 32), "cuda") == FLOW_CHUNK_PIXELS["cuda"] // 3072
    assert image_chunk_rows((3, 32, 32), "mps") == image_chunk_rows((3, 32, 32), "cuda")
    assert image_chunk_rows((1, 4096, 4096), "cpu") == 1
