"""The training ladder: divergence recovery, best-state restore, interruption, stages, batches, schedule."""

import math

import pytest
import torch

from nvf_sklearn._engine.flow_density import FlowDensity
from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.schedule import Schedule
from nvf_sklearn._engine.training import (
    Strategy,
    TrainingConfig,
    TrainingData,
    batch_stream,
    chain_results,
    run_period,
    still_improving,
    train,
    TrainingResult,
)
from nvf_sklearn._engine.step import TrainStep

N_ROWS, BATCH_SIZE = 200, 50


class Sabotaged(FlowDensity):
    """A flow whose loss turns NaN (or raises) in chosen validation periods (0-based); optionally two stages.

    With the settings of :func:`_fit` a period is one epoch (``BATCH_SIZE`` divides ``N_ROWS``).
    """

    def __init__(self, bad_epochs=(), interrupt_at=None, interrupt_validation_at=None, stages=("all",)):
        super().__init__(spline_flow(2, n_layers=2, hidden_size=8))
        initialize_parameters(self, torch.Generator().manual_seed(0))
        self.bad_epochs, self.interrupt_at = set(bad_epochs), interrupt_at
        self.interrupt_validation_at, self.stages = interrupt_validation_at, stages
        self.calls, self.validations, self.entered = 0, 0, []

    def training_loss(self, x, noise, progress):
        self.epoch = self.calls // math.ceil(N_ROWS / BATCH_SIZE)
        self.calls += 1
        if self.interrupt_at is not None and self.epoch == self.interrupt_at:
            raise KeyboardInterrupt
        loss = super().training_loss(x, noise, progress)
        return loss * float("nan") if self.epoch in self.bad_epochs else loss

    def validation_loss(self, x):
        self.validations += 1
        if self.validations == self.interrupt_validation_at:
            raise KeyboardInterrupt
        return super().validation_loss(x)

    def training_stages(self):
        return self.stages

    def set_training_stage(self, stage):
        self.entered.append(stage)


def _data(generator):
    # Skewed data: the identity flow at initialisation is far from optimal.
    x = torch.randn(N_ROWS, 2, generator=generator).exp() - 1.5
    x_val = torch.randn(50, 2, generator=generator).exp() - 1.5
    return TrainingData(x, torch.ones(N_ROWS), x_val, torch.ones(50))


STEPS_PER_EPOCH = N_ROWS // BATCH_SIZE


def _fit(module, epochs=6, **config):
    """Train for ``epochs`` periods of one epoch each (one check per epoch)."""
    generator = torch.Generator().manual_seed(0)
    settings = {**dict(max_steps=epochs * STEPS_PER_EPOCH, validation_interval=STEPS_PER_EPOCH, batch_size=BATCH_SIZE,
                       learning_rate=1e-2, patience=100, warmup_steps=0, schedule="plateau"), **config}  # fmt: skip
    return train(module, _data(generator), TrainingConfig(**settings), generator)


def test_a_nan_epoch_is_rolled_back_and_training_continues():
    module = Sabotaged(bad_epochs={2})
    result = _fit(module)
    assert result.n_recoveries == 1
    assert result.stop_reason == "max_steps"
    assert all(math.isfinite(v) for v in result.train_loss + result.validation_loss)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    # The period after the roll-back ran at half the scheduled learning rate; the rolled-back period did not count.
    assert result.learning_rate[2] < result.learning_rate[1] * 0.6
    assert result.n_steps == 6 * STEPS_PER_EPOCH and len(result.train_loss) == 6


def test_repeated_divergence_stops_with_the_best_state():
    module = Sabotaged(bad_epochs=set(range(3, 100)))
    result = _fit(module, epochs=20, max_recoveries=2)
    assert result.stop_reason == "diverged"
    assert result.n_recoveries == 3
    assert result.best_step <= 3 * STEPS_PER_EPOCH
    assert torch.isfinite(module.log_joint(torch.randn(10, 2))).all()


@pytest.mark.parametrize("where", ["step", "validation"])
def test_keyboard_interrupt_keeps_the_best_model(where):
    module = Sabotaged(interrupt_at=3) if where == "step" else Sabotaged(interrupt_validation_at=5)
    result = _fit(module)
    assert result.stop_reason == "interrupted"
    assert result.n_steps == 3 * STEPS_PER_EPOCH
    assert STEPS_PER_EPOCH <= result.best_step <= 3 * STEPS_PER_EPOCH
    assert not module.training
    assert all(p.requires_grad for p in module.parameters())


