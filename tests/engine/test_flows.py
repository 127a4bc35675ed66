"""Tabular flows beyond the shared contract (``test_base.py``): broadcasting, identity at start, layer algebra."""

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.flows import (
    LULinear,
    ReversePermutation,
    SplineCoupling,
    StateAffine,
    lu_without_pivoting,
    spline_flow,
)
from nvf_sklearn._engine.initialization import initialize_parameters

from .conftest import F64, generator, randomise_, small_spline_flow, tabular_points


@pytest.mark.parametrize("state_affine", [None, "diagonal", "full"])
def test_contexts_broadcast_against_points(state_affine):
    """(n, 1, d) points against K contexts (K, c) give (n, K), equal to one call per context, both ways."""
    flow = randomise_(small_spline_flow(3, 4, lu_linear=True, state_affine=state_affine), 0.25)
    x = tabular_points(10, 3)
    contexts = torch.randn(5, 4, generator=generator(2), dtype=F64)
    distribution = flow(contexts)
    log_prob = distribution.log_prob(x.unsqueeze(1))
    z, _ = distribution.transform(x.unsqueeze(1))
    assert log_prob.shape == (10, 5) and z.shape == (10, 5, 3)
    for k in range(5):
        assert_close(log_prob[:, k], flow(contexts[k]).log_prob(x), atol=1e-12, rtol=0)
        assert_close(z[:, k], flow(contexts[k]).transform(x)[0], atol=1e-12, rtol=0)
    assert_close(distribution.inverse(z), x.unsqueeze(1).expand(-1, 5, -1), atol=1e-9, rtol=0)


def test_samples_have_the_sample_and_context_batch_shape():
    flow = randomise_(small_spline_flow(2, 3, state_affine="full"), 0.25)
    contexts = torch.randn(4, 3, generator=generator(2), dtype=F64)
    samples = flow(contexts).sample((7,), generator())
    assert samples.shape == (7, 4, 2) and torch.isfinite(samples).all()
    assert torch.equal(samples, flow(contexts).sample((7,), generator()))
    assert flow(contexts[0]).sample((6,), generator()).shape == (6, 2)


@pytest.mark.parametrize(
    "n_features, context_size, lu_linear, state_affine",
    [(1, 0, False, None), (1, 3, True, "full"), (2, 0, True, None), (4, 3, True, "full"), (5, 2, False, "diagonal")],
)
def test_fresh_flow_is_the_identity(n_features, context_size, lu_linear, state_affine):
    """After ``initialize_parameters`` every layer is the identity, up to the reversals of the features."""
    flow = small_spline_flow(n_features, context_size, lu_linear, state_affine)
    initialize_parameters(flow, generator())
    x = tabular_points(16, n_features)
    context = torch.randn(16, context_size, generator=generator(2), dtype=F64) if context_size else None
    z, log_det = flow(context).transform(x)
    n_reversals = sum(isinstance(layer, ReversePermutation) for layer in flow.layers)
    assert n_reversals == (3 if n_features > 1 else 0)
    assert_close(z, x.flip(-1) if n_reversals % 2 else x, atol=1e-12, rtol=0)
    assert_close(log_det, torch.zeros(16, dtype=F64), atol=1e-12, rtol=0)


def test_layer_order():
    """State-affine first (data side), then blocks of [LU,] coupling[, reversal]; no LU for one feature."""
    flow = spline_flow(3, context_size=2, n_layers=2, lu_linear=True, state_affine="full")
    kinds = [type(layer) for layer in flow.layers]
    block = [LULinear, SplineCoupling, ReversePermutation]
    assert kinds == [StateAffine, *block, *block]
    kinds = [type(layer) for layer in spline_flow(1, n_layers=2, lu_linear=True).layers]
    assert kinds == [SplineCoupling, SplineCoupling]


def test_one_feature_flow_density_integrates_to_one():
    flow = randomise_(small_spline_flow(1, 2, state_affine="full"), 0.25)
    grid = torch.linspace(-40.0, 40.0, 20001, dtype=F64).unsqueeze(-1)
    for context in torch.randn(3, 2, generator=generator(2), dtype=F64):
        density = flow(context).log_prob(grid).exp()
        assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-4)


