"""Dequantisation, the logit space and bits per dimension, checked on known answers."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.dequantization import bits_per_dim, dequantize, logit_inverse, logit_transform

from .conftest import F64, generator, jacobian_log_abs_det


@pytest.mark.parametrize("n_levels", [2, 17, 256])
def test_uniform_density_gives_log2_levels_bits(n_levels):
    assert bits_per_dim(0.0, 64, n_levels) == pytest.approx(math.log2(n_levels))
    assert bits_per_dim(torch.zeros(3, dtype=F64), 784, n_levels).tolist() == pytest.approx([math.log2(n_levels)] * 3)


def test_known_answers():
    # A density twice the uniform one in every dimension saves exactly one bit per dimension.
    assert bits_per_dim(10 * math.log(2.0), 10, 256) == pytest.approx(7.0)
    # 2.01 bits/dim on 784 pixels of 256 levels is log q(y) = 784 (8 - 2.01) log 2 nats in [0, 1) space.
    assert bits_per_dim(784 * (8 - 2.01) * math.log(2.0), 784, 256) == pytest.approx(2.01)


def test_uniform_over_the_levels_is_the_discrete_entropy():
    """With q constant on each bin, bpd in [0, 1) space equals -log2 P(p) / D exactly."""
    n_levels, n_dims = 17, 4
    probabilities = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=F64)
    levels = torch.tensor([[0, 1, 2, 3]])
    # Piecewise-constant density on [0, 1): mass P(level) spread over a bin of width 1 / L.
    log_q = torch.log(probabilities[levels] * n_levels).sum(dim=1)
    expected = -torch.log2(probabilities[levels]).sum(dim=1) / n_dims
    assert_close(bits_per_dim(log_q, n_dims, n_levels), expected)


def test_dequantize_lies_in_the_right_bins():
    """``(p + u) / L`` from grid points ``p / L`` and ``u`` in [0, 1) lies in bin p, uniformly within it."""
    levels = torch.randint(0, 17, (500, 64), generator=generator())
    grid = levels.to(F64) / 17
    noise = torch.rand(500, 64, generator=generator(1), dtype=F64)
    noise[0] = 0.0
    noise[1] = 1.0 - 1e-9
    y = dequantize(grid, noise, 17)
    assert y.dtype == F64 and y.shape == grid.shape
    assert torch.equal(dequantize(grid, torch.zeros_like(noise), 17), grid)
    assert (y >= grid).all() and (y < (levels + 1).to(F64) / 17).all()
    assert (y >= 0).all() and (y < 1).all()
    assert abs((y * 17 - levels).mean().item() - 0.5) < 0.01
    assert_close(dequantize(levels.to(F64), noise), levels + noise, atol=0, rtol=0)  # n_levels=1: pixel units


def test_dequantize_works_on_numpy_arrays():
    levels = np.arange(12).reshape(3, 4) % 5
    noise = np.linspace(0.0, 0.99, 12).reshape(3, 4)
    y = dequantize(levels / 5, noise, 5)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, (levels + noise) / 5, atol=1e-15, rtol=0)
    np.testing.assert_allclose(y, dequantize(torch.from_numpy(levels / 5), torch.from_numpy(noise), 5).numpy())


def test_logit_round_trip_and_log_det_matches_autograd():
    y = torch.rand(3, 5, generator=generator(1), dtype=F64)
    y[0, 0], y[0, 1] = 0.0, 1.0  # the faces of the cube stay finite
    alpha = 0.05
    s, log_det = logit_transform(y, alpha)
    assert torch.isfinite(s).all() and torch.isfinite(log_det).all() and log_det.shape == (3,)
    assert_close(logit_inverse(s, alpha), y, atol=1e-12, rtol=0)
    for i in range(3):
        expected = jacobian_log_abs_det(lambda v: logit_transform(v[None], alpha)[0][0], y[i])
        assert_close(log_det[i], expected, atol=1e-12, rtol=0)


def test_logit_log_det_converts_a_logit_space_density_to_pixel_space():
    """y ~ U[0, 1)^D has, in logit space, the density prod sigmoid'(s) / (1 - 2 alpha) (computed from s alone);
    adding ``log|ds/dy|`` must give back the uniform density: log2(L) bits per dimension."""
    alpha = 0.1
    y = torch.rand(4, 6, generator=generator(2), dtype=F64)
    s, log_det = logit_transform(y, alpha)
    sigmoid = torch.sigmoid(s)
    log_q_s = (torch.log(sigmoid * (1 - sigmoid)) - math.log(1 - 2 * alpha)).sum(dim=1)
    assert_close(bits_per_dim(log_q_s + log_det, 6, 17), torch.full((4,), math.log2(17), dtype=F64))
