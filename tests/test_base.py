"""The template's behaviour, through NFDensity: conventions, reproducibility, pickling, diagnostics, RNGs."""

import math
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from nvf_sklearn import NFDensity

from .conftest import FAST


def test_score_is_the_mean_of_score_samples(fitted_nf, moons):
    assert fitted_nf.score(moons) == pytest.approx(fitted_nf.score_samples(moons).mean())


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 15, 17, 100])
def test_subset_scores_equal_full_set_scores(fitted_nf, moons, size):
    full = fitted_nf.score_samples(moons)
    rows = np.random.default_rng(size).permutation(len(moons))[:size]
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
    scores_before = estimator.score_samples(moons)
    if dump is None:
        path = tmp_path / "model.joblib"
        joblib.dump(estimator, path)
        restored = joblib.load(path)
    else:
        restored = load(dump(estimator))
    # Pickling did not disturb the original: it scores exactly as before the dump.
    np.testing.assert_array_equal(estimator.score_samples(moons), scores_before)
    np.testing.assert_array_equal(restored.score_samples(moons), scores_before)
    np.testing.assert_array_equal(restored.sample(10)[0], estimator.sample(10)[0])


def test_fitted_diagnostics(moons):
    estimator = NFDensity(**{**FAST, "max_epochs": 4, "patience": 50}).fit(moons)
    steps_per_epoch = 360 / 64  # 400 rows less 10 % for validation, in batches of 64
    assert estimator.batch_size_ == 64 and estimator.learning_rate_ == pytest.approx(3e-3 * (64 / 256) ** 0.5)
    assert estimator.max_steps_ == estimator.n_steps_ == math.ceil(4 * steps_per_epoch)
    assert estimator.n_iter_ == 4
    n_checks = math.ceil(estimator.n_steps_ / estimator.validation_interval_)
    assert len(estimator.loss_curve_) == len(estimator.validation_scores_) == n_checks > 1
    assert 0 <= estimator.best_step_ <= estimator.n_steps_
    # Checks every validation_interval_ steps, the last one after a possibly shorter period.
    interval = estimator.validation_interval_
    check_steps = [min((i + 1) * interval, estimator.n_steps_) for i in range(n_checks)]
    assert check_steps[-1] == estimator.n_steps_
    best, best_check = estimator.best_validation_score_, max(estimator.validation_scores_)
    # The best is the starting state (step 0) or a check, and only a strict improvement on the start moves it.
    assert best >= best_check
    assert (estimator.best_step_ == 0) == (best > best_check)
    if estimator.best_step_ > 0:
        assert estimator.best_step_ in check_steps
        assert estimator.validation_scores_[check_steps.index(estimator.best_step_)] == best
    assert estimator.converged_ is False
    assert estimator.device_ == "cpu"
    assert estimator.n_parameters_ > 0


def test_convergence_warning_when_epochs_run_out(moons):
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="max_epochs"):
        NFDensity(**FAST).fit(moons)


def test_early_stopping_sets_converged(moons):
    # A large step makes the validation loss stop improving within a few epochs.
    estimator = NFDensity(**{**FAST, "max_epochs": 60, "patience": 1, "learning_rate": 0.05}).fit(moons)
    assert estimator.converged_ and estimator.n_iter_ < 60 and estimator.n_steps_ < estimator.max_steps_
    # It stopped once an eighth of the budget passed without improvement, within one check.
    stalled, floor = estimator.n_steps_ - estimator.best_step_, int(estimator.max_steps_ / 8)
    assert floor <= stalled < floor + estimator.validation_interval_


def test_no_validation_split_monitors_training_loss(moons):
    estimator = NFDensity(**{**FAST, "validation_fraction": 0.0}).fit(moons)
    assert estimator.validation_scores_ == [] and estimator.best_validation_score_ is None
    assert estimator.best_step_ >= 1


def test_verbose_2_prints_one_line_per_check(moons, capsys):
    estimator = NFDensity(**{**FAST, "verbose": 2}).fit(moons)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("NFDensity step")]
    assert len(lines) == len(estimator.validation_scores_) > 1
    last = f"NFDensity step {estimator.n_steps_}/{estimator.max_steps_}"
    assert lines[-1].startswith(last) and "valid" in lines[-1] and "left" in lines[-1]


def test_verbose_1_updates_one_line_in_place(moons, capsys):
    estimator = NFDensity(**{**FAST, "verbose": 1}).fit(moons)
    out = capsys.readouterr().out
    assert out.count("\r") == len(estimator.validation_scores_) and out.endswith("\n") and out.count("\n") == 1
    assert f"step {estimator.n_steps_}/{estimator.max_steps_}" in out.split("\r")[-1]


def test_silent_by_default(moons, capsys):
    NFDensity(**FAST).fit(moons)
    assert capsys.readouterr().out == ""


def test_zero_weight_rows_are_left_out_entirely(moons):
    """Rows of weight zero change nothing: the fit equals the fit without them (split, scaling, batches)."""
    X = np.vstack([moons, moons + 50.0])
    weights = np.r_[np.ones(len(moons)), np.zeros(len(moons))]
    weighted = NFDensity(**FAST).fit(X, sample_weight=weights)
    plain = NFDensity(**FAST).fit(moons)
    np.testing.assert_allclose(weighted.location_, plain.location_)
    np.testing.assert_array_equal(weighted.score_samples(moons), plain.score_samples(moons))


def test_mostly_zero_weights_still_train(moons):
    """Five weighted rows of 300: training runs every epoch (it used to roll every epoch back as 0/0)."""
    weights = np.zeros(300)
    weights[:5] = 1.0
    estimator = NFDensity(**FAST).fit(moons[:300], sample_weight=weights)
    assert estimator.n_iter_ == FAST["max_epochs"]
    assert np.isfinite(estimator.score_samples(moons)).all()


