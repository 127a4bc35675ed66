"""NVFDensity's warm start: the mixture it starts from, and the full-or-diagonal choice of state_affine="auto"."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import ortho_group
from scipy.stats import t as student_t
from sklearn.mixture import GaussianMixture

from nvf_sklearn import NVFDensity
from nvf_sklearn import _nvf_start as nvf_start
from nvf_sklearn._engine.flows import SplineCoupling, StateAffine
from nvf_sklearn._nvf_start import (
    fit_start,
    full_covariances_pay,
    independent_frames,
    marginal_entropy,
    mixture_log_likelihood,
    START_DOF_GRID,
    pivot_free,
    start_rows,
    student_t_marginals,
)

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


@pytest.mark.parametrize("n_rows, expected", [(4_500, 3), (4_600, 5)])
def test_auto_layers_follow_the_training_rows(n_rows, expected):
    X = clusters(rotated=False, n=n_rows)  # 4,050 / 4,140 training rows: either side of 4,096
    estimator = NVFDensity(3, hidden_size=8, max_epochs=1, random_state=0).fit(X)
    couplings = [layer for layer in estimator.module_.flow.layers if isinstance(layer, SplineCoupling)]
    assert estimator.n_layers == "auto" and estimator.n_layers_ == len(couplings) == expected


@pytest.mark.parametrize("n_latent, expected", [(2, True), (3, False)])
def test_auto_state_splines_need_a_thousand_rows_per_state(n_latent, expected):
    X = clusters(rotated=False, n=2400)  # 2,160 training rows: 1,080 per state for K = 2, 720 for K = 3
    estimator = NVFDensity(n_latent, **{**FAST, "max_epochs": 1}).fit(X)
    explicit = NVFDensity(n_latent, state_splines=expected, **{**FAST, "max_epochs": 1}).fit(X)
    assert estimator.state_splines == "auto" and estimator.state_splines_ is expected
    assert estimator.n_parameters_ == explicit.n_parameters_


def test_auto_that_chooses_diagonal_is_the_diagonal_fit_exactly():
    X = clusters(rotated=False)
    auto = NVFDensity(3, **{**FAST, "max_epochs": 2}).fit(X)
    diagonal = NVFDensity(3, state_affine="diagonal", **{**FAST, "max_epochs": 2}).fit(X)
    assert auto.n_parameters_ == diagonal.n_parameters_
    np.testing.assert_array_equal(auto.score_samples(X), diagonal.score_samples(X))


def correlated_clusters(n: int = 400, d: int = 6, k: int = 3, rho: float = 0.5, seed: int = 0) -> np.ndarray:
    """k well-separated clusters, each with correlation ``rho`` between every pair of features."""
    rng = np.random.default_rng(seed)
    means = 8.0 * rng.normal(size=(k, d))
    covariance = (1.0 - rho) * np.eye(d) + rho * np.ones((d, d))
    return means[rng.integers(k, size=n)] + rng.multivariate_normal(np.zeros(d), covariance, size=n)


def test_the_full_start_stays_a_candidate_where_bic_turns_it_down(monkeypatch):
    # BIC's penalty grows with log n; on few rows of correlated clusters it can turn down the map the data need.
    monkeypatch.setattr(nvf_start, "full_covariances_pay", lambda *arguments: False)
    X = correlated_clusters()
    auto = NVFDensity(3, **{**FAST, "max_epochs": 1}).fit(X)
    diagonal = NVFDensity(3, state_affine="diagonal", **{**FAST, "max_epochs": 1}).fit(X)
    assert auto.state_affine_ == "full" and auto.module_.flow.layers[0].lower is not None
    assert auto.best_step_ == 0 and auto.best_validation_score_ == auto.start_validation_score_
    assert auto.best_validation_score_ > diagonal.best_validation_score_ + 0.1
    assert not hasattr(auto, "_full_start")
    # The kept start is scored as it was selected: its mean validation score is what the module gives.
    split = np.random.RandomState(FAST["random_state"]).permutation(len(X))[: int(0.1 * len(X))]
    np.testing.assert_allclose(auto.score(X[np.sort(split)]), auto.best_validation_score_, rtol=1e-6)


def test_an_explicit_full_map_is_kept_on_uncorrelated_clusters():
    estimator = NVFDensity(3, state_affine="full", **{**FAST, "max_epochs": 1}).fit(clusters(rotated=False))
    assert estimator.state_affine_ == "full" and estimator.module_.flow.layers[0].lower is not None


def test_pivot_free_rows_factor_without_exchanges():
    """A rotation's rows reordered and signed: same rows up to sign, an LU with a positive diagonal of U."""
    rotation = ortho_group.rvs(5, random_state=1)
    ordered = pivot_free(rotation)
    np.testing.assert_allclose(np.abs(ordered @ rotation.T), np.eye(5)[np.argmax(np.abs(ordered @ rotation.T), 1)],
                               atol=1e-12)  # fmt: skip
    leading = [np.linalg.det(ordered[:i, :i]) for i in range(1, 6)]
    assert all(value > 0 for value in leading)  # L U exists with diag(U) > 0 exactly when these are positive


