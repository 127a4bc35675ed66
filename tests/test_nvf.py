"""NVFDensity: exact likelihood and posterior, clusters, K selection, sampling."""

import copy
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import chisquare
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV

from nvf_sklearn import NFDensity, NVFDensity

from .conftest import FAST

SMALL_FLOW = dict(n_layers=2, hidden_size=32, encoder_hidden_sizes=(32,), device="cpu", random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(5000, centers=8, cluster_std=1.0, center_box=(-20, 20), random_state=0)
    return X[:4000], y[:4000], X[4000:], y[4000:]


@pytest.fixture(scope="module")
def fitted_nvf64(moons):
    return NVFDensity(3, **{**FAST, "dtype": "float64", "max_epochs": 4}).fit(moons)


def test_exact_score_equals_brute_force_over_states(fitted_nvf64, moons):
    est = fitted_nvf64
    Z = torch.as_tensor((moons - est.location_) / est.scale_)
    log_weights = est.module_.log_weights()
    with torch.no_grad():
        per_state = [
            log_weights[k] + est.module_.flow(torch.eye(3, dtype=torch.float64)[k]).log_prob(Z) for k in range(3)
        ]
    log_joint = torch.stack(per_state, dim=1).numpy() - np.log(est.scale_).sum()
    brute_force = np.log(np.exp(log_joint).sum(axis=1))
    np.testing.assert_allclose(est.score_samples(moons), brute_force, rtol=0, atol=1e-6)
    np.testing.assert_allclose(est.predict_proba(moons), np.exp(log_joint - brute_force[:, None]), atol=1e-9)


def test_posterior_and_density_come_from_one_joint(fitted_nvf64, moons):
    est = fitted_nvf64
    proba = est.predict_proba(moons)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(est.predict_cluster(moons), proba.argmax(axis=1))
    np.testing.assert_array_equal(est.predict(moons), proba.argmax(axis=1))
    log_joint = est._log_joint(moons)
    np.testing.assert_allclose(est.score_samples(moons), logsumexp(log_joint, axis=1), atol=1e-12)
    np.testing.assert_allclose(proba, np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)), atol=1e-12)


def test_analytic_elbo_is_a_lower_bound(moons):
    est = NVFDensity(3, objective="elbo", encoder_hidden_sizes=(16,), **{**FAST, "dtype": "float64"}).fit(moons)
    module = est.module_
    Z = torch.as_tensor((moons - est.location_) / est.scale_)
    with torch.no_grad():
        log_q = torch.log_softmax(module.encoder(Z), dim=-1)
        log_joint = module.log_joint(Z)
        elbo = (log_q.exp() * (log_joint - log_q)).sum(dim=-1)
        exact = log_joint.logsumexp(dim=-1)
    assert torch.all(elbo <= exact + 1e-9)


def test_subset_scores_equal_full_set_scores(fitted_nvf64, moons):
    rows = np.array([5, 1, 300, 42])
    np.testing.assert_array_equal(fitted_nvf64.score_samples(moons[rows]), fitted_nvf64.score_samples(moons)[rows])


def test_float32_subset_scores_equal_full_set_scores_with_every_state_layer():
    """Every layer (full state maps, state splines, couplings) in float32: a row scores alike in any company."""
    X, _ = make_blobs(600, n_features=8, centers=3, random_state=0)
    estimator = NVFDensity(3, state_affine="full", state_splines=True, **FAST).fit(X)
    full = estimator.score_samples(X)
    for size in (1, 3, 7, 20, 300):
        rows = np.random.default_rng(size).permutation(len(X))[:size]
        np.testing.assert_array_equal(estimator.score_samples(X[rows]), full[rows])


def test_sample_frequencies_match_weights(fitted_nvf64):
    X, y = fitted_nvf64.sample(20_000, random_state=0)
    assert X.shape == (20_000, 2) and np.isfinite(X).all()
    counts = np.bincount(y, minlength=3)
    _, p_value = chisquare(counts, 20_000 * fitted_nvf64.weights_)
    assert p_value > 1e-3
    # Rows come in random order, not grouped by state.
    assert np.mean(y[1:] != y[:-1]) > 0.3


@pytest.mark.parametrize("objective", ["exact", pytest.param("elbo", marks=pytest.mark.slow)])
def test_blobs_clusters_recovered_and_nf_beaten(blobs, objective):
    X_train, _, X_test, y_test = blobs
    nvf = NVFDensity(8, objective=objective, max_epochs=10, **SMALL_FLOW).fit(X_train)
    assert adjusted_rand_score(y_test, nvf.predict_cluster(X_test)) > 0.95
    gmm = GaussianMixture(8, random_state=0).fit(X_train)
    assert nvf.score(X_test) > gmm.score(X_test) - 0.05
    nf_settings = {k: v for k, v in SMALL_FLOW.items() if k != "encoder_hidden_sizes"}
    nf = NFDensity(max_epochs=10, **nf_settings).fit(X_train)
    assert nvf.score(X_test) > nf.score(X_test)
    assert nvf.n_effective_latent_ == 8
    np.testing.assert_allclose(nvf.state_usage_.sum(), 1.0)


