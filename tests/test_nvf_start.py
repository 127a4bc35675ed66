"""NVFDensity's warm start: the mixture it starts from, and the full-or-diagonal choice of state_affine="auto"."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.mixture import GaussianMixture

from nvf_sklearn import NVFDensity
from nvf_sklearn._engine.flows import StateAffine
from nvf_sklearn._nvf_start import fit_start, full_covariances_pay, mixture_log_likelihood

from .conftest import FAST


def clusters(rotated: bool, n: int = 3000, d: int = 6, k: int = 3, seed: int = 0) -> np.ndarray:
    """k well-separated clusters with unequal scales per axis, rotated or axis-aligned."""
    rng = np.random.default_rng(seed)
    means = 8.0 * rng.normal(size=(k, d))
    scales = rng.uniform(0.2, 1.5, size=(k, d))
    rotations = [ortho_group.rvs(d, random_state=seed + i) if rotated else np.eye(d) for i in range(k)]
    labels = rng.integers(k, size=n)
    z = rng.normal(size=(n, d)) * scales[labels]
    return means[labels] + np.einsum("nij,nj->ni", np.stack(rotations)[labels], z)


def test_mixture_log_likelihood_equals_scikit_learn():
    X = clusters(rotated=True, n=500)
    mixture = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    ours = mixture_log_likelihood(X, mixture.means_, mixture.covariances_, mixture.weights_)
    np.testing.assert_allclose(ours, mixture.score_samples(X).sum(), rtol=1e-10)


@pytest.mark.parametrize("rotated", [False, True])
def test_full_covariances_pay_only_for_correlated_clusters(rotated):
    X = clusters(rotated)
    mixture = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    assert full_covariances_pay(X, mixture.means_, mixture.covariances_, mixture.weights_) == rotated


@pytest.mark.parametrize("init_params", ["gmm", "kmeans", "random"])
def test_fit_start_shapes_and_normalised_weights(init_params):
    X = clusters(rotated=True, n=600)
    start = fit_start(X, np.ones(len(X)), 4, init_params, np.random.RandomState(0))
    assert start.means.shape == (4, 6) and start.covariances.shape == (4, 6, 6) and start.labels.shape == (600,)
    np.testing.assert_allclose(start.weights.sum(), 1.0)
    assert np.all(np.linalg.eigvalsh(start.covariances) > 0)


@pytest.mark.parametrize("rotated, expected", [(False, "diagonal"), (True, "full")])
def test_auto_state_affine_follows_the_data(rotated, expected):
    X = clusters(rotated)
    estimator = NVFDensity(3, **{**FAST, "max_epochs": 1}).fit(X)
    affine = estimator.module_.flow.layers[0]
    assert isinstance(affine, StateAffine)
    assert estimator.state_affine == "auto" and estimator.state_affine_ == expected
    assert (affine.lower is None) == (expected == "diagonal")


def test_auto_that_chooses_diagonal_is_the_diagonal_fit_exactly():
    X = clusters(rotated=False)
    auto = NVFDensity(3, **{**FAST, "max_epochs": 2}).fit(X)
    diagonal = NVFDensity(3, state_affine="diagonal", **{**FAST, "max_epochs": 2}).fit(X)
    assert auto.n_parameters_ == diagonal.n_parameters_
    np.testing.assert_array_equal(auto.score_samples(X), diagonal.score_samples(X))


def test_an_explicit_full_map_is_kept_on_uncorrelated_clusters():
    estimator = NVFDensity(3, state_affine="full", **{**FAST, "max_epochs": 1}).fit(clusters(rotated=False))
    assert estimator.state_affine_ == "full" and estimator.module_.flow.layers[0].lower is not None
