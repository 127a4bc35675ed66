"""Dequantisation and bits-per-dimension conversions, checked on known answers."""

import math

import pytest
import torch

from nvf_sklearn._engine.bits import (
    bits_per_dim,
    dequantize,
    log_density_from_bits_per_dim,
    logit_inverse,
    logit_log_det,
    logit_transform,
    quantize,
)


@pytest.mark.parametrize("n_levels", [2, 17, 256])
def test_uniform_density_gives_log2_levels_bits(n_levels):
    assert bits_per_dim(0.0, 64, n_levels) == pytest.approx(math.log2(n_levels))
    assert bits_per_dim(torch.zeros(3, dtype=torch.float64), 784, n_levels).tolist() == pytest.approx(
        [math.log2(n_levels)] * 3
    )


def test_known_answers():
    # A density twice the uniform one in every dimension saves exactly one bit per dimension.
    D, L = 10, 256
    assert bits_per_dim(D * math.log(2.0), D, L) == pytest.approx(7.0)
    # MAF's MNIST Gaussian: -1366.9 nats in logit space is not bits/dim; 2.01 bpd in pixel space
    # corresponds to log q(y) = 784 log 256 - 2.01 * 784 log 2 nats.
    assert log_density_from_bits_per_dim(2.01, 784, 256) == pytest.approx(784 * (8 - 2.01) * math.log(2))
    assert bits_per_dim(log_density_from_bits_per_dim(1.23, 64, 17), 64, 17) == pytest.approx(1.23)


def test_uniform_over_the_levels_is_the_discrete_entropy():
    """A discrete model P(p) = q(bin) with q uniform on 17 levels costs log2(17) bits; dequantised, the
    same: with q constant on each bin, bpd in [0,1) space equals -log2 P(p) / D exactly."""
    n_levels, D = 17, 4
    probabilities = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    levels = torch.tensor([[0, 1, 2, 3]])
    # Piecewise-constant density on [0,1): mass P(level) spread over a bin of width 1/L.
    log_q = torch.log(probabilities[levels] * n_levels).sum(dim=1)
    expected = -torch.log2(probabilities[levels]).sum(dim=1) / D
    torch.testing.assert_close(bits_per_dim(log_q, D, n_levels), expected)


def test_dequantize_lies_in_the_right_bins_and_round_trips():
    generator = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 17, (500, 64), generator=generator)
    y = dequantize(levels, 17, generator)
    assert y.dtype == torch.get_default_dtype()
    assert y.min() >= 0.0 and y.max() < 1.0
    assert torch.equal(quantize(y, 17), levels)
    # The noise is uniform within each bin: its mean is near 1/2.
    assert abs((y * 17 - levels).mean().item() - 0.5) < 0.01
    again = dequantize(levels.double(), 17, torch.Generator().manual_seed(0))
    assert again.dtype == torch.float64


def test_logit_round_trip_and_log_det_matches_autograd():
    generator = torch.Generator().manual_seed(1)
    y = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    y[0, 0], y[0, 1] = 0.0, 1.0  # the faces of the cube stay finite
    alpha = 0.05
    s, log_det = logit_transform(y, alpha)
    assert torch.isfinite(s).all() and torch.isfinite(log_det).all()
    torch.testing.assert_close(logit_inverse(s, alpha), y, atol=1e-12, rtol=0)
    for i in range(3):
        jacobian = torch.autograd.functional.jacobian(lambda v: logit_transform(v[None], alpha)[0][0], y[i])
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jacobian).logabsdet)
    torch.testing.assert_close(logit_log_det(y, alpha), log_det)


def test_logit_space_density_converts_to_pixel_space():
    """The uniform density on [0,1) seen in logit space, converted back, is uniform again."""
    alpha = 0.1
    y = torch.rand(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    s, log_det = logit_transform(y, alpha)
    # Density of s when y ~ U[0,1)^D: q_s(s) = |dy/ds| = exp(-log_det).
    log_q_s = -log_det
    log_q_y = log_q_s + logit_log_det(y, alpha)
    torch.testing.assert_close(bits_per_dim(log_q_y, 6, 17), torch.full((4,), math.log2(17), dtype=torch.float64))
