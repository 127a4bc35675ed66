"""What the image estimators share: pixel levels, dequantisation, the image flow, bits per dimension.

X holds images as rows of ``C * H * W`` integer pixel levels ``p`` in
``{0, ..., n_levels - 1}``. The models see the dequantised pixels
``x = p + u``, ``u ~ U[0, 1)``, scaled to the unit cube, ``y = x / n_levels``
(:class:`~._preprocessing.PixelScaler`); the scaling's log-Jacobian is added
back, so ``score_samples`` is a density of ``x`` in pixel-level units, where a
quantisation bin has volume one and ``-score_samples(x) / (D log 2)`` is
directly the bits per dimension. Training rows get fresh noise every epoch
(inside the engine model); validation rows get one fixed draw.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ._base import BaseFlowDensity
from ._budget import BudgetRule
from ._compat import Interval
from ._engine import ImageFlow, dequantize
from ._preprocessing import PixelScaler, check_pixel_levels, resolve_image_shape

#: Images go through a fixed logit pre-transform with this squeeze (its log-Jacobian is exact).
LOGIT_ALPHA = 0.05


class BaseImageDensity(BaseFlowDensity):
    """Template for the image estimators; not for direct use."""

    _parameter_constraints: dict = {
        **BaseFlowDensity._parameter_constraints,
        "image_shape": [tuple, list, None],
        "n_levels": [Interval(Integral, 2, None, closed="left")],
        "n_scales": [Interval(Integral, 0, None, closed="left")],
        "couplings_per_scale": [Interval(Integral, 1, None, closed="left")],
        "hidden_channels": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 1, None, closed="left")],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "tail_bound": [Interval(Real, 0, None, closed="neither")],
    }
    #: Images train in batches of 64 on a CPU (measured on digits: 64 beats 256 per second).
    _budget_rule = BudgetRule(min_batch=64, max_batch=64, batch_rows_fraction=1 / 16, gpu_batch=256, reference_batch=64,
                              steps_per_sqrt_row=60.0, min_steps=1000, max_steps=50_000, checks_per_budget=40)  # fmt: skip

    def __init__(
        self, *, image_shape, n_levels, n_scales, couplings_per_scale, hidden_channels, n_blocks, n_bins, tail_bound,
        **training,
    ):  # fmt: skip
        super().__init__(**training)
        self.image_shape = image_shape
        self.n_levels = n_levels
        self.n_scales = n_scales
        self.couplings_per_scale = couplings_per_scale
        self.hidden_channels = hidden_channels
        self.n_blocks = n_blocks
        self.n_bins = n_bins
        self.tail_bound = tail_bound

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Whole, non-negative pixel levels: scikit-learn's checks then pass such data.
        tags.input_tags.categorical = tags.input_tags.positive_only = True
        return tags

    def _make_preprocessor(self) -> PixelScaler:
        return PixelScaler(self.n_levels)

    def _image_shape(self, n_features: int) -> tuple[int, int, int]:
        return resolve_image_shape(self.image_shape, n_features)

    def _validate_and_split(self, X, sample_weight, validation_data):
        split = super()._validate_and_split(X, sample_weight, validation_data)
        self._image_shape(split.X_train.shape[1])  # a shape that does not fit X is an error before anything else
        check_pixel_levels(split.X_train, self.n_levels)
        check_pixel_levels(split.X_validation, self.n_levels)
        return split

    def _prepare_validation(self, Z_validation: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        return dequantize(Z_validation, rng.uniform(size=Z_validation.shape), self.n_levels)

    def _image_flow(self, n_features: int, context_channels: int = 0) -> ImageFlow:
        return ImageFlow(
            self._image_shape(n_features),
            context_channels=context_channels,
            n_scales=self.n_scales,
            n_layers_per_scale=self.couplings_per_scale,
            hidden_channels=self.hidden_channels,
            n_blocks=self.n_blocks,
            n_bins=self.n_bins,
            tail_bound=self.tail_bound,
            logit_alpha=LOGIT_ALPHA,
        )

    def bits_per_dim(self, X, random_state=0):
        """Mean bits per dimension of images of integer pixel levels.

        Each image's levels ``p`` are dequantised once, ``x = p + u`` with
        ``u ~ U[0, 1)`` drawn from ``random_state``, and scored:
        ``bpd = -log q(x) / (D log 2)`` with ``q`` the density of ``x`` in
        pixel-level units (equivalently, of ``y = x / n_levels`` in the unit
        cube, ``bpd = (-log q(y) + D log n_levels) / (D log 2)``). Lower is
        better; a uniform density gives ``log2(n_levels)``. By Jensen's
        inequality the expectation over ``u`` bounds the discrete model's
        code length from above. Where ``score_samples`` is itself a lower
        bound on ``log q(x)`` (:class:`NVFImageDensity`), the figure is an
        upper bound on the model's bits per dimension.

        Parameters
        ----------
        X : array-like of shape (n_samples, C * H * W)
            Integer pixel levels in ``{0, ..., n_levels - 1}``.
        random_state : int, RandomState instance or None, default=0
            Seed of the dequantisation noise (fixed by default, so repeated
            calls agree).

        Returns
        -------
        bpd : float
            Mean bits per dimension over the rows of X.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from nvf_sklearn import NFImageDensity
        >>> digits = load_digits().data[:200]
        >>> flow = NFImageDensity(n_levels=17, hidden_channels=4, max_epochs=1, random_state=0).fit(digits)  # doctest: +SKIP
        >>> bool(0 < flow.bits_per_dim(digits) < 10)
        True
        """
        X = self._validated(X)
        check_pixel_levels(X, self.n_levels)
        X_dequantized = dequantize(X, check_random_state(random_state).uniform(size=X.shape))
        return float(-np.mean(self._log_density(X_dequantized)) / (X.shape[1] * np.log(2.0)))