def test_independent_frames_find_a_rotated_clusters_own_axes():
    """Skewed independent marginals, rotated: the turned whitening map undoes the rotation up to order and sign."""
    rng = np.random.default_rng(0)
    d, n = 4, 4000
    rotation = ortho_group.rvs(d, random_state=2)
    sources = np.column_stack([rng.exponential(size=n) - 1.0, rng.uniform(-1.7, 1.7, size=n),
                               rng.laplace(size=n) / np.sqrt(2.0), rng.exponential(size=n) - 1.0])  # fmt: skip
    X = 3.0 + sources @ rotation.T
    mean, covariance = X.mean(axis=0), np.cov(X.T)
    cholesky_map = np.linalg.inv(np.linalg.cholesky(covariance))
    maps = independent_frames(X, np.zeros(n, dtype=int), mean[None], cholesky_map[None], np.random.RandomState(0))
    np.testing.assert_allclose(maps[0] @ covariance @ maps[0].T, np.eye(d), atol=1e-10)  # still whitens
    recovered = np.abs(maps[0] @ rotation)  # ~ a permutation (the sources have unit variance)
    np.testing.assert_allclose(np.sort(recovered, axis=1)[:, -1], 1.0, atol=0.05)
    np.testing.assert_allclose(np.sort(recovered, axis=1)[:, :-1], 0.0, atol=0.1)
    before = np.abs(cholesky_map @ rotation)
    assert np.sort(before, axis=1)[:, :-1].max() > 0.3  # the Cholesky frame was not the sources' frame


def test_marginal_entropy_of_known_marginals():
    """m-spacing estimates: a normal column has 0.5 log(2 pi e), a U(0, 3) one log 3; the sum is over columns.

    The estimator is biased low by a few hundredths of a nat (more for long tails); the frames it compares share
    the rows, so their biases nearly cancel.
    """
    rng = np.random.default_rng(0)
    columns = np.column_stack([rng.normal(size=20_000), rng.uniform(0.0, 3.0, size=20_000)])
    expected = [0.5 * np.log(2.0 * np.pi * np.e), np.log(3.0)]
    np.testing.assert_allclose([marginal_entropy(columns[:, [0]]), marginal_entropy(columns[:, [1]])], expected,
                               atol=0.05)  # fmt: skip
    np.testing.assert_allclose(marginal_entropy(columns), sum(expected), atol=0.06)


def test_a_gaussian_cluster_keeps_its_own_map():
    """On a Gaussian cluster no frame is better: the turned frame must win by BIC, so the map is kept as it was."""
    X = clusters(rotated=True, n=3000, k=1)
    mean, covariance = X.mean(axis=0), np.cov(X.T)
    cholesky_map = np.linalg.inv(np.linalg.cholesky(covariance))
    maps = independent_frames(X, np.zeros(len(X), dtype=int), mean[None], cholesky_map[None], np.random.RandomState(0))
    np.testing.assert_array_equal(maps[0], cholesky_map)


