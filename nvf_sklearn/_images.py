"""Images as rows of integer pixel levels: shape and value checks, and their scaling.

The image estimators take X of shape ``(n, C * H * W)`` whose entries are the
pixel levels ``p`` in ``{0, ..., n_levels - 1}``. They model the dequantised
pixels ``x = p + u``, ``u ~ U[0, 1)``, scaled to the unit cube as
``y = x / n_levels``; the scaling's log-Jacobian ``-D log(n_levels)`` is added
back, so scores are densities of ``x`` in pixel-level units, where one
quantisation bin has volume one and ``-score_samples(x) / (D log 2)`` is
directly the bits per dimension.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np


def resolve_image_shape(image_shape, n_features: int) -> tuple[int, int, int]:
    """``(H, W)`` or ``(C, H, W)`` as a ``(C, H, W)`` tuple that matches ``n_features``.

    Examples
    --------
    >>> resolve_image_shape((8, 8), 64)
    (1, 8, 8)
    """
    shape = tuple(image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or not all(isinstance(side, Integral) and side > 0 for side in shape):
        raise ValueError(f"image_shape must be (H, W) or (C, H, W) of positive integers, got {image_shape!r}.")
    shape = tuple(int(side) for side in shape)
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} holds {int(np.prod(shape))} pixels but X has "
            f"{n_features} features; pass rows of C * H * W pixel levels or fix image_shape."
        )
    return shape


def check_pixel_levels(X: np.ndarray, n_levels: int, estimator_name: str) -> None:
    """Raise a ValueError naming the problem unless X holds whole levels in ``[0, n_levels)``."""
    if X.min() < 0 or X.max() > n_levels - 1:
        raise ValueError(
            f"{estimator_name} with image_shape expects pixel levels in {{0, ..., {n_levels - 1}}} "
            f"(n_levels={n_levels}), but X ranges over [{X.min():g}, {X.max():g}]; pass the raw "
            "integer levels (e.g. 0..255 for 8-bit images) and the matching n_levels."
        )
    if not np.array_equal(X, np.floor(X)):
        raise ValueError(
            f"{estimator_name} with image_shape expects integer pixel levels, but X has fractional "
            "values; pass the raw levels (dequantisation noise is added during fit)."
        )


def pixel_scaling(n_features: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Location 0 and scale ``n_levels`` for every pixel: ``y = x / n_levels``."""
    return np.zeros(n_features), np.full(n_features, float(n_levels))
