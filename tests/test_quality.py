"""Behaviour on data: fitted densities integrate to one and approach a known truth."""

import numpy as np
import pytest
from scipy.stats import norm

from nvf_sklearn import NFDensity, NVFDensity

from .conftest import FAST


def banana(n, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return np.c_[x1, x1**2 / 2 + 0.3 * rng.normal(size=n)]


def banana_log_density(X):
    return norm.logpdf(X[:, 0]) + norm.logpdf(X[:, 1] - X[:, 0] ** 2 / 2, scale=0.3)


def test_fitted_1d_density_integrates_to_one():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-2, 0.3, 300), rng.normal(1, 0.6, 300)][:, None]
    estimator = NFDensity(**{**FAST, "max_epochs": 10}).fit(X)
    grid = np.linspace(-12, 12, 20001)[:, None]
    density = np.exp(estimator.score_samples(grid))
    assert np.trapezoid(density, grid[:, 0]) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("estimator", [NFDensity(**FAST), NVFDensity(3, **FAST)], ids=["NF", "NVF"])
def test_fitted_2d_density_integrates_to_one(moons, estimator):
    estimator.fit(moons)
    axis_x = np.linspace(-6, 7, 651)
    axis_y = np.linspace(-5, 5.5, 526)
    xx, yy = np.meshgrid(axis_x, axis_y, indexing="ij")
    density = np.exp(estimator.score_samples(np.c_[xx.ravel(), yy.ravel()])).reshape(xx.shape)
    mass = np.trapezoid(np.trapezoid(density, axis_y, axis=1), axis_x)
    assert mass == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
def test_banana_density_is_learned_to_within_three_hundredths_of_a_nat():
    """10,000 training points; 20,000 fresh test points; the gap to the true mean log-density."""
    X_train, X_test = banana(10_000, seed=0), banana(20_000, seed=1)
    estimator = NFDensity(max_epochs=60, random_state=0, device="cpu").fit(X_train)
    gap = banana_log_density(X_test).mean() - estimator.score(X_test)
    assert gap < 0.03


MARGIN = 0.01  # nats; below the smallest margin measured on seeds 0, 1, 2 (see the test's docstring)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nvf_beats_a_gaussian_mixture_and_a_flow_on_8d_skewed_clusters(seed):
    """Six skewed, heavy-tailed clusters in 8-D (exact density), 6,000 training rows, default settings.

    NVFDensity(K = 6) against GaussianMixture (K by validation) and NFDensity, by the
    gap to the true mean log-density on 5,000 fresh rows. Measured (2026-11-27, x86
    CPU, one torch thread), gaps GMM / NF / NVF in nats: seed 0 0.461 / 0.388 / 0.278,
    seed 1 0.458 / 0.317 / 0.296, seed 2 0.469 / 0.420 / 0.228; NVF's margin over the
    better of the two was 0.110, 0.021 and 0.192, so MARGIN = 0.01 holds on every seed
    tried (the NF margin at seed 1 is the thin one: 6,000 rows is little for 8-D).
    """
    from sklearn.mixture import GaussianMixture

    from benchmarks.common import gaussian_mixture_by_validation
    from benchmarks.toy_data import SkewedClusterMixture

    density = SkewedClusterMixture(8, 6, separation=4.0, seed=21, rotated=False)
    rng = np.random.default_rng(seed)
    X_train, X_test = density.generate(6000, rng), density.generate(5000, rng)
    truth = density.log_density(X_test).mean()
    gmm, _ = gaussian_mixture_by_validation(X_train, seed=seed)
    assert isinstance(gmm, GaussianMixture)
    gaps = {
        "gmm": truth - gmm.score(X_test),
        "nf": truth - NFDensity(random_state=seed, device="cpu").fit(X_train).score(X_test),
        "nvf": truth - NVFDensity(6, random_state=seed, device="cpu").fit(X_train).score(X_test),
    }
    assert gaps["nvf"] < min(gaps["gmm"], gaps["nf"]) - MARGIN, gaps
