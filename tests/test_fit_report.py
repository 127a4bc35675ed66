"""One warning per fit, matching what happened, naming the right remedy; none the package causes itself."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from nvf_sklearn import NFDensity, NVFDensity
from nvf_sklearn._engine import TrainingResult
from nvf_sklearn._engine.training import chain_results
from nvf_sklearn._fit_report import warn_about_training

from .conftest import FAST


def _messages(record):
    return [str(w.message) for w in record if issubclass(w.category, Warning)]


@pytest.mark.parametrize("estimator", [NFDensity(**{**FAST, "learning_rate": 10.0}),
                                       NVFDensity(2, **{**FAST, "learning_rate": 10.0})], ids=["NF", "NVF"])
def test_a_diverging_fit_warns_once_to_lower_the_learning_rate(moons, estimator):
    """It used to warn 'increase max_epochs or learning_rate' while the loss rose 6.6 -> 113 -> 459."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        estimator.fit(moons)
    messages = _messages(record)
    assert len(messages) == 1, messages
    assert "Lower learning_rate" in messages[0] and "increase" not in messages[0]
    assert np.isfinite(estimator.score_samples(moons)).all()


def test_running_out_of_epochs_advises_more_epochs_only(moons):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        NFDensity(**FAST).fit(moons)
    (message,) = _messages(record)
    assert "increase max_epochs" in message and "learning_rate" not in message


def test_a_dataframe_fit_causes_no_feature_name_warning(moons):
    frame = pd.DataFrame(moons, columns=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = NVFDensity(2, **FAST).fit(frame)
        estimator.score_samples(frame)
    assert list(estimator.feature_names_in_) == ["a", "b"]


@pytest.mark.parametrize(
    "result, expected",
    [
        (TrainingResult(stop_reason="diverged", n_recoveries=5), ("diverged", ConvergenceWarning)),
        (TrainingResult(stop_reason="interrupted", best_step=3), ("interrupted", UserWarning)),
        (TrainingResult(stop_reason="early_stopping", n_recoveries=1, train_loss=[2.0, 1.0]),
         ("unstable", ConvergenceWarning)),
        (TrainingResult(stop_reason="max_steps", n_steps=2, best_step=1, loss_rose=True),
         ("ended above where it started", ConvergenceWarning)),
        (TrainingResult(stop_reason="max_steps", n_steps=2, best_step=0, train_loss=[2.0, 1.0]),
         ("no check scored better", ConvergenceWarning)),
        (TrainingResult(stop_reason="max_steps", n_steps=2, best_step=2, train_loss=[2.0, 1.0]),
         ("increase max_epochs", ConvergenceWarning)),
    ],
    ids=["diverged", "interrupted", "rolled back", "rising", "never improved", "out of steps"],
)
def test_each_outcome_has_one_warning(result, expected):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_about_training("Model", result, max_epochs=10, max_steps=40)
    assert len(record) == 1 and expected[0] in str(record[0].message) and record[0].category is expected[1]


def _cosine_run(last_quarter_gain):
    """A run that used its budget of 100 steps, best at the last check, gaining ``last_quarter_gain`` after step 75."""
    steps = list(range(10, 101, 10))
    losses = [2.0 - 0.01 * s for s in steps[:7]] + [1.3 - last_quarter_gain * (i + 1) / 3 for i in range(3)]
    return TrainingResult(stop_reason="max_steps", n_steps=100, best_step=100, best_loss=losses[-1], steps=steps,
                          validation_loss=losses, train_loss=[2.0, 1.0], start_loss=2.0)


def test_an_automatic_budget_that_ends_its_schedule_is_silent_unless_validation_still_gains():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about_training("Model", _cosine_run(last_quarter_gain=0.005), "auto", 100)
    with pytest.warns(ConvergenceWarning, match="increase max_epochs"):
        warn_about_training("Model", _cosine_run(last_quarter_gain=0.05), "auto", 100)
    with pytest.warns(ConvergenceWarning, match="increase max_epochs"):  # a budget the user set: always said
        warn_about_training("Model", _cosine_run(last_quarter_gain=0.005), 10, 100)


def test_running_out_of_steps_in_one_of_two_stages_counts_steps_over_both():
    """It used to read 'used all max_epochs=30 epochs ... last improvement at epoch 38' (NVFImageDensity)."""
    joint = TrainingResult(stop_reason="early_stopping", n_steps=250, best_step=50, train_loss=[2.0, 1.0])
    prior = TrainingResult(stop_reason="max_steps", n_steps=300, best_step=130, train_loss=[2.0, 1.0])
    with pytest.warns(ConvergenceWarning) as record:
        warn_about_training("Model", chain_results(joint, prior), max_epochs=30, max_steps=300)
    (message,) = _messages(record)
    assert "a training stage used its budget of 300 steps (max_epochs=30)" in message
    assert "step 380 of 550, counted over 2 stages" in message


def test_a_stable_early_stopped_fit_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about_training("Model", TrainingResult(stop_reason="early_stopping", train_loss=[2.0, 1.0]), 10, 40)


def test_keeping_a_fitted_warm_start_is_not_a_sign_of_instability():
    kept_start = TrainingResult(stop_reason="early_stopping", n_steps=60, best_step=0, train_loss=[2.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about_training("Model", kept_start, 10, 400, fitted_start=True)
    with pytest.warns(ConvergenceWarning, match="no check scored better"):
        warn_about_training("Model", kept_start, 10, 400)


def test_an_extended_budget_is_named_with_its_extra_steps():
    extended = TrainingResult(stop_reason="max_steps", n_steps=700, best_step=690, train_loss=[2.0, 1.0],
                              steps=[100, 600, 690], validation_loss=[2.0, 1.5, 1.0], best_loss=1.0)  # still gaining
    with pytest.warns(ConvergenceWarning) as record:
        warn_about_training("Model", extended, "auto", 400)
    (message,) = _messages(record)
    assert "its budget of 400 steps (max_epochs='auto') and 300 more in shorter cycles" in message