@pytest.mark.parametrize("n_states, expected", [(1, 20_000), (12, 20_000), (24, 10_000), (32, 7_500), (100, 5_000)])
def test_the_start_fits_on_fewer_rows_the_more_states_it_has(n_states, expected):
    """Every EM step costs rows times states: 20,000 rows up to 12 states, then 240,000 row-states, at least 5,000."""
    rows = start_rows((50_000, 8), n_states, np.random.RandomState(0))
    assert len(rows) == len(set(rows.tolist())) == expected
    assert start_rows((expected, 8), n_states, np.random.RandomState(0)) == slice(None)
    assert start_rows((50_000, 16), n_states, np.random.RandomState(0)) == slice(None)  # wide: every row


@pytest.mark.parametrize("n_rows, expected", [(4_000, nvf_start.START_INITS), (4_200, nvf_start.START_MAX_INITS)])
def test_nvf_allows_more_em_runs_beyond_a_small_table(monkeypatch, n_rows, expected):
    """A small table's whole fit takes seconds: 3 EM runs there; up to 10 from 4,096 training rows up."""
    seen = {}
    real_fit_start = nvf_start.fit_start

    def recording_fit_start(*args, **kwargs):
        seen["max_inits"] = kwargs["max_inits"]
        return real_fit_start(*args, **kwargs)

    monkeypatch.setattr("nvf_sklearn._nvf.fit_start", recording_fit_start)
    X = clusters(rotated=False, n=n_rows, d=2, k=2)
    NVFDensity(2, validation_fraction=0.0, max_epochs=1, random_state=0).fit(X)
    assert seen["max_inits"] == expected


@pytest.mark.parametrize(
    "n_states, max_row_states, expected",
    [
        (2, 4_000_000, nvf_start.START_MAX_INITS),
        (4, 4_000_000, nvf_start.START_INITS),
        (2, 2_000, nvf_start.START_INITS),
    ],
)
def test_more_em_runs_only_with_many_rows_per_state(monkeypatch, n_states, max_row_states, expected):
    """1,200 rows: 600 per state earn 10 runs; 300 per state keep 3 (there the most likely of many runs overfits),
    and so does an EM over more row-states than the cap (each run would cost too much)."""
    monkeypatch.setattr(nvf_start, "MANY_INITS_MAX_ROW_STATES", max_row_states)
    runs = []

    class RecordingMixture(GaussianMixture):
        def fit(self, X, y=None):
            runs.append(self.n_init)
            return super().fit(X, y)

    monkeypatch.setattr(nvf_start, "GaussianMixture", RecordingMixture)
    X = clusters(rotated=False, n=1_200, d=2, k=2)
    fit_start(X, np.ones(len(X)), n_states, "gmm", np.random.RandomState(0), max_inits=nvf_start.START_MAX_INITS)
    assert runs == [expected]


def test_student_t_marginals_are_the_maximum_likelihood_t_on_the_grid():
    # Per column: the scale maximises scipy's t likelihood for the chosen nu, and no other nu of the grid does better.
    rng = np.random.default_rng(0)
    residuals = np.column_stack([2.0 * rng.standard_t(3.0, 800), 0.5 * rng.normal(size=800)])
    dof, scale = student_t_marginals(residuals, n_iterations=200)

    def log_likelihood(column, nu, s):
        return student_t.logpdf(column / s, nu).sum() - len(column) * np.log(s)

    for j, column in enumerate(residuals.T):
        best = {nu: -minimize_scalar(lambda s: -log_likelihood(column, nu, s), bounds=(1e-3, 10.0), method="bounded").fun
                for nu in START_DOF_GRID}  # fmt: skip
        assert dof[j] == max(best, key=best.get)
        np.testing.assert_allclose(log_likelihood(column, dof[j], scale[j]), best[dof[j]], rtol=1e-7)
    assert dof[0] < 5.0 and dof[1] > 30.0