def test_lu_linear_factors_and_log_det_match_slogdet():
    layer = randomise_(LULinear(4).double(), 1.0)
    lower, upper = layer.factors()
    assert torch.equal(lower, lower.tril()) and torch.equal(lower.diagonal(), torch.ones(4, dtype=F64))
    assert torch.equal(upper, upper.triu()) and (upper.diagonal() > 0).all()
    x = torch.randn(3, 4, generator=generator(1), dtype=F64)
    y, log_det = layer(x)
    assert_close(y, x @ (lower @ upper).T, atol=1e-12, rtol=0)
    assert_close(log_det, torch.linalg.slogdet(lower @ upper).logabsdet.expand(3), atol=1e-12, rtol=0)


def _one_hot_state_affine(full, n_features=3, n_states=4):
    layer = randomise_(StateAffine(n_features, n_states, full=full).double(), 0.5)
    return layer, torch.eye(n_states, dtype=F64)


@pytest.mark.parametrize("full", [False, True])
def test_state_affine_matrix_is_each_states_own_lu_product(full):
    """``matrix(e_k)`` is state k's own ``L_k U_k`` (unit-lower times upper with positive diagonal), or diagonal."""
    layer, states = _one_hot_state_affine(full)
    matrices = layer.matrix(states)
    assert matrices.shape == (4, 3, 3)
    for k in range(4):
        upper = torch.diag(layer.log_scale.weight[:, k].exp())
        lower = torch.eye(3, dtype=F64)
        if full:
            lower[layer.rows, layer.columns] = layer.lower.weight[:, k]
            upper[layer.columns, layer.rows] = layer.upper.weight[:, k]
        assert_close(matrices[k], lower @ upper, atol=1e-14, rtol=0)
        assert_close(torch.linalg.slogdet(matrices[k]).logabsdet, layer.log_scale.weight[:, k].sum())
    assert (matrices.triu(1).abs().sum() > 0) == full and (matrices.tril(-1).abs().sum() > 0) == full


@pytest.mark.parametrize("full", [False, True])
def test_state_affine_maps_and_solves_per_state(full):
    """Forward: ``A_k (x - m_k)``, log-det ``sum log diag A_k``; inverse: ``A_k^{-1} y + m_k`` by a solve."""
    layer, states = _one_hot_state_affine(full)
    x = torch.randn(6, 3, generator=generator(1), dtype=F64)
    for k in range(4):
        matrix, location = layer.matrix(states[k]), layer.location.weight[:, k]
        y, log_det = layer(x, states[k].expand(6, -1))
        assert_close(y, (x - location) @ matrix.T, atol=1e-12, rtol=0)
        assert_close(log_det, torch.linalg.slogdet(matrix).logabsdet.expand(6), atol=1e-12, rtol=0)
        solved = torch.linalg.solve(matrix, x.T).T + location
        assert_close(layer.inverse(x, states[k].expand(6, -1)), solved, atol=1e-12, rtol=0)


def test_lu_without_pivoting_factors_exactly():
    matrices = torch.randn(5, 4, 4, generator=generator(2), dtype=F64) + 4.0 * torch.eye(4, dtype=F64)
    lower, upper = lu_without_pivoting(matrices)
    assert torch.equal(lower.triu(1), torch.zeros_like(lower)) and torch.equal(upper.tril(-1), torch.zeros_like(upper))
    assert_close(lower.diagonal(dim1=-2, dim2=-1), torch.ones(5, 4, dtype=F64), atol=0, rtol=0)
    assert_close(lower @ upper, matrices, atol=1e-12, rtol=0)


def test_full_state_affine_starts_at_any_pivot_free_map():
    """``start_at`` reproduces dense maps (not only triangular ones) and the locations, state by state."""
    layer = StateAffine(3, 4, full=True).to(F64)
    states = torch.eye(4, dtype=F64)
    maps = torch.randn(4, 3, 3, generator=generator(3), dtype=F64) + 3.0 * torch.eye(3, dtype=F64)
    locations = torch.randn(4, 3, generator=generator(4), dtype=F64)
    layer.start_at(locations, maps)
    assert_close(layer.matrix(states), maps, atol=1e-12, rtol=0)
    assert_close(layer.location(states), locations, atol=0, rtol=0)
    diagonal = StateAffine(3, 4, full=False).to(F64)
    diagonal.start_at(locations, maps.abs())
    assert_close(diagonal.matrix(states), torch.diag_embed(maps.abs().diagonal(dim1=-2, dim2=-1)), atol=1e-14, rtol=0)


def test_one_feature_full_state_affine_has_no_off_diagonal_part():
    assert StateAffine(1, 3, full=True).lower is None
