"""The training budget: every "auto" of the training policy resolved from the data, the model and the device."""

import math

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed

from nvf_sklearn import NFDensity, NVFDensity
from nvf_sklearn._budget import BudgetRule, available_cores, fit_threads, intra_op_threads, resolve_budget

RULE = BudgetRule(min_batch=512, max_batch=1024, batch_rows_fraction=1 / 16, gpu_batch=4096, reference_batch=256,
                  steps_per_sqrt_row=2.5, min_steps=250, max_steps=20_000)  # fmt: skip
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _resolve(n_train=10_000, n_validation=1_000, batch_size="auto", max_epochs="auto", device=CPU, rule=RULE,
             learning_rate=1e-3, **model):  # fmt: skip
    passes = {"training_passes": 1, "validation_passes": 1, **model}
    return resolve_budget(rule, n_train=n_train, n_validation=n_validation, batch_size=batch_size,
                          max_epochs=max_epochs, learning_rate=learning_rate, weight_averaging=1.5, device=device,
                          **passes)  # fmt: skip


@pytest.mark.parametrize("n_train, batch", [(1_440, 512), (8_000, 512), (16_384, 1024), (100_000, 1024)])
def test_the_cpu_batch_follows_the_rows_within_its_bounds(n_train, batch):
    assert _resolve(n_train).batch_size == batch


def test_the_gpu_batch_is_larger_but_never_above_the_rows():
    assert _resolve(100_000, device=CUDA).batch_size == 4096
    assert _resolve(1_000, device=CUDA).batch_size == 1_000


def test_an_explicit_batch_is_kept_and_the_learning_rate_scales_with_its_square_root():
    budget = _resolve(batch_size=1024)
    assert budget.batch_size == 1024 and budget.learning_rate == pytest.approx(1e-3 * 2.0)
    assert _resolve(n_train=300, batch_size=1024).batch_size == 300


def test_the_auto_step_budget_grows_with_the_square_root_of_the_rows():
    small, large = _resolve(1_600), _resolve(100_000)
    assert small.max_steps == 250  # the floor
    assert large.max_steps == int(2.5 * math.sqrt(100_000))
    assert large.max_steps < 100_000 / 1024 * 10  # a few epochs of a large table, not hundreds


def test_the_batch_and_step_budget_follow_the_width_of_the_table():
    def budget(estimator, n_features, n_rows=29_491):
        return _resolve(n_rows, 3_277, rule=estimator._budget_rule_for(n_features, n_rows))

    narrow, wide = budget(NFDensity(), 15), budget(NFDensity(), 16)
    assert (narrow.batch_size, narrow.max_steps) == (1024, int(8 * math.sqrt(29_491)))
    assert (wide.batch_size, wide.max_steps) == (256, int(16 * math.sqrt(29_491)))
    assert wide.learning_rate == pytest.approx(1e-3)  # 256 rows: the rate as stated, unscaled
    # NVF trains several states per row: a 64th of the rows below 16 features, the template's batches from 16 up.
    nvf_narrow, nvf_wide = budget(_nvf("diagonal"), 8), budget(_nvf("diagonal"), 16)
    assert (nvf_narrow.batch_size, nvf_narrow.max_steps) == (512, int(6 * math.sqrt(29_491)))
    assert (nvf_wide.batch_size, nvf_wide.max_steps) == (1024, int(2.5 * math.sqrt(29_491)))
    # A small narrow table trains its shallower flow (n_layers="auto") for 9 sqrt(n) steps instead of 6 sqrt(n).
    small, small_wide = budget(_nvf("full"), 2, n_rows=1_800), budget(_nvf("full"), 16, n_rows=1_800)
    assert (small.batch_size, small.max_steps) == (256, int(9 * math.sqrt(1_800)))
    assert small_wide.max_steps == 250  # the template's floor


def _nvf(state_affine):
    """An NVFDensity whose warm start chose ``state_affine`` (the wide tables' rate depends on it)."""
    estimator = NVFDensity()
    estimator.state_affine_ = state_affine
    return estimator


