"""The :class:`Transform` contract, for every flow configuration, tabular and image, in float64.

Each flow has its parameters drawn far from the identity (and
``test_randomised_layers_move_the_data`` checks that they are), so no test
here can pass because a map does nothing.
"""

from dataclasses import dataclass

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.base import Transform, broadcast_shape
from nvf_sklearn._engine.flows import Flow

from .conftest import (
    F64,
    assert_every_parameter_has_a_gradient,
    generator,
    jacobian_log_abs_det,
    randomise_,
    small_image_flow,
    small_spline_flow,
    tabular_points,
)

N_ROWS = 10


@dataclass(frozen=True)
class Tabular:
    n_features: int
    context_size: int = 0
    lu_linear: bool = False
    state_affine: str | None = None
    state_splines: bool = False

    def __str__(self):
        lu = "-lu" if self.lu_linear else ""
        splines = "-splines" if self.state_splines else ""
        return f"tabular-d{self.n_features}-c{self.context_size}{lu}-{self.state_affine or 'plain'}{splines}"

    def flow(self, seed=0) -> Flow:
        flow = small_spline_flow(
            self.n_features, self.context_size, self.lu_linear, self.state_affine, state_splines=self.state_splines
        )
        # Far from the identity, still well conditioned: inverses hold to 1e-9 (0.3 already loses 1e-8).
        return randomise_(flow, 0.25, seed)

    def data(self, n=N_ROWS):
        x = tabular_points(n, self.n_features)
        context = torch.randn(n, self.context_size, generator=generator(2), dtype=F64) if self.context_size else None
        return x, context


