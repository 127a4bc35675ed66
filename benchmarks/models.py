"""The models of the toy and tabular suites: one fitter each, all on the same split, through public APIs.

A fitter takes a :class:`~.common.Split` and a :class:`Budget` and returns a
:class:`Fitted` record: the fitted model behind two calls in the raw units of
the data, and what the table prints about it. Every model fits ``X_fit`` and
chooses what it chooses (K, bandwidth, early-stopping epoch) on
``X_validation``; our estimators get the same rows through
``fit(X_fit, validation_data=X_validation)``.

- ``NFDensity``: early stopping on the validation rows.
- ``NVFDensity`` (objective="exact"): one fit per K of the grid, K chosen by
  validation log-likelihood.
- ``GaussianMixture`` (full covariance): K in {1, 2, 4, ..., 32} chosen on the
  validation rows.
- ``KernelDensity`` (Gaussian kernel) on data standardised by
  ``StandardScaler``, the bandwidth chosen on the validation rows from a grid;
  the standardisation's log-Jacobian ``-sum(log scale)`` is added back, so its
  figure is in raw units like every other.
- zuko's coupling NSF (:mod:`.zuko_baseline`), when zuko is importable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from nvf_sklearn import NFDensity, NVFDensity

from .common import Split, gaussian_mixture_parameters, select_gaussian_mixture

KDE_BANDWIDTHS = np.geomspace(0.02, 2.0, 15)  # standardised units
GMM_CANDIDATES = (1, 2, 4, 8, 16, 32)


@dataclass
class Budget:
    """What every flow may spend: the same for ours and zuko's."""

    max_epochs: int
    patience: int
    device: str = "cpu"


@dataclass
class Fitted:
    """A fitted model behind two calls, in raw units, plus what the table prints about it."""

    score_samples: Callable[[np.ndarray], np.ndarray]
    sample: Callable[[int], np.ndarray] | None
    label: str
    parameters: str
    epochs: str = ""
    on_device: bool = False


def standardizer(X_fit: np.ndarray) -> tuple[StandardScaler, float]:
    """A ``StandardScaler`` fitted on ``X_fit`` and its log-Jacobian ``-sum(log scale)``, raw units to z-scores."""
    scaler = StandardScaler().fit(X_fit)
    return scaler, -float(np.log(scaler.scale_).sum())


def flow_options(split: Split, budget: Budget) -> dict:
    return dict(max_epochs=budget.max_epochs, patience=budget.patience, device=budget.device, random_state=split.seed)


def fitted_flow(estimator, label: str) -> Fitted:
    return Fitted(
        estimator.score_samples,
        lambda n: estimator.sample(n)[0],
        label,
        f"{estimator.n_parameters_:,}",
        str(estimator.n_iter_),
        on_device=True,
    )


def fit_nf(split: Split, budget: Budget) -> Fitted:
    estimator = NFDensity(**flow_options(split, budget)).fit(split.X_fit, validation_data=split.X_validation)
    return fitted_flow(estimator, "NFDensity")


def fit_nvf(split: Split, budget: Budget, ks=(4, 8, 16)) -> Fitted:
    best = None
    for k in ks:
        if k > len(split.X_fit):
            break
        estimator = NVFDensity(k, objective="exact", **flow_options(split, budget))
        estimator.fit(split.X_fit, validation_data=split.X_validation)
        score = estimator.score(split.X_validation)
        if best is None or score > best[0]:
            best = (score, estimator)
    estimator = best[1]
    used = f", {estimator.n_effective_latent_} used" if estimator.n_effective_latent_ < estimator.n_latent else ""
    grid = "/".join(str(k) for k in ks)
    return fitted_flow(estimator, f"NVFDensity exact, K={estimator.n_latent}{used} (by validation from {grid})")


def fit_gmm(split: Split, budget: Budget) -> Fitted:
    model, k = select_gaussian_mixture(split.X_fit, split.X_validation, GMM_CANDIDATES, seed=split.seed)
    return Fitted(
        model.score_samples,
        lambda n: model.sample(n)[0],
        f"GaussianMixture full, K={k} (by validation)",
        f"{gaussian_mixture_parameters(model):,}",
    )


def fit_kde(split: Split, budget: Budget) -> Fitted:
    scaler, log_det = standardizer(split.X_fit)
    Z_fit, Z_validation = scaler.transform(split.X_fit), scaler.transform(split.X_validation)
    best = None
    for bandwidth in KDE_BANDWIDTHS:
        model = KernelDensity(bandwidth=bandwidth).fit(Z_fit)
        score = model.score_samples(Z_validation).mean()  # KernelDensity.score is a sum: use the mean
        if best is None or score > best[0]:
            best = (score, model, bandwidth)
    model, bandwidth = best[1], best[2]
    rng = np.random.RandomState(split.seed)
    return Fitted(
        lambda X: model.score_samples(scaler.transform(X)) + log_det,
        lambda n: scaler.inverse_transform(model.sample(n, random_state=rng)),
        f"KernelDensity, standardised, bandwidth={bandwidth:.3g} (by validation)",
        f"{Z_fit.size:,} (stored points: n_train x d)",
    )


def model_fitters(ks, names=None) -> dict[str, Callable[[Split, Budget], Fitted]]:
    """The fitters by name, in table order (zuko's only when it is importable); ``names`` keeps those matching one."""
    from . import zuko_baseline  # it builds on this module's records

    fitters = {
        "GaussianMixture": fit_gmm,
        "KernelDensity": fit_kde,
        "NFDensity": fit_nf,
        "NVFDensity": partial(fit_nvf, ks=tuple(ks)),
    }
    if zuko_baseline.available():
        fitters["zuko NSF"] = zuko_baseline.fit_zuko
    if names:
        fitters = {name: fit for name, fit in fitters.items() if any(s in name for s in names)}
    return fitters
