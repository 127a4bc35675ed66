"""The training ladder: fit -> stage -> validation period -> :class:`~.step.TrainStep`.

Training is counted in optimiser steps. Each of a model's training stages
draws full batches from an endless stream of epoch permutations, runs
``validation_interval`` steps, then checks: it scores the validation rows
(exactly, with the averaged weights), keeps the best state, and stops after
``patience`` checks without improvement or at the ``max_steps`` budget. The
learning rate of every step comes from one :class:`~.schedule.Schedule`. The
loop synchronises with the host once per check (the summary and the
divergence check), never per batch. A non-finite period is rolled back to
the best state so far, with fresh optimiser moments and a halved learning
rate; after ``max_recoveries`` such roll-backs the stage stops with its best
state. ``KeyboardInterrupt`` also stops with the
best state, and skips later stages. How rows are split over processes is a
:class:`Strategy`; the single-process one is the default (``distributed.py``
has the data-parallel one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from .base import DensityModel
from .schedule import Schedule
from .step import GradientReducer, TrainStep


@dataclass
class TrainingConfig:
    #: The step budget of each training stage; the cosine schedule decays over it.
    max_steps: int = 10_000
    batch_size: int = 256
    learning_rate: float = 1e-3
    #: Validation checks without improvement before a stage stops ...
    patience: int = 10
    #: ... spanning at least this many steps (small validation sets are noisy early on).
    min_stalled_steps: int = 0
    #: Optimiser steps between validation checks.
    validation_interval: int = 100
    gradient_clip: float = 5.0
    #: ``"cosine"`` or ``"plateau"`` (see :class:`~.schedule.Schedule`).
    schedule: str = "cosine"
    #: Cosine decay ends at this fraction of the learning rate.
    final_lr_fraction: float = 0.01
    #: Linear warm-up of the learning rate over this many steps.
    warmup_steps: int = 100
    #: Checks without improvement per halving of the ``"plateau"`` schedule.
    plateau_checks: int = 5
    weight_decay: float = 0.0
    #: Horizon, in steps, of an exponential moving average of the weights (None: none). Validation,
    #: early stopping and the kept model then use the average.
    weight_averaging: float | None = None
    max_recoveries: int = 4
    #: Extra cycles a stage may run when its budget ran out while it was still improving: each starts from the
    #: best state with fresh moments, half the previous peak rate and half the budget (cosine decay again).
    budget_extensions: int = 0
    #: Capture the training step (see ``step.TrainStep``).
    compile: bool = False

    def schedule_for_stage(self) -> Schedule:
        return Schedule(self.learning_rate, self.max_steps, self.warmup_steps, self.schedule,
                        self.final_lr_fraction, self.plateau_checks)  # fmt: skip


@dataclass
class TrainingData:
    """Training rows and their weights (all positive), and optional validation rows."""

    x: Tensor
    weights: Tensor
    x_validation: Tensor | None = None
    weights_validation: Tensor | None = None

    @property
    def has_validation(self) -> bool:
        return self.x_validation is not None and self.x_validation.shape[0] > 0


@dataclass
class CheckReport:
    """What one validation period did, for progress displays."""

    stage: str
    step: int
    max_steps: int
    train_loss: float
    validation_loss: float | None
    best_loss: float
    seconds: float
    rolled_back: bool = False


@dataclass
class TrainingResult:
    """Curves (one entry per validation check) and how training ended."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    #: Optimiser steps at each check (counted on across stages).
    steps: list[int] = field(default_factory=list)
    best_step: int = 0
    best_loss: float = math.inf
    #: Validation loss of the state training started from (the first candidate; inf without validation rows).
    start_loss: float = math.inf
    n_steps: int = 0
    #: ``"early_stopping"``, ``"max_steps"``, ``"diverged"`` or ``"interrupted"``.
    stop_reason: str = "max_steps"
    n_recoveries: int = 0
    #: Whether a stage's last training loss ended above its first (a sign of too large a learning rate).
    loss_rose: bool = False
    #: Why the training step could not be captured (it then ran eagerly), if it could not.
    compile_error: str | None = None
    #: Training stages run; steps (``n_steps``, ``best_step``) count on across them.
    n_stages: int = 1


#: Stop reasons from worst to best, for a run of several stages.
_STOP_REASON_SEVERITY = ("diverged", "interrupted", "max_steps", "early_stopping")


def chain_results(first: TrainingResult, second: TrainingResult) -> TrainingResult:
    """One record of two consecutive training stages on the same model.

    Curves are concatenated and steps counted on; the second stage started
    from the first stage's best state, so its best is the overall best. The
    stop reason is the worse of the two.
    """
    return TrainingResult(
        train_loss=first.train_loss + second.train_loss,
        validation_loss=first.validation_loss + second.validation_loss,
        learning_rate=first.learning_rate + second.learning_rate,
        steps=first.steps + [first.n_steps + s for s in second.steps],
        best_step=first.n_steps + second.best_step if second.best_step else first.best_step,
        best_loss=second.best_loss,
        start_loss=first.start_loss,
        n_steps=first.n_steps + second.n_steps,
        stop_reason=min(first.stop_reason, second.stop_reason, key=_STOP_REASON_SEVERITY.index),
        n_recoveries=first.n_recoveries + second.n_recoveries,
        loss_rose=first.loss_rose or second.loss_rose,
        compile_error=first.compile_error or second.compile_error,
        n_stages=first.n_stages + second.n_stages,
    )


