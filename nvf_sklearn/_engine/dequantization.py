"""Discrete pixels as continuous data: dequantisation, the logit space, bits per dimension.

Integer pixel levels ``p`` in ``{0, ..., L - 1}`` become points of the unit cube
by uniform dequantisation, ``y = (p + u) / L`` with ``u ~ U[0, 1)^D``. A density
``q`` on ``[0, 1)^D`` then bounds the discrete model ``P(p) = int q(y) du``
(Theis et al., 2016), and in bits per dimension

    bpd = (-log q(y) + D log L) / (D log 2).

A model fitted in logit space, ``s = logit(alpha + (1 - 2 alpha) y)``, has
``log q(y) = log q_s(s) + log |ds/dy|``; :func:`logit_transform` returns that
second term beside ``s``. Every figure must
name its space: these helpers make the conversion explicit, so that no
log-Jacobian is forgotten.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dequantize(grid, noise, n_levels: int = 1):
    """Uniform dequantisation, the one place it happens: ``(p + u) / L`` from grid points ``p / L``.

    ``grid`` holds whole pixel levels ``p`` divided by ``n_levels`` (the unit
    cube; ``n_levels=1`` keeps pixel units) and ``noise`` the matching
    ``u ~ U[0, 1)``, drawn by the caller (so a captured training step stays a
    pure function of its inputs). Works on tensors and, unchanged, on arrays.
    """
    return grid + noise / n_levels


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


def bits_per_dim(log_density: Tensor | float, n_dims: int, n_levels: int) -> Tensor | float:
    """Bits per dimension of a log-density ``log q(y)`` (nats) on ``[0, 1)^D``.

    ``bpd = (-log q(y) + D log L) / (D log 2)``: the density in the unit cube
    is first rescaled to the ``[0, L)`` integer grid, where a bin has volume 1.
    A uniform density (``log q = 0``) gives ``log2(L)``.
    """
    return (-log_density + n_dims * math.log(n_levels)) / (n_dims * math.log(2.0))
