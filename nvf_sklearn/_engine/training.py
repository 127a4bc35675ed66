"""The training ladder: fit -> stage -> epoch -> :class:`~.step.TrainStep`, with validation.

Each of a model's training stages runs epochs of device-side minibatches until
early stopping, then restores its best state. The loop synchronises with the
host once per epoch (the summary and the divergence check), never per batch.
A non-finite epoch is rolled back to its start with a halved learning rate;
after ``max_recoveries`` such roll-backs the stage stops with its best state.
``KeyboardInterrupt`` also stops with the best state, and skips later stages.
How rows are split over processes is a :class:`Strategy`; the single-process
one is the default (``distributed.py`` has the data-parallel one).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import DensityModel
from .step import GradientReducer, TrainStep


@dataclass
class TrainingConfig:
    max_epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 20
    gradient_clip: float = 5.0
    #: ``"cosine"``: decay over ``max_epochs`` to ``final_lr_fraction``; ``"plateau"``: halve the
    #: learning rate after every ``patience // 4`` epochs without improvement (decay tied to the run).
    schedule: str = "plateau"
    #: Cosine decay ends at this fraction of the learning rate.
    final_lr_fraction: float = 0.01
    #: Linear warm-up of the learning rate over this many epochs.
    warmup_epochs: int = 3
    weight_decay: float = 0.0
    #: Horizon, in epochs, of an exponential moving average of the weights (None: none). Validation,
    #: early stopping and the kept model then use the average.
    weight_averaging: float | None = 1.5
    max_recoveries: int = 4
    #: Capture the training step (see ``step.TrainStep``); batches then all have ``batch_size`` rows.
    compile: bool = False


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
class EpochReport:
    """What one epoch did, for progress displays."""

    stage: str
    epoch: int
    max_epochs: int
    train_loss: float
    validation_loss: float | None
    best_loss: float
    seconds: float
    rolled_back: bool = False


@dataclass
class TrainingResult:
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf
    n_epochs: int = 0
    #: ``"early_stopping"``, ``"max_epochs"``, ``"diverged"`` or ``"interrupted"``.
    stop_reason: str = "max_epochs"
    n_recoveries: int = 0
    #: Whether a stage's last training loss ended above its first (a sign of too large a learning rate).
    loss_rose: bool = False
    #: Why the training step could not be captured (it then ran eagerly), if it could not.
    compile_error: str | None = None
    #: Training stages run; epochs (``n_epochs``, ``best_epoch``) count on across them.
    n_stages: int = 1


#: Stop reasons from worst to best, for a run of several stages.
_STOP_REASON_SEVERITY = ("diverged", "interrupted", "max_epochs", "early_stopping")


def chain_results(first: TrainingResult, second: TrainingResult) -> TrainingResult:
    """One record of two consecutive training stages on the same model.

    Curves are concatenated and epochs counted on; the second stage started
    from the first stage's best state, so its best is the overall best. The
    stop reason is the worse of the two.
    """
    return TrainingResult(
        train_loss=first.train_loss + second.train_loss,
        validation_loss=first.validation_loss + second.validation_loss,
        learning_rate=first.learning_rate + second.learning_rate,
        best_epoch=first.n_epochs + second.best_epoch if second.best_epoch else first.best_epoch,
        best_loss=second.best_loss,
        n_epochs=first.n_epochs + second.n_epochs,
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


def scheduled_learning_rate(config: TrainingConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` before plateau halvings and roll-backs: warm-up, then cosine or constant."""
    warmup = min(1.0, (epoch + 1) / config.warmup_epochs) if config.warmup_epochs else 1.0
    if config.schedule == "plateau":
        return config.learning_rate * warmup
    progress = epoch / max(config.max_epochs - 1, 1)
    floor = config.final_lr_fraction
    return warmup * config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def batches(order: Tensor, weights: Tensor, batch_size: int, pad: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """``(row index, row weights)`` per batch of an epoch's ``order``.

    With ``pad`` every batch has ``batch_size`` rows: the last one is filled
    with rows of weight zero, so the weighted objective is unchanged.
    """
    for start in range(0, order.shape[0], batch_size):
        index = order[start : start + batch_size]
        batch_weights = weights[index]
        missing = batch_size - index.shape[0]
        if pad and missing:
            filler = order[:1].expand(missing)
            index = torch.cat([index, filler])
            batch_weights = torch.cat([batch_weights, torch.zeros_like(batch_weights[:1]).expand(missing)])
        yield index, batch_weights


def run_epoch(
    step: TrainStep,
    data: TrainingData,
    config: TrainingConfig,
    generator: torch.Generator,
    strategy: Strategy,
    epoch: int,
) -> float:
    """One pass over the (shard of the) training rows; the weighted mean training loss.

    Once the step is captured (after its first, full-size batch), the last
    batch is padded to the captured shape.
    """
    step.model.train()
    step.reset_totals()
    order = strategy.shard(torch.randperm(data.x.shape[0], generator=generator, device=data.x.device))
    n_batches = math.ceil(order.shape[0] / config.batch_size)
    # Layers that draw from torch's global generator (dropout) draw from a copy seeded from the fit's own seed
    # and the epoch; the fit's generator is not consumed for it, and the global state is restored afterwards.
    seed = (generator.initial_seed() * 1_000_003 + epoch) % 2**63
    with torch.random.fork_rng(devices=[data.x.device] if data.x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for number, (index, batch_weights) in enumerate(batches(order, data.weights, config.batch_size, step.captured)):
            step.progress.fill_(min((epoch + number / n_batches) / max(config.max_epochs, 1), 1.0))
            step(data.x[index], batch_weights, step.model.training_inputs(index, generator))
    totals = strategy.all_reduce_sum(step.totals.clone())
    return (totals[0] / totals[1]).item()


def _all_finite(model: DensityModel) -> bool:
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def averaging_decay(config: TrainingConfig, n_rows: int) -> float | None:
    """Per-step decay of the weight average whose horizon is ``config.weight_averaging`` epochs of ``n_rows``."""
    if config.weight_averaging is None:
        return None
    steps = config.weight_averaging * math.ceil(n_rows / config.batch_size)
    return 1.0 - 1.0 / max(steps, 1.0)


def _validate(step: TrainStep, data: TrainingData, train_loss: float, best_loss: float) -> tuple[float, dict | None]:
    """The epoch's selection loss (with averaged weights, if kept) and, if it improved, a copy of that state."""
    with step.averaged():
        model = step.model
        loss = validation_loss(model, data.x_validation, data.weights_validation) if data.has_validation else train_loss
        improved = math.isfinite(loss) and loss < best_loss
        return loss, copy.deepcopy(model.state_dict()) if improved else None


def train_stage(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    generator: torch.Generator,
    strategy: Strategy,
    stage: str = "all",
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainingResult:
    """Train the parameters that require gradients until early stopping; keep the best state.

    Selection uses ``model.validation_loss`` on the validation rows when there
    are any, else the training loss, with the averaged weights when
    ``config.weight_averaging`` is set.
    """
    step = TrainStep(
        model,
        [p for p in model.parameters() if p.requires_grad],
        config.learning_rate,
        config.gradient_clip,
        weight_decay=config.weight_decay,
        reduce_gradients=strategy.reduce_gradients,
        compile=config.compile and strategy.can_compile,
        average_decay=averaging_decay(config, strategy.shard(torch.arange(data.x.shape[0])).shape[0]),
    )
    result, best_state = TrainingResult(), copy.deepcopy(model.state_dict())
    lr_scale, stalled, plateau = 1.0, 0, max(1, config.patience // 4)

    def report(epoch, train_loss, val_loss, started, rolled_back=False):
        if on_epoch is not None:
            shown = None if rolled_back or not data.has_validation else val_loss
            on_epoch(EpochReport(stage, epoch, config.max_epochs, train_loss, shown, result.best_loss,
                                 time.perf_counter() - started, rolled_back))  # fmt: skip

    try:
        if data.has_validation:
            result.best_loss = validation_loss(model, data.x_validation, data.weights_validation)
        for epoch in range(config.max_epochs):
            started, last_good = time.perf_counter(), (copy.deepcopy(model.state_dict()), step.state_dict())
            lr = scheduled_learning_rate(config, epoch) * lr_scale
            step.learning_rate.fill_(lr)
            train_loss = run_epoch(step, data, config, generator, strategy, epoch)
            val_loss, improved_state = _validate(step, data, train_loss, result.best_loss)
            if not (math.isfinite(train_loss) and math.isfinite(val_loss) and _all_finite(model)):
                # Roll the epoch back and halve the learning rate; stop after too many.
                model.load_state_dict(last_good[0])
                step.load_state_dict(last_good[1])
                result.n_recoveries, lr_scale = result.n_recoveries + 1, lr_scale * 0.5
                report(epoch + 1, train_loss, val_loss, started, rolled_back=True)
                if result.n_recoveries > config.max_recoveries:
                    result.stop_reason = "diverged"
                    break
                continue
            result.n_epochs = epoch + 1
            result.train_loss.append(train_loss)
            result.validation_loss.append(val_loss)
            result.learning_rate.append(lr)
            if improved_state is not None:
                result.best_loss, result.best_epoch, best_state, stalled = val_loss, epoch + 1, improved_state, 0
            else:
                stalled += 1
                if config.schedule == "plateau" and stalled % plateau == 0:
                    lr_scale *= 0.5
            report(epoch + 1, train_loss, val_loss, started)
            if stalled >= config.patience:
                result.stop_reason = "early_stopping"
                break
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
    finally:
        result.compile_error = step.compile_error
        result.loss_rose = len(result.train_loss) >= 2 and result.train_loss[-1] > result.train_loss[0]
        model.load_state_dict(best_state)
    return result


def train(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    generator: torch.Generator,
    strategy: Strategy | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainingResult:
    """Fit ``model`` in place, stage by stage; on return it holds the best state, in eval mode."""
    strategy = strategy or Strategy()
    result = None
    model.begin_training(data.x)
    try:
        for stage in model.training_stages():
            model.set_training_stage(stage)
            stage_result = train_stage(model, data, config, generator, strategy, stage, on_epoch)
            result = stage_result if result is None else chain_results(result, stage_result)
            if result.stop_reason == "interrupted":
                break
    finally:
        model.end_training()
        model.eval()
    return result