def test_an_interrupt_skips_the_later_stages():
    module = Sabotaged(interrupt_at=3, stages=("first", "second"))
    result = _fit(module)
    assert module.entered == ["first"] and result.stop_reason == "interrupted"


def test_stages_run_in_order_and_chain_their_records():
    module = Sabotaged(stages=("first", "second"))
    result = _fit(module, epochs=3)
    assert module.entered == ["first", "second"]
    assert result.n_steps == 6 * STEPS_PER_EPOCH and len(result.train_loss) == 6
    assert result.steps == [STEPS_PER_EPOCH * (i + 1) for i in range(6)]


def test_chain_results_keeps_the_worse_stop_reason_and_counts_steps_on():
    first = TrainingResult(train_loss=[1.0], steps=[4], best_step=4, n_steps=4, stop_reason="early_stopping")
    second = TrainingResult(train_loss=[0.5], steps=[4], best_step=0, n_steps=4, stop_reason="max_steps")
    chained = chain_results(first, second)
    assert chained.stop_reason == "max_steps" and chained.n_steps == 8 and chained.best_step == 4
    assert chained.steps == [4, 8]


def test_validation_loss_decreases_on_easy_data():
    result = _fit(Sabotaged(), epochs=8)
    assert result.best_loss < result.validation_loss[0]


@pytest.mark.parametrize("n_rows, batch_size", [(23, 5), (20, 5), (4, 7)])
def test_the_batch_stream_has_full_batches_and_visits_every_row_once_per_epoch(n_rows, batch_size):
    stream = batch_stream(n_rows, batch_size, torch.Generator().manual_seed(0), Strategy(), torch.device("cpu"))
    batch = min(batch_size, n_rows)
    drawn = torch.cat([next(stream) for _ in range(3 * n_rows)])  # 3 * batch epochs' worth of rows
    assert all(next(stream).shape[0] == batch for _ in range(5))
    for epoch in range(3 * batch):
        assert sorted(drawn[epoch * n_rows : (epoch + 1) * n_rows].tolist()) == list(range(n_rows))


def test_a_period_reports_the_exact_weighted_objective_of_its_batches():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(20, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(20, generator=generator, dtype=torch.float64) + 0.5
    model = FlowDensity(spline_flow(2, n_layers=1, hidden_size=4)).double()
    initialize_parameters(model, generator)
    step = TrainStep(model, list(model.parameters()), 0.0, 5.0)  # a zero learning rate: parameters stay put
    stream = batch_stream(20, 5, generator, Strategy(), x.device)
    loss = run_period(step, TrainingData(x, weights), stream, Schedule(0.0, 4), 0, 4, generator, Strategy())
    with torch.no_grad():
        exact = ((-model.log_joint(x)[:, 0] * weights).sum() / weights.sum()).item()
    assert loss == pytest.approx(exact, rel=1e-12)  # 4 steps of 5 rows: one epoch


def test_the_eager_steps_compute_what_the_torch_optim_loop_computed():
    """The step (own Adam, clipping, weighted loss) reproduces a torch.optim loop to float32 rounding.

    The reference is torch.optim.Adam(foreach=True) with clip_grad_norm_(5) and a cosine learning rate per step,
    on the same stream of batches.
    """
    config = TrainingConfig(max_steps=12, batch_size=50, learning_rate=1e-2, warmup_steps=3)
    schedule = config.schedule_for_stage()
    data = _data(torch.Generator().manual_seed(0))
    ours, reference = Sabotaged(), Sabotaged()
    step = TrainStep(ours, list(ours.parameters()), config.learning_rate, config.gradient_clip)
    generator = torch.Generator().manual_seed(1)
    stream = batch_stream(N_ROWS, config.batch_size, generator, Strategy(), data.x.device)
    run_period(step, data, stream, schedule, 0, config.max_steps, generator, Strategy())

    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate, foreach=True)
    generator = torch.Generator().manual_seed(1)
    stream = batch_stream(N_ROWS, config.batch_size, generator, Strategy(), data.x.device)
    for number in range(config.max_steps):
        index = next(stream)
        for group in optimizer.param_groups:
            group["lr"] = schedule.rate(number)
        loss = (reference.training_loss(data.x[index], None, None) * data.weights[index]).sum() / data.weights[index].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), config.gradient_clip, foreach=True)
        optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5)