class Strategy:
    """Single-process training: every row, gradients as they are. Subclassed for data parallelism."""

    #: Whether the step may be captured under this strategy.
    can_compile = True
    #: Applied to the gradients inside the step (None: nothing to do).
    reduce_gradients: GradientReducer | None = None

    def shard(self, order: Tensor) -> Tensor:
        """The rows of an epoch's permutation that this process trains on."""
        return order

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Sum of ``tensor`` over the processes."""
        return tensor

    def agree(self, values: list[float]) -> list[float]:
        """The first process's ``values``: every process takes the same decision at a check."""
        return values


@torch.no_grad()
def validation_loss(model: DensityModel, x: Tensor, weights: Tensor) -> float:
    """Weighted mean of ``model.validation_loss`` in eval mode, in chunks."""
    chunk = model.chunk_rows(x.device.type)
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk):
        total = total + (model.validation_loss(x[start : start + chunk]) * weights[start : start + chunk]).sum()
    model.train(was_training)
    return (total / weights.sum()).item()


def batch_stream(n_rows: int, batch_size: int, generator: torch.Generator, strategy: Strategy,
                 device: torch.device) -> Iterator[Tensor]:  # fmt: skip
    """Row indices of consecutive full batches: this process's shards of epoch permutations, end to end.

    Every batch has ``batch_size`` rows (at most the shard's size), so a
    captured step always sees one shape and no row is padded; each row is
    visited once per epoch, and a batch may straddle two epochs.
    """
    pending = torch.empty(0, dtype=torch.long, device=device)
    while True:
        while pending.shape[0] < batch_size:
            epoch = strategy.shard(torch.randperm(n_rows, generator=generator, device=device))
            batch_size = min(batch_size, epoch.shape[0])
            pending = torch.cat([pending, epoch])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def run_period(step: TrainStep, data: TrainingData, stream: Iterator[Tensor], schedule: Schedule,
               first_step: int, n_steps: int, generator: torch.Generator, strategy: Strategy) -> float:  # fmt: skip
    """``n_steps`` optimiser steps from step ``first_step``; the weighted mean training loss over them."""
    step.model.train()
    step.reset_totals()
    # Layers that draw from torch's global generator (dropout) draw from a copy seeded from the fit's own seed
    # and the period; the fit's generator is not consumed for it, and the global state is restored afterwards.
    seed = (generator.initial_seed() * 1_000_003 + first_step) % 2**63
    with torch.random.fork_rng(devices=[data.x.device] if data.x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for number in range(first_step, first_step + n_steps):
            index = next(stream)
            step.learning_rate.fill_(schedule.rate(number))
            step.progress.fill_(min(number / max(schedule.total_steps, 1), 1.0))
            step(data.x[index], data.weights[index], step.model.training_inputs(index, generator))
    totals = strategy.all_reduce_sum(step.totals.clone())
    return (totals[0] / totals[1]).item()


def _all_finite(model: DensityModel) -> bool:
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def averaging_decay(config: TrainingConfig) -> float | None:
    """Per-step decay of the weight average whose horizon is ``config.weight_averaging`` steps."""
    if config.weight_averaging is None:
        return None
    return 1.0 - 1.0 / max(config.weight_averaging, 1.0)


def state_copy(model: DensityModel) -> dict[str, Tensor]:
    """A detached copy of the model's state (cheaper than ``copy.deepcopy`` of the state dict)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _selection_loss(step: TrainStep, data: TrainingData, train_loss: float) -> float:
    """The check's selection loss: validation (else the period's training loss), with averaged weights if kept."""
    if not data.has_validation:
        return train_loss
    with step.averaged():
        return validation_loss(step.model, data.x_validation, data.weights_validation)


def _selected_state(step: TrainStep) -> dict[str, Tensor]:
    """A copy of the state a check scored: the averaged weights, if kept."""
    with step.averaged():
        return state_copy(step.model)


def train_stage(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    generator: torch.Generator,
    strategy: Strategy,
    stage: str = "all",
    on_check: Callable[[CheckReport], None] | None = None,
) -> TrainingResult:
    """Train the parameters that require gradients until early stopping; keep the best state.

    Selection uses ``model.validation_loss`` on the validation rows when there
    are any, else the training loss of the period, with the averaged weights
    when ``config.weight_averaging`` is set. The starting state is the first
    candidate: a stage never ends worse on validation than it started.
    """
    step = TrainStep(
        model,
        [p for p in model.parameters() if p.requires_grad],
        config.learning_rate,
        config.gradient_clip,
        weight_decay=config.weight_decay,
        reduce_gradients=strategy.reduce_gradients,
        compile=config.compile and strategy.can_compile,
        average_decay=averaging_decay(config),
    )
    schedule = config.schedule_for_stage()
    stream = batch_stream(data.x.shape[0], config.batch_size, generator, strategy, data.x.device)
    result, best_state = TrainingResult(), state_copy(model)
    stalled, done = 0, 0  # checks without improvement; steps done

    def report(train_loss, val_loss, started, rolled_back=False):
        if on_check is not None:
            shown = None if rolled_back or not data.has_validation else val_loss
            on_check(CheckReport(stage, done, config.max_steps, train_loss, shown, result.best_loss,
                                 time.perf_counter() - started, rolled_back))  # fmt: skip

    try:
        if data.has_validation:
            (result.start_loss,) = strategy.agree([validation_loss(model, data.x_validation, data.weights_validation)])
            result.best_loss = result.start_loss
        while done < config.max_steps:
            started = time.perf_counter()
            period = min(config.validation_interval, config.max_steps - done)
            train_loss = run_period(step, data, stream, schedule, done, period, generator, strategy)
            val_loss = _selection_loss(step, data, train_loss)
            # The check's decisions follow one process's numbers: data-parallel replicas never take different
            # branches (and then wait on different collectives).
            val_loss, finite = strategy.agree([val_loss, float(math.isfinite(train_loss) and _all_finite(model))])
            if not (finite and math.isfinite(val_loss)):
                # Roll back to the best state with fresh optimiser moments and a halved learning rate;
                # stop after too many roll-backs. The period's steps do not count.
                model.load_state_dict(best_state)
                step.restart()
                result.n_recoveries += 1
                schedule.back_off()
                report(train_loss, val_loss, started, rolled_back=True)
                if result.n_recoveries > config.max_recoveries:
                    result.stop_reason = "diverged"
                    break
                continue
            done += period
            result.n_steps = done
            result.steps.append(done)
            result.train_loss.append(train_loss)
            result.validation_loss.append(val_loss)
            result.learning_rate.append(schedule.rate(done - 1))
            improved = val_loss < result.best_loss
            schedule.record_check(improved)
            if improved:
                result.best_loss, result.best_step, best_state, stalled = val_loss, done, _selected_state(step), 0
            else:
                stalled += 1
            report(train_loss, val_loss, started)
            if stalled >= config.patience and done - result.best_step >= config.min_stalled_steps:
                result.stop_reason = "early_stopping"
                break
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
    finally:
        result.compile_error = step.compile_error
        result.loss_rose = len(result.train_loss) >= 2 and result.train_loss[-1] > result.train_loss[0]
        model.load_state_dict(best_state)
    return result


#: A run that used its whole budget is still improving when its best check lies in this last fraction of its steps
#: and its last quarter gained more than ``STILL_IMPROVING_GAIN`` nats per row on validation. A cosine schedule's
#: annealing nearly always puts the best check last; on the 8-D clusters the extensions that followed such small
#: gains bought 0.001 to 0.007 nats for up to 75% more time (``benchmarks/results/nvf_batch.md``).
STILL_IMPROVING_FRACTION, STILL_IMPROVING_GAIN = 0.1, 0.01


def still_improving(result: TrainingResult) -> bool:
    """Whether a run used its whole budget, found its best check near the end and was still gaining there."""
    late = result.n_steps * (1.0 - STILL_IMPROVING_FRACTION)
    if result.stop_reason != "max_steps" or result.n_steps == 0 or result.best_step < late:
        return False
    earlier = [loss for step, loss in zip(result.steps, result.validation_loss) if step <= 0.75 * result.n_steps]
    return min(earlier, default=result.start_loss) - result.best_loss > STILL_IMPROVING_GAIN


def train(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    generator: torch.Generator,
    strategy: Strategy | None = None,
    on_check: Callable[[CheckReport], None] | None = None,
) -> TrainingResult:
    """Fit ``model`` in place, stage by stage; on return it holds the best state, in eval mode."""
    strategy = strategy or Strategy()
    result = None
    model.begin_training(data.x)
    try:
        for stage in model.training_stages():
            model.set_training_stage(stage)
            stage_result = train_stage(model, data, config, generator, strategy, stage, on_check)
            cycle = config
            for _ in range(config.budget_extensions):
                if not still_improving(stage_result):
                    break
                cycle = replace(cycle, learning_rate=cycle.learning_rate / 2, max_steps=max(cycle.max_steps // 2, 1),
                                warmup_steps=0)  # fmt: skip
                more = train_stage(model, data, cycle, generator, strategy, stage, on_check)
                stage_result = replace(chain_results(stage_result, more), stop_reason=more.stop_reason,
                                       n_stages=stage_result.n_stages)  # fmt: skip
            result = stage_result if result is None else chain_results(result, stage_result)
            if result.stop_reason == "interrupted":
                break
    finally:
        model.end_training()
        model.eval()
    return result
