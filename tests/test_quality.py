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