@pytest.mark.parametrize("n_weighted", [0, 1])
def test_too_few_weighted_rows_is_a_clear_error(moons, n_weighted):
    weights = np.zeros(len(moons))
    weights[:n_weighted] = 1.0
    with pytest.raises(ValueError, match="weight"):
        NFDensity(**FAST).fit(moons, sample_weight=weights)


def test_global_random_generators_are_left_untouched(moons):
    """fit (module construction included), scoring and sampling leave np.random and torch's generator alone."""
    import torch

    np.random.seed(123)
    torch.manual_seed(123)
    numpy_before, torch_before = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    estimator = NFDensity(**FAST).fit(moons)
    estimator.score_samples(moons)
    estimator.sample(10)
    estimator.sample(10, random_state=1)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)
    assert torch.equal(torch.get_rng_state(), torch_before)


def test_float64_models(moons):
    estimator = NFDensity(**{**FAST, "dtype": "float64"}).fit(moons)
    dtypes = {name: parameter.dtype for name, parameter in estimator.module_.named_parameters()}
    assert dtypes and set(dtypes.values()) == {torch.float64}, dtypes
    buffers = {name: buffer.dtype for name, buffer in estimator.module_.named_buffers() if buffer.is_floating_point()}
    assert set(buffers.values()) <= {torch.float64}, buffers


def test_float64_fit_matches_the_float32_fit(moons):
    """dtype changes the precision only: with the same random_state the two fits land on nearly the same density."""
    estimator = NFDensity(**{**FAST, "dtype": "float64"}).fit(moons)
    single = NFDensity(**FAST).fit(moons)
    assert next(single.module_.parameters()).dtype == torch.float32
    double_scores, single_scores = estimator.score_samples(moons), single.score_samples(moons)
    relative = np.abs(double_scores - single_scores).mean() / np.abs(double_scores).mean()
    assert relative < 1e-3, relative


def test_clone_and_grid_search(moons):
    search = GridSearchCV(NFDensity(**FAST), {"n_layers": [1, 2]}, cv=2).fit(moons)
    mean_scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(mean_scores).all() and mean_scores[0] != mean_scores[1]
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(mean_scores))]
    # best_estimator_ was refitted on all the data with the best parameters.
    best = search.best_estimator_
    assert best.n_layers == search.best_params_["n_layers"] and best.n_steps_ > 0
    assert best.n_features_in_ == moons.shape[1]
    assert search.score(moons) == best.score(moons)
    refit = NFDensity(**{**FAST, **search.best_params_}).fit(moons)
    np.testing.assert_array_equal(best.score_samples(moons), refit.score_samples(moons))
    assert clone(best).get_params() == best.get_params()


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


def _interrupt_on_call(monkeypatch, owner, name, call):
    """Make ``owner.name`` raise KeyboardInterrupt on its ``call``-th call (1-based)."""
    original, calls = getattr(owner, name), []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, interrupting)


def _assert_usable_after_interrupt(estimator, X, record):
    assert any("interrupted" in str(w.message) for w in record)
    assert np.isfinite(estimator.score_samples(X)).all()
    assert np.isfinite(estimator.sample(3)[0]).all()
    assert not estimator.module_.training


@pytest.mark.parametrize("phase", ["training step", "first validation", "later validation"])
def test_an_interrupt_while_training_keeps_the_best_model(moons, monkeypatch, phase):
    from nvf_sklearn._engine import FlowDensity

    name, call = {
        "training step": ("training_loss", 12),
        "first validation": ("validation_loss", 1),
        "later validation": ("validation_loss", 4),
    }[phase]
    _interrupt_on_call(monkeypatch, FlowDensity, name, call)
    with pytest.warns(UserWarning, match="interrupted") as record:
        estimator = NFDensity(**{**FAST, "max_epochs": 10}).fit(moons)
    _assert_usable_after_interrupt(estimator, moons, record)
    assert estimator.n_iter_ < 10


def test_an_interrupt_in_the_second_training_stage_keeps_the_model(digits, monkeypatch):
    from nvf_sklearn import NVFImageDensity
    from nvf_sklearn._engine import SequenceLatentFlowDensity

    from .conftest import TINY_IMAGE

    original = SequenceLatentFlowDensity.training_loss

    def interrupt_in_prior_stage(self, x, noise, progress):
        if self.stage == "prior":
            raise KeyboardInterrupt
        return original(self, x, noise, progress)

    monkeypatch.setattr(SequenceLatentFlowDensity, "training_loss", interrupt_in_prior_stage)
    with pytest.warns(UserWarning, match="interrupted") as record:
        estimator = NVFImageDensity(4, top_m=2, **TINY_IMAGE).fit(digits)
    _assert_usable_after_interrupt(estimator, digits + 0.5, record)
    # The joint stage ran its whole budget; the prior stage did not finish.
    assert estimator.n_steps_ == estimator.max_steps_ and estimator.n_iter_ == TINY_IMAGE["max_epochs"]


def test_an_interrupt_after_training_keeps_the_trained_model(moons, monkeypatch):
    """A Ctrl-C while the fitted diagnostics are computed (after the training loop) used to lose the fit."""
    from nvf_sklearn import NVFDensity
    from nvf_sklearn import _nvf

    _interrupt_on_call(monkeypatch, _nvf, "posterior", 1)  # inside NVFDensity._set_diagnostics
    with pytest.warns(UserWarning, match="interrupted") as record:
        estimator = NVFDensity(2, **FAST).fit(moons)
    _assert_usable_after_interrupt(estimator, moons, record)
    assert estimator.n_steps_ == estimator.max_steps_ and estimator.weights_.shape == (2,)