@pytest.mark.parametrize("estimator, n_features, n_rows, state_affine, rate", [
    ("NVF", 8, 29_491, "full", 4.5e-3 * math.sqrt(512 / 256)),  # below 16 features 4.5e-3 per 256 rows, any map
    ("NVF", 2, 1_800, "diagonal", 4.5e-3),
    ("NVF", 16, 29_491, "diagonal", 4.5e-3 * 2.0),  # from 16 up in batches of 1,024
    ("NVF", 16, 29_491, "full", 3e-3 * 2.0),  # decay acts on the full maps there: the slower rate
    ("NF", 8, 29_491, None, 3e-3 * 2.0),  # batches of 1,024
    ("NF", 16, 29_491, None, 1e-2),  # from 16 up, batches of 256 at the faster rate
])  # fmt: skip
def test_the_auto_learning_rate_follows_the_model_and_the_width(estimator, n_features, n_rows, state_affine, rate):
    rule = (_nvf(state_affine) if estimator == "NVF" else NFDensity())._budget_rule_for(n_features, n_rows)
    assert _resolve(n_rows, 3_277, rule=rule, learning_rate="auto").learning_rate == pytest.approx(rate)
    assert _resolve(n_rows, 3_277, rule=rule, learning_rate=1e-3, batch_size=256).learning_rate == 1e-3  # as given


def test_an_int_max_epochs_is_that_many_passes():
    budget = _resolve(10_000, batch_size=500, max_epochs=7)
    assert budget.max_steps == 7 * 10_000 // 500


def test_checks_are_spaced_so_exact_validation_stays_a_fifth_of_the_training():
    one_state = _resolve(32_768, 3_276, training_passes=2, validation_passes=1)
    many_states = _resolve(32_768, 3_276, training_passes=2, validation_passes=32)
    assert one_state.validation_interval == math.ceil(one_state.max_steps / 50)
    step_cost = 3 * many_states.batch_size * 2
    assert 3_276 * 32 <= 0.2 * step_cost * many_states.validation_interval
    assert many_states.validation_interval > one_state.validation_interval
    assert one_state.min_stalled_steps == one_state.max_steps // 8


def test_small_steps_run_on_one_thread_and_large_ones_on_the_cores_given():
    assert fit_threads(256, CPU) == 1
    assert fit_threads(4096, CPU) == min(torch.get_num_threads(), available_cores())


def test_intra_op_threads_are_restored_after_the_block_and_after_a_fit():
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    X = np.random.default_rng(0).normal(size=(300, 2))
    NFDensity(n_layers=1, hidden_size=8, max_epochs=1, random_state=0).fit(X)
    assert torch.get_num_threads() == before


def _fitted_threads():
    X = np.random.default_rng(0).normal(size=(3000, 4))
    return NVFDensity(8, n_layers=1, hidden_size=8, max_epochs=1, random_state=0).fit(X).n_threads_


@pytest.mark.slow  # spawns joblib's worker processes
def test_joblib_workers_fit_on_their_share_of_the_cores():
    """No oversubscription under GridSearchCV(n_jobs=2): each worker's fit uses at most its share."""
    threads = Parallel(n_jobs=2)(delayed(_fitted_threads)() for _ in range(2))
    assert all(1 <= t <= max(1, available_cores() // 2) for t in threads)


def test_the_fitted_attributes_record_what_auto_resolved_to():
    X = np.random.default_rng(0).normal(size=(2000, 2))
    estimator = NFDensity(n_layers=1, hidden_size=8, random_state=0).fit(X)
    expected = _resolve(1800, 200)  # the estimator's own rule differs only in its step budget
    assert estimator.batch_size_ == expected.batch_size == 512
    assert estimator.learning_rate_ == pytest.approx(3e-3 * math.sqrt(512 / 256))
    assert estimator.max_steps_ >= 250 and 1 <= estimator.validation_interval_ <= estimator.max_steps_
    assert 0 < estimator.n_steps_ <= estimator.max_steps_


def test_training_states_follow_the_overlap_of_the_warm_start():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=30.0, size=(4, 3))
    apart = np.concatenate([c + rng.normal(size=(500, 3)) for c in centres])
    overlapping = rng.normal(size=(2000, 3))  # one blob cut into 8 states: every row sits between several
    settings = dict(n_layers=1, hidden_size=8, max_epochs=1, random_state=0)
    assert NVFDensity(4, **settings).fit(apart).training_states_ == 2
    assert NVFDensity(8, **settings).fit(overlapping).training_states_ == 4
    assert NVFDensity(8, training_states=3, **settings).fit(overlapping).training_states_ == 3
    assert NVFDensity(2, **settings).fit(apart).training_states_ == 2  # K itself: every state
    assert NVFDensity(4, objective="elbo", **settings).fit(apart).training_states_ is None
