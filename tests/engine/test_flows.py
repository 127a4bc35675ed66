"""Contract of every flow configuration, in float64: invertibility and exact log-determinants."""

import pytest
import torch

from nvf_sklearn._engine.flows import LULinear, spline_flow

CONFIGS = [
    # (n_features, context_size, lu_linear)
    (1, 0, False),
    (1, 3, False),
    (2, 0, False),
    (2, 3, True),
    (5, 0, True),
    (5, 3, False),
]


def _randomised_flow(n_features, context_size, lu_linear, seed=0):
    torch.manual_seed(seed)
    flow = spline_flow(
        n_features, context_size=context_size, n_layers=3, hidden_size=16, n_bins=6, tail_bound=3.0, lu_linear=lu_linear
    ).double()
    with torch.no_grad():
        for parameter in flow.parameters():
            # Large enough that every spline is far from the identity, small enough
            # that the map stays well conditioned (0.5 gives slopes near 1e-3).
            parameter.copy_(0.3 * torch.randn_like(parameter))
    return flow


def _inputs(n_features, context_size, n=64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = 2.5 * torch.randn(n, n_features, generator=generator, dtype=torch.float64)
    x[:4] *= 3.0  # points in the identity tails
    context = torch.randn(n, context_size, generator=generator, dtype=torch.float64) if context_size else None
    return x, context


@pytest.mark.parametrize("n_features, context_size, lu_linear", CONFIGS)
def test_inverse_of_forward_is_identity(n_features, context_size, lu_linear):
    flow = _randomised_flow(n_features, context_size, lu_linear)
    x, context = _inputs(n_features, context_size)
    distribution = flow(context)
    z, _ = distribution.transform(x)
    torch.testing.assert_close(distribution.inverse(z), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_features, context_size, lu_linear", CONFIGS)
def test_log_det_matches_autograd_jacobian(n_features, context_size, lu_linear):
    flow = _randomised_flow(n_features, context_size, lu_linear)
    x, context = _inputs(n_features, context_size, n=8)
    for i in range(x.shape[0]):
        row_context = context[i] if context is not None else None
        distribution = flow(row_context)
        jacobian = torch.autograd.functional.jacobian(lambda v: distribution.transform(v)[0], x[i])
        _, log_det = distribution.transform(x[i])
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(log_det, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_features, context_size, lu_linear", CONFIGS)
def test_fresh_flow_is_the_identity(n_features, context_size, lu_linear):
    flow = spline_flow(n_features, context_size=context_size, n_layers=3, lu_linear=lu_linear).double()
    from nvf_sklearn._engine.initialization import initialize_parameters

    initialize_parameters(flow, torch.Generator().manual_seed(0))
    x, context = _inputs(n_features, context_size)
    z, log_det = flow(context).transform(x)
    # An even number of reversals cancel; an odd number leaves the order reversed.
    n_reversals = 3 if n_features > 1 else 0
    expected = x.flip(-1) if n_reversals % 2 else x
    torch.testing.assert_close(z, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros(x.shape[0], dtype=torch.float64), atol=1e-12, rtol=0)


def test_contexts_broadcast_against_points():
    """(n, 1, d) points against (K, c) contexts give (n, K), equal to a loop over k."""
    flow = _randomised_flow(3, 4, True)
    x, _ = _inputs(3, 0, n=10)
    contexts = torch.randn(5, 4, dtype=torch.float64)
    batched = flow(contexts).log_prob(x.unsqueeze(1))
    assert batched.shape == (10, 5)
    looped = torch.stack([flow(contexts[k]).log_prob(x) for k in range(5)], dim=1)
    torch.testing.assert_close(batched, looped, atol=1e-12, rtol=0)


def test_samples_have_the_context_batch_shape():
    flow = _randomised_flow(2, 3, False)
    contexts = torch.randn(4, 3, dtype=torch.float64)
    samples = flow(contexts).sample((7,), torch.Generator().manual_seed(0))
    assert samples.shape == (7, 4, 2)
    assert torch.isfinite(samples).all()


def test_gradients_reach_every_parameter():
    flow = _randomised_flow(3, 2, True)
    x, context = _inputs(3, 2)
    flow(context).log_prob(x).sum().backward()
    for name, parameter in flow.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_lu_linear_log_det_matches_slogdet():
    layer = LULinear(4).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.randn_like(parameter))
    lower, upper = layer._factors()
    x = torch.randn(3, 4, dtype=torch.float64)
    _, log_det = layer(x)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(lower @ upper).logabsdet.expand(3))
