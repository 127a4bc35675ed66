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

#: Weighted percentiles that bound a column's central range: they see every
#: mode that holds more than 1% of the weight, and only a share under 1% of
#: the weight on each side can move them, so a few gross outliers cannot.
#: (Below 100 rows of equal weight they are the extremes and nothing is left out.)
CENTRAL_QUANTILES = (0.01, 0.99)

#: A row is left out of its column's mean and standard deviation when it lies
#: more than this many central ranges beyond the range's ends. For a Gaussian
#: column the fence is about 16 standard deviations from the mean, where no
#: genuine row of any realistic sample lies; a rare mode (under 1% of the
#: weight) within three widths of the main modes' whole extent stays in. A row
#: just inside the fence can still widen the scale, but by a bounded factor,
#: not by the outlier's own size.
OUTLIER_FENCE = 3.0


class Standardizer:
    """Per-feature z-scores ``z = (x - location) / scale`` from weighted training rows.

    ``location`` and ``scale`` are the weighted mean and standard deviation of
    the column's rows inside an outlier fence: with ``low, high`` the
    column's weighted 1st and 99th percentiles (:data:`CENTRAL_QUANTILES`) and
    ``span = high - low``, rows outside ``[low - F span, high + F span]``
    (``F`` = :data:`OUTLIER_FENCE`) are left out of that column's moments.
    The rows themselves are kept and transformed like any other, so the map
    stays affine and ``log_det = -sum(log scale)`` is exact. A column whose
    percentiles coincide (``span == 0``, e.g. a rare indicator) excludes
    nothing.

    The standard deviation, not a robust scale, is used on purpose: on
    multi-modal data an interquartile range can see a single mode and push
    the others far outside the spline interval. The percentiles only decide
    which rows are gross outliers; on data without them the result is the plain
    weighted mean and standard deviation. Zero-weight rows take no part in
    either. The fence is computed in units of the percentiles' magnitude and
    the moments in units of the largest kept magnitude, so neither overflows at
    any scale a float64 can hold; a constant column gets scale one.

    Attributes
    ----------
    location_, scale_ : ndarray of shape (n_features,)
        The z-score's shift and divisor.
    n_excluded_ : ndarray of shape (n_features,)
        Rows of positive weight left out of each column's moments (diagnostic).

    Examples
    --------
    >>> import numpy as np
    >>> standardizer = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> standardizer.location_.tolist(), standardizer.scale_.tolist()
    ([1.0, 5.0], [1.0, 1.0])
    >>> float(standardizer.log_det)
    -0.0

    One value of 1e9 among 0, 1, ..., 199 is left out of the moments, not out of the data:

    >>> robust = Standardizer().fit(np.r_[np.arange(200.0), 1e9][:, None])
    >>> robust.n_excluded_.tolist(), robust.location_.round(2).tolist(), robust.scale_.round(2).tolist()
    ([1], [99.5], [57.73])
    """

    def fit(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        weighted = (weights > 0)[:, None]
        inside = np.column_stack([inside_outlier_fence(column, weights) for column in X.T])
        self.n_excluded_ = np.sum(weighted & ~inside, axis=0)
        self.location_, scale = weighted_moments(X, weights, weighted & inside)
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


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels) -> np.ndarray:
    """The smallest values whose cumulative weight reaches each level of the total (inverted CDF).

    A row of weight ``w`` counts as ``w`` copies of itself; a zero-weight row is never returned.

    Examples
    --------
    >>> weighted_quantiles(np.array([3.0, 1.0, 2.0, 9.0]), np.array([1.0, 1.0, 2.0, 0.0]), [0.25, 0.5, 1.0]).tolist()
    [1.0, 2.0, 3.0]
    """
    if np.all(weights == weights[0]):  # the same quantiles, by selection instead of a sort
        return np.quantile(values, levels, method="inverted_cdf")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    positions = np.searchsorted(cumulative, np.asarray(levels) * cumulative[-1], side="left")
    return values[order][np.minimum(positions, len(values) - 1)]


def inside_outlier_fence(column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Which rows of one column lie within :data:`OUTLIER_FENCE` central ranges of the weighted central range."""
    low, high = weighted_quantiles(column, weights, CENTRAL_QUANTILES)
    if high == low:
        return np.ones(len(column), dtype=bool)
    # In units of the percentiles' magnitude the fence is at most 2 + 4 F: no overflow at any scale.
    unit = max(abs(low), abs(high))
    low, high = low / unit, high / unit
    reach = OUTLIER_FENCE * (high - low)
    with np.errstate(over="ignore"):
        scaled = column / unit
    return (scaled >= low - reach) & (scaled <= high + reach)


def weighted_moments(X: np.ndarray, weights: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column weighted mean and standard deviation over the ``counted`` rows, without overflow.

    Each column is divided by its largest counted magnitude before squaring;
    rows not counted take no part, not even in that magnitude.
    """
    magnitude = np.where(counted, np.abs(X), 0.0).max(axis=0)
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    column_weights = np.where(counted, weights[:, None], 0.0)
    with np.errstate(over="ignore"):
        scaled = np.where(counted, X / magnitude, 0.0)
    mean = np.average(scaled, axis=0, weights=column_weights)
    variance = np.average((scaled - mean) ** 2, axis=0, weights=column_weights)
    return mean * magnitude, np.sqrt(variance) * magnitude


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
