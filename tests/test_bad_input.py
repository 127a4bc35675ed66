"""Bad input gets a clear error and leaves a fitted estimator exactly as it was."""

import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from nvf_sklearn import NFDensity, NVFDensity

from .conftest import FAST


def _bad_inputs(X):
    nan = X.copy()
    nan[3, 1] = np.nan
    inf = X.copy()
    inf[5, 0] = np.inf
    return {
        "nan": (nan, ValueError, "NaN"),
        "inf": (inf, ValueError, "infinity"),
        "complex": (X + 1j, ValueError, "Complex"),
        "sparse": (sp.csr_matrix(X), TypeError, "[Ss]parse"),
        "strings": (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), ValueError, "could not convert"),
        "1-D": (X[:, 0], ValueError, "2D array"),
        "empty": (np.empty((0, 2)), ValueError, "0 sample"),
        "wrong features": (np.c_[X, X], ValueError, "features"),
    }


@pytest.mark.parametrize(
    "case", ["nan", "inf", "complex", "sparse", "strings", "1-D", "empty", "wrong features"]
)
@pytest.mark.parametrize("method", ["score_samples", "score", "predict_proba", "predict_cluster", "fit"])
def test_bad_input_is_rejected_and_state_kept(fitted_nf, moons, case, method):
    if method == "fit" and case == "wrong features":
        pytest.skip("refitting on new features is allowed")
    estimator = copy.deepcopy(fitted_nf)
    before = estimator.score_samples(moons)
    params = estimator.get_params()
    X, error, message = _bad_inputs(moons)[case]
    with pytest.raises(error, match=message):
        getattr(estimator, method)(X)
    np.testing.assert_array_equal(estimator.score_samples(moons), before)
    assert estimator.get_params() == params
    assert estimator.n_features_in_ == 2


def test_a_single_sample_cannot_be_fitted(moons):
    with pytest.raises(ValueError, match="1 sample"):
        NFDensity(**FAST).fit(moons[:1])


def test_invalid_hyper_parameters_are_named(moons):
    with pytest.raises(ValueError, match="n_bins"):
        NFDensity(**{**FAST, "n_bins": 1}).fit(moons)
    with pytest.raises(ValueError, match="validation_fraction"):
        NFDensity(**{**FAST, "validation_fraction": 1.0}).fit(moons)


def test_unfitted_methods_raise_not_fitted(moons):
    from sklearn.exceptions import NotFittedError

    for method in ("score_samples", "score", "predict_proba", "predict_cluster"):
        with pytest.raises(NotFittedError):
            getattr(NFDensity(), method)(moons)
    with pytest.raises(NotFittedError):
        NFDensity().sample(3)


def test_far_away_points_score_finite(fitted_nf, moons):
    far = moons.mean(0) + 1e6 * moons.std(0) * np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, 1.0]])
    scores = fitted_nf.score_samples(far)
    assert np.isfinite(scores).all()
    assert (scores < fitted_nf.score_samples(moons).min()).all()


# ------------------------------------------------------------------ every scale, every finite input
def test_a_point_at_1e300_scores_minus_inf_and_has_a_uniform_posterior(moons):
    """It used to give NaN (predict_proba [[nan]] for NFDensity, [[nan, nan]] and a NaN score for NVFDensity)."""
    far = np.array([[1e300, 1e300], [-1e300, 0.5], [0.5, 1e300]])
    for estimator in (NFDensity(**FAST).fit(moons), NVFDensity(2, **FAST).fit(moons)):
        scores, proba = estimator.score_samples(far), estimator.predict_proba(far)
        assert np.all(scores == -np.inf)
        np.testing.assert_array_equal(proba, np.full_like(proba, 1.0 / proba.shape[1]))


def test_data_at_1e200_fits_and_scores_in_its_units(moons):
    """Squaring while standardising used to overflow: every score was -inf and every sample non-finite."""
    plain, scaled = NFDensity(**FAST).fit(moons), NFDensity(**FAST).fit(moons * 1e200)
    np.testing.assert_allclose(scaled.score_samples(moons * 1e200), plain.score_samples(moons) - 2 * np.log(1e200))
    assert np.isfinite(scaled.sample(20)[0]).all()


def test_a_spread_beyond_float64_headroom_is_a_clear_error(moons):
    with pytest.raises(ValueError, match="too close to the largest float64"):
        NFDensity(**FAST).fit(moons * 1e306)


TINY = dict(n_layers=1, hidden_size=4, max_epochs=1, device="cpu", random_state=0)


@st.composite
def data_at_any_scale(draw):
    """Rows of 1 to 3 features at a scale from 1e-300 to 1e300 (float32: 1e-30 to 1e30), maybe a constant column."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    exponent = draw(st.integers(-300, 300) if dtype is np.float64 else st.integers(-30, 30))
    n_rows, n_features = draw(st.integers(8, 30)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = rng.normal(size=(n_rows, n_features)) + draw(st.sampled_from([0.0, 5.0, -1e3]))
    if draw(st.booleans()):
        base[:, 0] = base[0, 0]
    return (base * 10.0**exponent).astype(dtype)


ESTIMATORS_AT_ANY_SCALE = pytest.mark.parametrize(
    "estimator", [NFDensity(**TINY), NVFDensity(2, **TINY)], ids=["NF", "NVF"]
)
ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False)
EXAMPLES = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@ESTIMATORS_AT_ANY_SCALE
@settings(max_examples=80, **EXAMPLES)
@given(X=data_at_any_scale(), far=ANY_FINITE)
def test_every_finite_input_at_every_scale_gets_finite_answers(estimator, X, far):
    _check_finite_answers(estimator, X, far)


@pytest.mark.slow  # more draws (different ones: the draws follow the test's name)
@ESTIMATORS_AT_ANY_SCALE
@settings(max_examples=400, **EXAMPLES)
@given(X=data_at_any_scale(), far=ANY_FINITE)
def test_many_more_finite_inputs_at_every_scale_get_finite_answers(estimator, X, far):
    _check_finite_answers(estimator, X, far)


def _check_finite_answers(estimator, X, far):
    """Scores finite or -inf, posterior rows summing to one, finite samples, state unchanged by a bad call."""
    estimator = clone(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    queries = np.vstack([X, np.full((1, X.shape[1]), far, dtype=np.float64)])
    scores = estimator.score_samples(queries)
    assert np.isfinite(scores[:-1]).all() and not np.isnan(scores[-1]) and scores[-1] < np.inf
    proba = estimator.predict_proba(queries)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
    assert np.isfinite(estimator.sample(4)[0]).all()
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimator.score_samples(bad)
    np.testing.assert_array_equal(estimator.score_samples(queries), scores)
