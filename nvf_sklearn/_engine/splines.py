"""Monotone rational-quadratic splines (Durkan et al., 2019) with identity tails.

Every function here is element-wise over the leading dimensions and works on
static shapes: no boolean indexing, no host synchronisation, no asserts, so the
same code runs unchanged on CPU and GPU.

A spline on ``[-B, B]`` with ``n_bins`` bins is described by ``3 * n_bins - 1``
raw (unconstrained) numbers per element: ``n_bins`` bin widths, ``n_bins`` bin
heights and ``n_bins - 1`` interior knot derivatives. The derivatives at
``-B`` and ``B`` are fixed to 1 so the spline joins the identity tails
smoothly. All raw numbers equal to zero give the identity map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Smallest bin width or height, as a fraction of the interval length.
MIN_BIN_FRACTION = 1e-3
#: Knot derivatives live in ``(exp(-LOG_DERIVATIVE_LIMIT), exp(LOG_DERIVATIVE_LIMIT))``.
LOG_DERIVATIVE_LIMIT = math.log(1e3)
#: Width and height logits are soft-clipped to ``(-LOGIT_LIMIT, LOGIT_LIMIT)``.
LOGIT_LIMIT = 8.0


def n_spline_parameters(n_bins: int) -> int:
    """Number of raw parameters of one spline with ``n_bins`` bins."""
    return 3 * n_bins - 1


def soft_clip(raw: Tensor, limit: float) -> Tensor:
    """Map ``raw`` smoothly into ``(-limit, limit)``; close to identity near 0."""
    return raw / (1.0 + raw.abs() / limit)


def _knot_positions(logits: Tensor, bound: float) -> Tensor:
    """Cumulative knot positions ``(..., n_bins + 1)`` from ``-bound`` to ``bound``."""
    n_bins = logits.shape[-1]
    fractions = torch.softmax(soft_clip(logits, LOGIT_LIMIT), dim=-1)
    fractions = MIN_BIN_FRACTION + (1.0 - MIN_BIN_FRACTION * n_bins) * fractions
    knots = F.pad(torch.cumsum(fractions, dim=-1), (1, 0))
    knots = 2.0 * bound * knots - bound
    # Pin the last knot exactly: the cumulative sum can miss 1 by rounding.
    return torch.cat([knots[..., :-1], torch.full_like(knots[..., -1:], bound)], dim=-1)


def _knot_derivatives(raw: Tensor) -> Tensor:
    """Derivatives at all ``n_bins + 1`` knots; the two boundary ones are 1."""
    interior = torch.exp(soft_clip(raw, LOG_DERIVATIVE_LIMIT))
    return F.pad(interior, (1, 1), value=1.0)


def _bin_index(knots: Tensor, values: Tensor) -> Tensor:
    """Index of the bin that holds each value; ``values`` lie in ``[-B, B]``."""
    interior = knots[..., 1:-1]
    return (values.unsqueeze(-1) >= interior).sum(dim=-1, keepdim=True)


def _gather(table: Tensor, index: Tensor) -> Tensor:
    return table.gather(-1, index).squeeze(-1)


def rq_spline(
    inputs: Tensor, params: Tensor, bound: float, inverse: bool = False
) -> tuple[Tensor, Tensor]:
    """Apply a rational-quadratic spline element-wise, or its inverse.

    Parameters
    ----------
    inputs : Tensor of shape ``(...)``
        Points to transform.
    params : Tensor of shape ``(..., 3 * n_bins - 1)``
        Raw spline parameters; the leading shape equals ``inputs.shape``.
    bound : float
        Half-width ``B`` of the spline interval; outside ``[-B, B]`` the map
        is the identity.
    inverse : bool, default=False
        Apply the inverse map instead.

    Returns
    -------
    outputs : Tensor of shape ``(...)``
    log_abs_det : Tensor of shape ``(...)``
        ``log |d outputs / d inputs|`` of the map actually applied.
    """
    n_bins = (params.shape[-1] + 1) // 3
    raw_widths, raw_heights, raw_derivatives = params.split(
        [n_bins, n_bins, n_bins - 1], dim=-1
    )
    x_knots = _knot_positions(raw_widths, bound)
    y_knots = _knot_positions(raw_heights, bound)
    derivatives = _knot_derivatives(raw_derivatives)

    inside = (inputs > -bound) & (inputs < bound)
    clamped = inputs.clamp(-bound, bound)
    index = _bin_index(y_knots if inverse else x_knots, clamped)

    x_left = _gather(x_knots[..., :-1], index)
    width = _gather(x_knots[..., 1:] - x_knots[..., :-1], index)
    y_left = _gather(y_knots[..., :-1], index)
    height = _gather(y_knots[..., 1:] - y_knots[..., :-1], index)
    d_left = _gather(derivatives[..., :-1], index)
    d_right = _gather(derivatives[..., 1:], index)
    slope = height / width
    curvature = d_left + d_right - 2.0 * slope

    if inverse:
        # Solve a xi^2 + b xi + c = 0 with the cancellation-free root.
        dy = clamped - y_left
        a = height * (slope - d_left) + dy * curvature
        b = height * d_left - dy * curvature
        c = -slope * dy
        discriminant = (b * b - 4.0 * a * c).clamp_min(0.0)
        xi = (2.0 * c) / (-b - discriminant.sqrt())
        xi = xi.clamp(0.0, 1.0)
        spline_out = x_left + xi * width
    else:
        xi = ((clamped - x_left) / width).clamp(0.0, 1.0)

    xi_1m = xi * (1.0 - xi)
    denominator = slope + curvature * xi_1m
    if not inverse:
        numerator = height * (slope * xi * xi + d_left * xi_1m)
        spline_out = y_left + numerator / denominator
    derivative_numerator = slope * slope * (
        d_right * xi * xi + 2.0 * slope * xi_1m + d_left * (1.0 - xi) ** 2
    )
    log_derivative = torch.log(derivative_numerator) - 2.0 * torch.log(denominator)
    if inverse:
        log_derivative = -log_derivative

    outputs = torch.where(inside, spline_out, inputs)
    log_abs_det = torch.where(inside, log_derivative, torch.zeros_like(log_derivative))
    return outputs, log_abs_det
