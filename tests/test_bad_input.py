"""Bad input gets a clear error and leaves a fitted estimator exactly as it was."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp

from nvf_sklearn import NFDensity

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
