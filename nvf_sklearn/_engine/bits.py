"""Discrete pixels as continuous data: dequantisation, the logit space, bits per dimension.

Integer pixel levels ``p`` in ``{0, ..., L - 1}`` become points of the unit cube
by uniform dequantisation, ``y = (p + u) / L`` with ``u ~ U[0, 1)^D``. A density
``q`` on ``[0, 1)^D`` then bounds the discrete model ``P(p) = int q(y) du``
(Theis et al., 2016), and in bits per dimension

    bpd = (-log q(y) + D log L) / (D log 2).

A model fitted in logit space, ``s = logit(alpha + (1 - 2 alpha) y)``, has
``log q(y) = log q_s(s) + log |ds/dy|``; :func:`logit_log_det` is that second
term. Every figure must name its space: these helpers make the conversion
explicit, so that no log-Jacobian is forgotten.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dequantize(levels: Tensor, n_levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniformly dequantise integer levels: ``y = (p + u) / L`` in ``[0, 1)``.

    ``levels`` may be an integer or floating tensor of whole numbers in
    ``{0, ..., n_levels - 1}``; the output has the default floating dtype
    for integer input, else the input's dtype.
    """
    dtype = levels.dtype if levels.is_floating_point() else torch.get_default_dtype()
    noise = torch.rand(levels.shape, generator=generator, dtype=dtype, device=levels.device)
    return (levels.to(dtype) + noise) / n_levels


def add_dequantization_noise(y: Tensor, n_levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Dequantise pixels already scaled to the unit cube: ``p / L -> (p + u) / L``.

    The form the estimators train on: the grid points ``p / L`` stay on the
    device, and every epoch draws new noise.
    """
    noise = torch.rand(y.shape, generator=generator, dtype=y.dtype, device=y.device)
    return y + noise / n_levels


def quantize(y: Tensor, n_levels: int) -> Tensor:
    """The integer level of each dequantised value: ``floor(y * L)``, clipped to ``[0, L - 1]``."""
    return torch.floor(y * n_levels).clamp(0, n_levels - 1).long()


def logit_transform(y: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """``s = logit(alpha + (1 - 2 alpha) y)`` and ``log |ds/dy|`` summed over all but dim 0.

    Valid for ``y`` in ``[0, 1]`` with ``0 < alpha < 1/2``: the squeeze by
    ``alpha`` keeps ``s`` finite at the cube's faces.
    """
    t = alpha + (1.0 - 2.0 * alpha) * y
    s = torch.log(t) - torch.log1p(-t)
    log_det = math.log(1.0 - 2.0 * alpha) - torch.log(t) - torch.log1p(-t)
    return s, log_det.flatten(1).sum(dim=1)


def logit_inverse(s: Tensor, alpha: float) -> Tensor:
    """Inverse of :func:`logit_transform`: ``y = (sigmoid(s) - alpha) / (1 - 2 alpha)``."""
    return (torch.sigmoid(s) - alpha) / (1.0 - 2.0 * alpha)


def logit_log_det(y: Tensor, alpha: float) -> Tensor:
    """``log |ds/dy|`` of the logit transform, per row: add it to a logit-space log-density."""
    return logit_transform(y, alpha)[1]


def bits_per_dim(log_density: Tensor | float, n_dims: int, n_levels: int) -> Tensor | float:
    """Bits per dimension of a log-density ``log q(y)`` (nats) on ``[0, 1)^D``.

    ``bpd = (-log q(y) + D log L) / (D log 2)``: the density in the unit cube
    is first rescaled to the ``[0, L)`` integer grid, where a bin has volume 1.
    A uniform density (``log q = 0``) gives ``log2(L)``.
    """
    return (-log_density + n_dims * math.log(n_levels)) / (n_dims * math.log(2.0))


def log_density_from_bits_per_dim(bpd: Tensor | float, n_dims: int, n_levels: int) -> Tensor | float:
    """Inverse of :func:`bits_per_dim`: the log-density in ``[0, 1)^D``, nats."""
    return n_dims * math.log(n_levels) - bpd * n_dims * math.log(2.0)
