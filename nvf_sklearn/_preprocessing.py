"""What the estimators do to X before the model sees it, and the log-Jacobian they add back.

Each preprocessor is fitted on the training rows and maps X to the model's
space with ``transform``, back with ``inverse_transform``, and states the
constant ``log_det`` of ``transform``: a model density in its space plus
``log_det`` is the density in the units of X. The template never branches on
the kind of data: tables get z-scores (:class:`Standardizer`), images of
integer pixel levels get ``x / n_levels`` (:class:`PixelScaler`).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

#: Largest spread of a column: up to it, samples of up to 10^4 standard
#: deviations stay below float64's largest value (about 1.8e308).
MAX_SCALE = 1e304


class Standardizer:
    """Per-feature z-scores ``z = (x - location) / scale`` from weighted training rows.

    The standard deviation, not a robust scale, is used on purpose: on
    multi-modal data an interquartile range can see a single mode and push
    the others far outside the spline interval. Columns are first divided by
    their largest magnitude, so squaring cannot overflow at any scale a float64
    can hold; a constant column gets scale one.

    Examples
    --------
    >>> import numpy as np
    >>> standardizer = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> standardizer.location_.tolist(), standardizer.scale_.tolist()
    ([1.0, 5.0], [1.0, 1.0])
    >>> float(standardizer.log_det)
    -0.0
    """

    def fit(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        magnitude = np.abs(X).max(axis=0)
        magnitude = np.where(magnitude > 0, magnitude, 1.0)
        location = np.average(X / magnitude, axis=0, weights=sample_weight)
        variance = np.average((X / magnitude - location) ** 2, axis=0, weights=sample_weight)
        scale = np.sqrt(variance) * magnitude
        self.location_ = location * magnitude
        self.scale_ = np.where(scale > 0, scale, 1.0)
        if np.any(self.scale_ > MAX_SCALE):
            column = int(np.argmax(self.scale_))
            raise ValueError(
                f"X's column {column} has a spread of {self.scale_[column]:.3g}, too close to the largest "
                "float64 for samples and scores to stay finite; divide X by a constant first."
            )
        return self

    @property
    def log_det(self) -> float:
        """``log|dz/dx| = -sum(log scale)``."""
        return -float(np.log(self.scale_).sum())

    def transform(self, X: np.ndarray) -> np.ndarray:
        # A point too far away for float64 becomes inf here, and its density -inf downstream.
        with np.errstate(over="ignore"):
            return (np.asarray(X, dtype=np.float64) - self.location_) / self.scale_

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        return Z * self.scale_ + self.location_


class PixelScaler:
    """Pixels to the unit cube, ``y = x / n_levels``; checks that training rows are whole pixel levels.

    Examples
    --------
    >>> import numpy as np
    >>> scaler = PixelScaler(n_levels=4).fit(np.array([[0, 3], [1, 2]]))
    >>> scaler.transform(np.array([[2.0, 4.0]])).tolist()
    [[0.5, 1.0]]
    >>> round(scaler.log_det, 4)  # -2 log 4
    -2.7726
    """

    def __init__(self, n_levels: int) -> None:
        self.n_levels = n_levels

    def fit(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> PixelScaler:
        check_pixel_levels(X, self.n_levels)
        self.n_features_ = X.shape[1]
        return self

    @property
    def log_det(self) -> float:
        """``log|dy/dx| = -D log(n_levels)``."""
        return -self.n_features_ * float(np.log(self.n_levels))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) / self.n_levels

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        return Y * self.n_levels


def check_pixel_levels(X: np.ndarray, n_levels: int) -> None:
    """Raise a ValueError naming the problem unless X holds whole levels in ``[0, n_levels)``."""
    if X.min() < 0 or X.max() > n_levels - 1:
        negative = "Negative values in data: " if X.min() < 0 else ""
        raise ValueError(
            f"{negative}expected pixel levels in {{0, ..., {n_levels - 1}}} (n_levels={n_levels}), but X ranges over "
            f"[{X.min():g}, {X.max():g}]; pass the raw integer levels (e.g. 0..255 for 8-bit images) and the "
            "matching n_levels."
        )
    if not np.array_equal(X, np.floor(X)):
        raise ValueError(
            "expected integer pixel levels, but X has fractional values; pass the raw levels "
            "(dequantisation noise is added during fit)."
        )


def resolve_image_shape(image_shape, n_features: int) -> tuple[int, int, int]:
    """``(H, W)``, ``(C, H, W)`` or None as a ``(C, H, W)`` tuple that matches ``n_features``.

    None means one channel: a square image when ``n_features`` is a perfect
    square, else a single row of pixels.

    Examples
    --------
    >>> resolve_image_shape((8, 8), 64)
    (1, 8, 8)
    >>> resolve_image_shape(None, 784), resolve_image_shape(None, 5)
    ((1, 28, 28), (1, 1, 5))
    """
    if image_shape is None:
        side = int(round(np.sqrt(n_features)))
        return (1, side, side) if side * side == n_features else (1, 1, n_features)
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