@pytest.mark.slow  # a 3-fold search over K: the default suite stays under 90 s
def test_grid_search_picks_at_least_the_true_number_of_states(blobs):
    X_train = blobs[0][:1500]
    search = GridSearchCV(
        NVFDensity(max_epochs=3, **SMALL_FLOW), {"n_latent": [1, 2, 4, 8, 16]}, cv=3
    ).fit(X_train)
    assert search.best_params_["n_latent"] >= 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_bic_prefers_the_true_number_of_states(blobs):
    X_train = blobs[0]  # at 1,500 rows the 8-state model's extra parameters outweighed its 1.9 nats per row
    bic = {k: NVFDensity(k, max_epochs=3, **SMALL_FLOW).fit(X_train).bic(X_train) for k in (1, 8)}
    assert bic[8] < bic[1]


def test_one_state_behaves_as_a_plain_flow(moons):
    est = NVFDensity(1, **FAST).fit(moons)
    np.testing.assert_array_equal(est.predict_cluster(moons), 0)
    np.testing.assert_allclose(est.predict_proba(moons), 1.0)
    np.testing.assert_allclose(est.weights_, [1.0])
    assert np.isfinite(est.score(moons))


def test_uniform_weights_and_random_init(moons):
    est = NVFDensity(4, mixture_weights="uniform", init_params="random", **FAST).fit(moons)
    np.testing.assert_allclose(est.weights_, 0.25)
    assert np.isfinite(est.score_samples(moons)).all()


def test_too_many_states_is_a_clear_error(moons):
    with pytest.raises(ValueError, match="decrease n_latent"):
        NVFDensity(500, **FAST).fit(moons[:50])


def test_fit_predict_matches_predict_cluster(moons):
    est = NVFDensity(3, **FAST)
    labels = est.fit_predict(moons)
    np.testing.assert_array_equal(labels, est.predict_cluster(moons))


def test_pickle_round_trip(fitted_nvf64, moons):
    import pickle

    restored = pickle.loads(pickle.dumps(fitted_nvf64))
    np.testing.assert_array_equal(restored.score_samples(moons), fitted_nvf64.score_samples(moons))
    a, b = copy.deepcopy(fitted_nvf64), pickle.loads(pickle.dumps(fitted_nvf64))
    np.testing.assert_array_equal(a.sample(7)[0], b.sample(7)[0])


def test_training_on_a_subset_of_states_keeps_scores_exact(moons):
    """training_states < K trains each row on its most responsible states; every score still sums all K."""
    est = NVFDensity(6, training_states=3, **{**FAST, "dtype": "float64"}).fit(moons)
    log_joint = est._log_joint(moons)
    assert log_joint.shape == (len(moons), 6)
    np.testing.assert_allclose(est.score_samples(moons), logsumexp(log_joint, axis=1), atol=1e-12)
    assert not hasattr(est.module_, "responsible_states")  # the training cache does not outlive training
    assert np.isfinite(est.score(moons))


@pytest.mark.parametrize("n_features, expected", [(8, 0.0), (16, 0.1)])
def test_auto_dropout_acts_from_sixteen_features_up(n_features, expected):
    X = np.random.default_rng(0).normal(size=(200, n_features))
    estimator = NVFDensity(2, **{**FAST, "max_epochs": 1}).fit(X)
    rates = {m.p for m in estimator.module_.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == ({expected} if expected else set())
    assert estimator.dropout == "auto"  # the parameter is left as given


@pytest.mark.parametrize("n_features, expected, spared", [(2, 0.5, False), (3, 2.0, True), (15, 2.0, True),
                                                          (16, 0.5, False)])  # fmt: skip
def test_auto_weight_decay_spares_the_start_from_three_to_fifteen_features(n_features, expected, spared):
    """There: strong decay of the networks, the start's own parameters left alone; elsewhere mild decay of all."""
    X = np.random.default_rng(0).normal(size=(200, n_features))
    estimator = NVFDensity(2, **{**FAST, "max_epochs": 1}).fit(X)
    assert estimator.weight_decay_ == expected and estimator.weight_decay == "auto"
    start = estimator.module_.start_parameters()
    decayed = {id(p) for p in estimator.module_.decayed_parameters()}
    assert len(start) >= 3 and all((id(p) in decayed) != spared for p in start)
    assert all(id(p) in decayed for p in estimator.module_.flow.layers[-2].parameters())  # the last coupling's network
    assert NVFDensity(2, weight_decay=0.1, **{**FAST, "max_epochs": 1}).fit(X).weight_decay_ == 0.1


@pytest.mark.parametrize(
    "objective, parameter, value",
    [("exact", "encoder_hidden_sizes", (32,)), ("exact", "temperature_end", 0.5), ("elbo", "training_states", 3)],
)
def test_a_parameter_the_objective_ignores_warns_once_and_names_the_mode_that_uses_it(moons, objective, parameter, value):
    estimator = NVFDensity(2, objective=objective, **{parameter: value}, **FAST)
    with pytest.warns(UserWarning, match=f"{parameter}=.*no effect with objective='{objective}'") as record:
        estimator.fit(moons)
    assert sum(parameter in str(w.message) for w in record) == 1


def test_defaults_and_used_parameters_do_not_warn(moons):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # a 3-epoch budget runs out
        NVFDensity(2, **FAST).fit(moons)
        NVFDensity(2, objective="elbo", temperature_end=0.5, **FAST).fit(moons)