@dataclass(frozen=True)
class Image:
    image_shape: tuple[int, int, int]
    context: str | None = None  # None, "grid" (half the image's resolution) or "vector"
    n_scales: int = 1
    logit_alpha: float | None = None

    def __str__(self):
        shape = "x".join(map(str, self.image_shape))
        logit = "-logit" if self.logit_alpha else ""
        return f"image-{shape}-{self.context or 'plain'}-s{self.n_scales}{logit}"

    def flow(self, seed=0) -> Flow:
        flow = small_image_flow(self.image_shape, 0 if self.context is None else 2, self.n_scales, self.logit_alpha)
        return randomise_(flow, 0.1, seed)

    def data(self, n=N_ROWS):
        draws = generator(1)
        if self.logit_alpha is not None:
            x = torch.rand(n, *self.image_shape, generator=draws, dtype=F64)
        else:
            x = 2.0 * torch.randn(n, *self.image_shape, generator=draws, dtype=F64)
            x[0] *= 3.0  # pixels in the identity tails
        _, height, width = self.image_shape
        context_shape = {"grid": (2, height // 2, width // 2), "vector": (2,)}.get(self.context)
        context = None if context_shape is None else torch.randn(n, *context_shape, generator=draws, dtype=F64)
        return x, context


CASES = [
    Tabular(1),
    Tabular(1, 3, state_affine="diagonal"),
    Tabular(1, 2, lu_linear=True, state_affine="full"),
    Tabular(2, lu_linear=True),
    Tabular(2, 3, state_affine="full"),
    Tabular(3, 3, lu_linear=True, state_affine="diagonal"),
    Tabular(5),
    Tabular(5, 3, lu_linear=True, state_affine="full"),
    Tabular(3, 4, state_affine="full", state_splines=True),
    Tabular(1, 2, state_splines=True),
    Tabular(4, 2, lu_linear=False),
    Image((1, 4, 4), n_scales=0),
    Image((1, 4, 4), n_scales=1, logit_alpha=0.05),
    Image((1, 4, 4), "grid", n_scales=0, logit_alpha=0.05),
    Image((1, 4, 8), "grid", n_scales=1),
    Image((2, 4, 4), "vector", n_scales=1, logit_alpha=0.05),
    # 8x8 over two scales: the grid context is repeated, matched and pooled at the three scales.
    Image((1, 8, 8), "grid", n_scales=2, logit_alpha=0.05),
    Image((1, 8, 8), "vector", n_scales=2),
]

contract = pytest.mark.parametrize("case", CASES, ids=str)


def _row(tensor, i):
    return None if tensor is None else tensor[i : i + 1]


@contract
def test_shapes(case):
    flow, (x, context) = case.flow(), case.data()
    distribution = flow(context)
    z, log_det = distribution.transform(x)
    assert z.shape == (N_ROWS, *flow.base_shape) and log_det.shape == (N_ROWS,)
    assert distribution.log_prob(x).shape == (N_ROWS,)
    assert distribution.inverse(z).shape == x.shape == (N_ROWS, *flow.event_shape)
    samples = distribution.sample((), generator()) if context is not None else flow().sample((N_ROWS,), generator())
    assert samples.shape == x.shape and torch.isfinite(samples).all()
    if getattr(case, "logit_alpha", None):
        margin = case.logit_alpha / (1 - 2 * case.logit_alpha)
        assert samples.min() >= -margin and samples.max() <= 1 + margin


@contract
def test_inverse_of_transform_is_identity(case):
    flow, (x, context) = case.flow(), case.data()
    distribution = flow(context)
    assert_close(distribution.inverse(distribution.transform(x)[0]), x, atol=1e-9, rtol=0)


@contract
def test_log_prob_matches_brute_force_jacobian(case):
    """Per row: ``log|det|`` is slogdet of autograd's Jacobian; ``log_prob`` adds the normal base on top."""
    flow, (x, context) = case.flow(), case.data(n=3)
    z, log_det = flow(context).transform(x)
    log_prob = flow(context).log_prob(x)
    base = torch.distributions.Normal(torch.zeros((), dtype=F64), 1.0)
    for i in range(x.shape[0]):
        row = flow(_row(context, i))
        expected = jacobian_log_abs_det(lambda v: row.transform(v.reshape(1, *flow.event_shape))[0].flatten(), x[i])
        assert_close(log_det[i], expected, atol=1e-8, rtol=0)
        assert_close(log_prob[i], base.log_prob(z[i]).sum() + expected, atol=1e-8, rtol=0)


@contract
def test_every_layer_inverts_with_the_opposite_log_det(case):
    """Each layer alone: ``inverse(forward(x)) = x``, and the inverse's log-det at ``y`` is minus the forward's."""
    flow, (x, context) = case.flow(), case.data()
    for layer in flow.layers:
        assert isinstance(layer, Transform)
        y, log_det = layer(x, context)
        assert log_det.shape == (N_ROWS,)
        back, inverse_log_det = layer.transform(y, context, inverse=True)
        assert_close(back, x, atol=1e-9, rtol=0)
        assert_close(inverse_log_det, -log_det, atol=1e-9, rtol=0)
        assert_close(layer.inverse(y, context), back, atol=0, rtol=0)
        x = y


@contract
def test_randomised_layers_move_the_data(case):
    """Guards the other tests against a vacuous pass: every layer with parameters changes points and volumes."""
    flow, (x, context) = case.flow(), case.data()
    n_moved = 0
    for layer in flow.layers:
        y, log_det = layer(x, context)
        if any(True for _ in layer.parameters()):
            assert (y - x).abs().max() > 1e-2, layer
            assert log_det.abs().max() > 1e-3, layer
            n_moved += 1
        x = y
    assert n_moved >= 3


@contract
def test_gradients_reach_every_parameter(case):
    flow, (x, context) = case.flow(), case.data()
    flow(context).log_prob(x).sum().backward()
    assert_every_parameter_has_a_gradient(flow)


@contract
def test_state_dict_round_trip_gives_identical_log_prob(case):
    flow, other, (x, context) = case.flow(seed=0), case.flow(seed=1), case.data()
    expected = flow(context).log_prob(x)
    assert (other(context).log_prob(x) - expected).abs().max() > 1e-3
    other.load_state_dict(flow.state_dict())
    assert_close(other(context).log_prob(x), expected, atol=0, rtol=0)


@pytest.mark.parametrize("first", [(), (3,), (1, 3), (2, 1), (0, 1), (4, 1, 3)])
@pytest.mark.parametrize("second", [(), (1,), (2, 3), (5, 1, 1), (1, 0), (4,)])
def test_broadcast_shape_agrees_with_torch(first, second):
    try:
        expected = tuple(torch.broadcast_shapes(first, second))
    except RuntimeError:
        with pytest.raises(ValueError):
            broadcast_shape(first, second)
        return
    assert broadcast_shape(first, second) == expected
