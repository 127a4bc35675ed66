"""The training loop: device-side minibatches, early stopping, best-state restore, NaN guard.

The loop synchronises with the host once per epoch (for the summary and the
divergence check), never per batch. A non-finite epoch is rolled back to the
state at its start with a lower learning rate; after ``max_recoveries`` such
roll-backs the loop stops with the best state seen. ``KeyboardInterrupt``
also stops with the best state.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .density import score_chunk_rows


@dataclass
class TrainingConfig:
    max_epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 20
    gradient_clip: float = 5.0
    #: Cosine decay ends at this fraction of the learning rate.
    final_lr_fraction: float = 0.01
    max_recoveries: int = 4
    verbose: int = 0


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
    )


@torch.no_grad()
def mean_negative_log_likelihood(module: nn.Module, x: Tensor, weights: Tensor) -> float:
    """Exact weighted mean of ``-log p(x)`` in eval mode, scored in chunks."""
    chunk_size = score_chunk_rows(module)
    was_training = module.training
    module.eval()
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        log_p = module.log_joint(x[start : start + chunk_size]).logsumexp(dim=-1)
        total = total - (log_p * weights[start : start + chunk_size]).sum()
    module.train(was_training)
    return (total / weights.sum()).item()


def _cosine_lr(config: TrainingConfig, epoch: int) -> float:
    progress = epoch / max(config.max_epochs - 1, 1)
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _snapshot(module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    return copy.deepcopy(module.state_dict()), copy.deepcopy(optimizer.state_dict())


def _all_finite(module: nn.Module) -> bool:
    flags = [torch.isfinite(p).all() for p in module.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


@dataclass
class Replica:
    """One process of a data-parallel fit: it trains on every ``world_size``-th row.

    ``objective`` is the (DDP-wrapped) module whose ``forward`` is the training
    loss; its backward pass averages gradients across processes.
    """

    rank: int
    world_size: int
    objective: nn.Module

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        torch.distributed.all_reduce(tensor)
        return tensor


def _run_epoch(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    weights: Tensor,
    config: TrainingConfig,
    generator: torch.Generator,
    epoch: int,
    replica: Replica | None,
) -> float:
    module.train()
    order = torch.randperm(x.shape[0], generator=generator, device=x.device)
    objective = module.training_loss
    if replica is not None:
        # Equal shard sizes keep every process at the same number of steps.
        usable = x.shape[0] - x.shape[0] % replica.world_size
        order = order[replica.rank : usable : replica.world_size]
        objective = replica.objective
    n_batches = math.ceil(order.shape[0] / config.batch_size)
    total = torch.zeros(2, dtype=x.dtype, device=x.device)
    for step in range(n_batches):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        progress = min((epoch + step / n_batches) / max(config.max_epochs, 1), 1.0)
        loss_rows = objective(x[index], generator, progress)
        batch_weights = weights[index]
        loss = (loss_rows * batch_weights).sum() / batch_weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), config.gradient_clip, foreach=True)
        optimizer.step()
        total = total + torch.stack([loss.detach() * batch_weights.sum(), batch_weights.sum()])
    if replica is not None:
        total = replica.all_reduce_sum(total)
    return (total[0] / total[1]).item()


def train(
    module: nn.Module,
    x_train: Tensor,
    w_train: Tensor,
    x_val: Tensor | None,
    w_val: Tensor | None,
    config: TrainingConfig,
    generator: torch.Generator,
    log: Callable[[str], None] = print,
    replica: Replica | None = None,
) -> TrainingResult:
    """Fit ``module`` in place by minimising its weighted training loss.

    Model selection uses the exact validation negative log-likelihood when a
    validation set is given, else the training loss. On return the module
    holds the best state and is in eval mode. With a ``replica``, this
    process trains on its shard of the rows; every process sees the same
    validation loss, so all take the same early-stopping decisions.
    """
    # foreach: one fused update over all tensors (measured ~6% faster per CPU step).
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate, foreach=True)
    result = TrainingResult()
    has_validation = x_val is not None and x_val.shape[0] > 0
    if has_validation:
        result.best_loss = mean_negative_log_likelihood(module, x_val, w_val)
    best_state = copy.deepcopy(module.state_dict())
    lr_scale, epochs_without_improvement = 1.0, 0
    try:
        for epoch in range(config.max_epochs):
            started = time.perf_counter()
            last_good = _snapshot(module, optimizer)
            lr = _cosine_lr(config, epoch) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss = _run_epoch(module, optimizer, x_train, w_train, config, generator, epoch, replica)
            val_loss = (
                mean_negative_log_likelihood(module, x_val, w_val)
                if has_validation
                else train_loss
            )
            if not (math.isfinite(train_loss) and math.isfinite(val_loss) and _all_finite(module)):
                module.load_state_dict(last_good[0])
                optimizer.load_state_dict(last_good[1])
                result.n_recoveries += 1
                lr_scale *= 0.5
                if config.verbose:
                    log(f"epoch {epoch + 1:4d}  non-finite loss: rolled back, learning rate halved")
                if result.n_recoveries > config.max_recoveries:
                    result.stop_reason = "diverged"
                    break
                continue
            result.n_epochs = epoch + 1
            result.train_loss.append(train_loss)
            result.validation_loss.append(val_loss)
            result.learning_rate.append(lr)
            if val_loss < result.best_loss:
                result.best_loss, result.best_epoch = val_loss, epoch + 1
                best_state = copy.deepcopy(module.state_dict())
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
            if config.verbose:
                log(
                    f"epoch {epoch + 1:4d}  train {train_loss:.4f}  "
                    f"{'valid' if has_validation else 'train'} {val_loss:.4f}  "
                    f"lr {lr:.2e}  {time.perf_counter() - started:.2f}s"
                )
            if epochs_without_improvement >= config.patience:
                result.stop_reason = "early_stopping"
                break
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
    module.load_state_dict(best_state)
    module.eval()
    return result