def test_warm_up_then_cosine_decay_over_the_step_budget():
    schedule = Schedule(1.0, total_steps=101, warmup_steps=4, kind="cosine", final_fraction=0.0)
    assert [schedule.rate(step) for step in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0], rel=3e-3)
    assert schedule.rate(50) == pytest.approx(0.5) and schedule.rate(100) == pytest.approx(0.0, abs=1e-12)
    schedule.back_off()
    assert schedule.rate(50) == pytest.approx(0.25)


def test_warm_up_then_halving_on_plateaus():
    schedule = Schedule(1.0, total_steps=100, warmup_steps=4, kind="plateau", plateau_checks=2)
    assert [schedule.rate(step) for step in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    # A model that never improves on validation: the rate halves every plateau_checks checks.
    module = Sabotaged()
    module.validation_loss = lambda x: torch.full((x.shape[0],), 1e9)
    result = _fit(module, epochs=9, patience=8, plateau_checks=2)
    assert result.learning_rate == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3, 1.25e-3, 1.25e-3])
    assert result.stop_reason == "early_stopping" and result.best_step == 0


def test_early_stopping_waits_for_the_stalled_steps_floor():
    module = Sabotaged()
    module.validation_loss = lambda x: torch.full((x.shape[0],), 1e9)
    result = _fit(module, epochs=20, patience=2, min_stalled_steps=5 * STEPS_PER_EPOCH)
    assert result.stop_reason == "early_stopping" and result.n_steps == 5 * STEPS_PER_EPOCH


def test_the_kept_model_is_the_weight_average_the_validation_scored():
    module = Sabotaged()
    result = _fit(module, epochs=4, weight_averaging=0.9)
    data = _data(torch.Generator().manual_seed(0))
    with torch.no_grad():
        kept = module.validation_loss(data.x_validation).mean().item()
    assert kept == pytest.approx(result.best_loss, rel=1e-6)
    assert result.best_loss == min(result.validation_loss)


def test_a_run_still_improving_at_its_budget_gets_shorter_cycles_at_half_the_rate():
    """Skewed data and 4 epochs: still improving at the end, so 2 more cycles of 2 and 1 epochs, rates halved."""
    result = _fit(Sabotaged(), epochs=4, schedule="cosine", budget_extensions=2, learning_rate=1e-2)
    assert result.n_steps == (4 + 2 + 1) * STEPS_PER_EPOCH
    assert result.steps == [STEPS_PER_EPOCH * (i + 1) for i in range(7)]
    assert result.stop_reason == "max_steps" and result.n_stages == 1
    first_peak, second_peak = max(result.learning_rate[:4]), max(result.learning_rate[4:6])
    assert second_peak <= first_peak / 2 + 1e-12 and max(result.learning_rate[6:]) <= first_peak / 4 + 1e-12
    assert result.best_loss == min(result.validation_loss) and result.best_loss < result.start_loss


def test_a_run_that_stopped_early_or_peaked_long_before_its_budget_is_not_extended():
    stopped = _fit(Sabotaged(), epochs=4, budget_extensions=2, patience=1, learning_rate=1.0)
    assert stopped.n_steps <= 4 * STEPS_PER_EPOCH
    peaked = TrainingResult(n_steps=100, best_step=50, stop_reason="max_steps")
    assert not still_improving(peaked)

    def ended(losses):  # checks every 25 steps, the best at the last one
        return TrainingResult(steps=[25, 50, 75, 100], validation_loss=losses, n_steps=100, best_step=100,
                              best_loss=losses[-1], start_loss=2.0, stop_reason="max_steps")  # fmt: skip

    assert still_improving(ended([1.5, 1.2, 1.1, 1.05]))  # the last quarter gained 0.05 nats
    assert not still_improving(ended([1.5, 1.2, 1.1, 1.095]))  # annealing's last 0.005 nats: not worth a cycle
