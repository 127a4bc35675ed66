"""Per-feature standardisation, fitted on the training rows only."""

from __future__ import annotations

import numpy as np


def location_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column of ``X`` (1 where it is 0).

    The estimators model ``z = (x - location) / scale`` and add the
    log-Jacobian ``-sum(log scale)`` back to every log-density, so scores stay
    in the units of ``x``. The standard deviation, not a robust scale, is used
    on purpose: on multi-modal data an interquartile range can see a single
    mode and push the others far outside the spline interval.

    Examples
    --------
    >>> import numpy as np
    >>> location, scale = location_scale(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> location.tolist(), scale.tolist()
    ([1.0, 5.0], [1.0, 1.0])
    """
    X = np.asarray(X, dtype=np.float64)
    scale = X.std(axis=0)
    return X.mean(axis=0), np.where(scale > 0, scale, 1.0)
