"""What the two tabular estimators share: z-scores, a coupling spline flow, and the posterior methods."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ._base import BaseFlowDensity
from ._budget import BudgetRule
from ._compat import Interval, StrOptions
from ._engine import Flow, spline_flow
from ._preprocessing import Standardizer

#: From this many features up a table is wide: NVFDensity's per-state parameters overfit there (it adds dropout),
#: and NFDensity trains in smaller batches for more steps (both measured, see the user guide).
MANY_FEATURES = 16


def posterior(log_joint: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a log-joint matrix; a row that is ``-inf`` everywhere is uniform.

    Such a row is a point so far from every state that all its densities
    underflow: every state is then equally (un)likely, the defined answer.
    """
    peak = log_joint.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        weights = np.exp(log_joint - np.where(np.isfinite(peak), peak, 0.0))
    total = weights.sum(axis=1, keepdims=True)
    return np.where(total > 0, weights / np.where(total > 0, total, 1.0), 1.0 / log_joint.shape[1])


class TabularFlowDensity(BaseFlowDensity):
    """Template for the tabular estimators; not for direct use."""

    _parameter_constraints: dict = {
        **BaseFlowDensity._parameter_constraints,
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_hidden_layers": [Interval(Integral, 1, None, closed="left")],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "tail_bound": [Interval(Real, 0, None, closed="neither")],
        "lu_linear": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "tails": [StrOptions({"gaussian", "student_t"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    }

    def __init__(self, *, n_layers, hidden_size, n_hidden_layers, n_bins, tail_bound, lu_linear, dropout, tails,
                 **training):  # fmt: skip
        super().__init__(**training)
        self.n_layers = n_layers
        self.hidden_size = hidden_size
        self.n_hidden_layers = n_hidden_layers
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.lu_linear = lu_linear
        self.dropout = dropout
        self.tails = tails

    #: The budget of a wide table (``MANY_FEATURES`` features or more); ``_budget_rule`` is the narrow tables'. A family
    #: sets either where its measurements differ.
    _wide_budget_rule = BaseFlowDensity._budget_rule

    def _budget_rule_for(self, n_features: int, n_rows: int) -> BudgetRule:
        return self._wide_budget_rule if n_features >= MANY_FEATURES else self._budget_rule

    def _dropout(self, n_features: int) -> float:
        return self.dropout

    def _make_preprocessor(self) -> Standardizer:
        return Standardizer()

    def _spline_flow(self, n_features: int, n_layers: int, **conditioning) -> Flow:
        self.dropout_ = self._dropout(n_features)
        return spline_flow(
            n_features,
            n_layers=n_layers,
            hidden_size=self.hidden_size,
            n_hidden_layers=self.n_hidden_layers,
            n_bins=self.n_bins,
            tail_bound=self.tail_bound,
            lu_linear=self.lu_linear,
            dropout=self.dropout_,
            tails=self.tails,
            **conditioning,
        )

    @property
    def location_(self) -> np.ndarray:
        """Per-feature location of the internal standardisation (weighted training mean inside the outlier fence)."""
        return self.preprocessor_.location_

    @property
    def scale_(self) -> np.ndarray:
        """Per-feature scale of the internal standardisation (weighted standard deviation inside the outlier fence)."""
        return self.preprocessor_.scale_

    # ------------------------------------------------------------ posteriors
    def predict_proba(self, X):
        """Exact posterior probability of each latent state given each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_latent)
            ``p(k | x)``; rows sum to one (uniform for a point so far away
            that every state's density underflows).

        Examples
        --------
        >>> proba = est.predict_proba(X[:4])  # est, X: see score_samples
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((4, 2), True)
        """
        return np.concatenate([posterior(chunk) for chunk in self._iter_log_joint(self._validated(X))])

    def predict_cluster(self, X):
        """Most probable latent state of each sample under the exact posterior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``argmax_k p(k | x)`` (zeros for :class:`NFDensity`).

        Examples
        --------
        >>> est.predict_cluster(X[:4]).shape  # est, X: see score_samples
        (4,)
        """
        return np.concatenate([np.argmax(chunk, axis=1) for chunk in self._iter_log_joint(self._validated(X))])

    def predict(self, X):
        """Alias of :meth:`predict_cluster`, for scikit-learn compatibility.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``argmax_k p(k | x)``.

        Examples
        --------
        >>> bool((est.predict(X) == est.predict_cluster(X)).all())  # est, X: see score_samples
        True
        """
        return self.predict_cluster(X)
