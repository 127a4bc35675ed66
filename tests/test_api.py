"""Behaviour of the public API: conventions, reproducibility, pickling, diagnostics."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from nvf_sklearn import NFDensity

from .conftest import FAST


def test_score_is_the_mean_of_score_samples(fitted_nf, moons):
    assert fitted_nf.score(moons) == pytest.approx(fitted_nf.score_samples(moons).mean())


def test_subset_scores_equal_full_set_scores(fitted_nf, moons):
    full = fitted_nf.score_samples(moons)
    rows = np.array([3, 0, 399, 17, 250])
    np.testing.assert_array_equal(fitted_nf.score_samples(moons[rows]), full[rows])
    np.testing.assert_array_equal(fitted_nf.score_samples(moons[:1]), full[:1])


def test_one_state_outputs(fitted_nf, moons):
    np.testing.assert_array_equal(fitted_nf.predict_cluster(moons), np.zeros(len(moons)))
    np.testing.assert_array_equal(fitted_nf.predict(moons), np.zeros(len(moons)))
    np.testing.assert_allclose(fitted_nf.predict_proba(moons), np.ones((len(moons), 1)))


def test_scores_are_in_the_units_of_x(moons):
    """Rescaling X by c shifts every log-density by exactly -d log c."""
    c = 1000.0
    small = NFDensity(**FAST).fit(moons)
    large = NFDensity(**FAST).fit(moons * c)
    np.testing.assert_allclose(
        large.score_samples(moons * c), small.score_samples(moons) - 2 * np.log(c), rtol=1e-4, atol=1e-4
    )


def test_same_random_state_gives_identical_fits_and_samples(moons):
    a = NFDensity(**FAST).fit(moons)
    b = NFDensity(**FAST).fit(moons)
    np.testing.assert_array_equal(a.score_samples(moons), b.score_samples(moons))
    np.testing.assert_array_equal(a.sample(50)[0], b.sample(50)[0])
    assert a.loss_curve_ == b.loss_curve_


def test_sample_stream_differs_per_call_and_is_reproducible(moons):
    a = NFDensity(**FAST).fit(moons)
    b = NFDensity(**FAST).fit(moons)
    first, second = a.sample(20)[0], a.sample(20)[0]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b.sample(20)[0], first)
    np.testing.assert_array_equal(b.sample(20)[0], second)
    # An explicit seed gives the same draws every time.
    np.testing.assert_array_equal(a.sample(5, random_state=3)[0], a.sample(5, random_state=3)[0])


def test_sample_returns_x_and_states(fitted_nf):
    X, y = fitted_nf.sample(30)
    assert X.shape == (30, 2) and y.shape == (30,)
    assert X.dtype == np.float64 and np.all(y == 0) and np.isfinite(X).all()


@pytest.mark.parametrize("n_samples", [0, -1, 2.5])
def test_sample_rejects_bad_counts(fitted_nf, n_samples):
    with pytest.raises(ValueError, match="n_samples"):
        fitted_nf.sample(n_samples)


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_pickle_and_joblib_round_trips_are_exact(moons, tmp_path, dump, load):
    estimator = NFDensity(**FAST).fit(moons)
    if dump is None:
        path = tmp_path / "model.joblib"
        joblib.dump(estimator, path)
        restored = joblib.load(path)
    else:
        restored = load(dump(estimator))
    np.testing.assert_array_equal(restored.score_samples(moons), estimator.score_samples(moons))
    np.testing.assert_array_equal(restored.sample(10)[0], estimator.sample(10)[0])
    # Pickling did not disturb the original.
    assert hasattr(estimator.module_, "log_joint")


def test_fitted_diagnostics(moons):
    estimator = NFDensity(**{**FAST, "max_epochs": 4, "patience": 50}).fit(moons)
    assert estimator.n_iter_ == 4
    assert len(estimator.loss_curve_) == len(estimator.validation_scores_) == 4
    assert 0 <= estimator.best_epoch_ <= 4
    assert estimator.best_validation_score_ == max(estimator.validation_scores_ + [-np.inf]) or estimator.best_epoch_ == 0
    assert estimator.converged_ is False
    assert estimator.device_ == "cpu"
    assert estimator.n_parameters_ > 0


def test_convergence_warning_when_epochs_run_out(moons):
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="max_epochs"):
        NFDensity(**FAST).fit(moons)


def test_early_stopping_sets_converged(moons):
    # A large step makes the validation loss stop improving within a few epochs.
    estimator = NFDensity(**{**FAST, "max_epochs": 200, "patience": 1, "learning_rate": 0.05}).fit(moons)
    assert estimator.converged_ and estimator.n_iter_ < 200
    assert estimator.n_iter_ == estimator.best_epoch_ + 1


def test_no_validation_split_monitors_training_loss(moons):
    estimator = NFDensity(**{**FAST, "validation_fraction": 0.0}).fit(moons)
    assert estimator.validation_scores_ == [] and estimator.best_validation_score_ is None
    assert estimator.best_epoch_ >= 1


def test_verbose_prints_one_line_per_epoch(moons, capsys):
    NFDensity(**{**FAST, "verbose": 1}).fit(moons)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == FAST["max_epochs"]


def test_sample_weight_zero_rows_are_ignored(moons):
    """Rows with weight zero do not change the objective (same seeds, same batches)."""
    X = np.vstack([moons, moons + 50.0])
    weights = np.r_[np.ones(len(moons)), np.zeros(len(moons))]
    weighted = NFDensity(**{**FAST, "validation_fraction": 0.0}).fit(X, sample_weight=weights)
    assert np.isfinite(weighted.score_samples(moons)).all()
    with pytest.raises(ValueError, match="[Ss]ample weights"):
        NFDensity(**FAST).fit(moons, sample_weight=np.zeros(len(moons)))


def test_float64_models(moons):
    estimator = NFDensity(**{**FAST, "dtype": "float64"}).fit(moons)
    assert next(estimator.module_.parameters()).dtype.is_floating_point
    assert str(next(estimator.module_.parameters()).dtype) == "torch.float64"


def test_clone_and_grid_search(moons):
    search = GridSearchCV(NFDensity(**FAST), {"n_layers": [1, 2]}, cv=2).fit(moons)
    assert search.best_params_["n_layers"] in (1, 2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert clone(search.best_estimator_).get_params() == search.best_estimator_.get_params()


def test_unavailable_cuda_device_is_a_clear_error(moons):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        NFDensity(**{**FAST, "device": "cuda"}).fit(moons)
    with pytest.raises(ValueError, match="not a valid device"):
        NFDensity(**{**FAST, "device": "gpu-please"}).fit(moons)


def test_validation_data_is_what_model_selection_scores(moons):
    """With validation_data, all of X trains and the best validation score is the score of those rows."""
    X_validation = moons[:100] + 0.01
    estimator = NFDensity(**FAST).fit(moons, validation_data=X_validation)
    assert estimator.best_validation_score_ == pytest.approx(estimator.score(X_validation), abs=1e-4)
    assert estimator.best_validation_score_ == max(estimator.validation_scores_)
    with pytest.raises(ValueError, match="features"):
        NFDensity(**FAST).fit(moons, validation_data=moons[:, :1])
