"""The training budget of one fit, resolved from the data, the model and the device.

Every ``"auto"`` of the training policy is decided here, once per fit, and
recorded on the estimator as a fitted attribute: rows per step
(``batch_size_``), the peak learning rate for that batch (``learning_rate_``),
the step budget (``max_steps_``), the steps between validation checks
(``validation_interval_``) and the CPU threads (``n_threads_``). The rules
were chosen by time to quality on the project's 2-core CPU (see the user
guide, "How the defaults were chosen"):

- A CPU step of these small networks is bound by per-operation overhead up to
  about a thousand row-passes, so small tables train in larger batches (more
  rows per step at nearly the same cost) with the learning rate scaled by the
  square root of the batch.
- The budget follows the data: ``steps_per_sqrt_row * sqrt(n_rows)`` steps,
  within ``[min_steps, max_steps]``, so 1,600 rows run a few hundred steps and
  100,000 rows a few thousand; the cosine schedule decays over it and early
  stopping may end it sooner.
- Validation is exact (every state of every validation row), so its cost is
  known: checks come often enough to stop early, but never so often that
  scoring the validation rows costs more than a fifth of the training
  between them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

#: Scoring the validation rows may cost at most this fraction of the training between two checks.
VALIDATION_SHARE = 0.2
#: Early stopping waits at least this fraction of the budget after the best check (small validation sets are noisy).
STALL_FRACTION = 0.125
#: A backward pass costs about this many forward passes.
BACKWARD_COST = 2.0
#: Below this many flow row-passes per step, one CPU thread is faster than several (per-operation overhead).
ONE_THREAD_WORK = 1024


#: ``max_epochs="auto"``: cycles a fit may add when its budget ran out while validation was still improving (each
#: from the best state, at half the previous peak rate, over half the previous budget).
BUDGET_EXTENSIONS = 2

@dataclass(frozen=True)
class BudgetRule:
    """How one family of estimators sizes its training (per device type where they differ).

    ``batch_rows_fraction``: the CPU batch is this fraction of the training
    rows, rounded to a power of two within ``[min_batch, max_batch]``; a GPU
    batch is ``gpu_batch`` rows (at most the training rows). A learning rate
    is stated for ``reference_batch`` rows; another batch scales it by
    ``sqrt(batch / reference_batch)``. ``learning_rate`` is the rate that an
    estimator's ``learning_rate="auto"`` resolves to.
    """

    min_batch: int
    max_batch: int
    batch_rows_fraction: float
    gpu_batch: int
    reference_batch: int
    steps_per_sqrt_row: float
    min_steps: int
    max_steps: int
    checks_per_budget: int = 50
    learning_rate: float = 3e-3


@dataclass(frozen=True)
class TrainingBudget:
    """What one fit resolved: the values behind every ``"auto"`` of the training policy."""

    batch_size: int
    learning_rate: float
    max_steps: int
    validation_interval: int
    min_stalled_steps: int
    warmup_steps: int
    averaging_steps: float | None
    n_threads: int


def power_of_two_batch(n_rows: int, rule: BudgetRule) -> int:
    target = max(1.0, rule.batch_rows_fraction * n_rows)
    return int(min(max(2 ** round(math.log2(target)), rule.min_batch), rule.max_batch))


def resolve_budget(
    rule: BudgetRule,
    *,
    n_train: int,
    n_validation: int,
    batch_size: int | str,
    max_epochs: int | str,
    learning_rate: float | str,
    weight_averaging: float | None,
    training_passes: int,
    validation_passes: int,
    device: torch.device,
    n_processes: int = 1,
) -> TrainingBudget:
    """Resolve a fit's training policy.

    ``training_passes`` and ``validation_passes`` are the flow passes per row
    of a training step and of validation (``training_states`` and ``K`` for
    NVF); each of ``n_processes`` data-parallel processes trains on its
    ``1 / n_processes`` of the rows. ``learning_rate="auto"`` is the rule's.
    """
    if learning_rate == "auto":
        learning_rate = rule.learning_rate
    rows = max(1, n_train // n_processes)
    if batch_size == "auto":
        batch = power_of_two_batch(rows, rule) if device.type == "cpu" else rule.gpu_batch
    else:
        batch = int(batch_size)
    batch = min(batch, rows)
    steps_per_epoch = rows / batch
    if max_epochs == "auto":
        budget = rule.steps_per_sqrt_row * math.sqrt(n_train)
        max_steps = int(min(max(budget, rule.min_steps), rule.max_steps))
    else:
        max_steps = int(math.ceil(max_epochs * steps_per_epoch))
    # Checks: ``checks_per_budget`` over the budget, but validation at most VALIDATION_SHARE of the training.
    step_cost = (1.0 + BACKWARD_COST) * batch * training_passes
    validation_cost = n_validation * validation_passes
    least_interval = math.ceil(validation_cost / (VALIDATION_SHARE * step_cost))
    interval = max(1, least_interval, math.ceil(max_steps / rule.checks_per_budget))
    averaging = None
    if weight_averaging is not None:  # a horizon of weight_averaging epochs, within 4% to 10% of the budget
        averaging = min(max(weight_averaging * steps_per_epoch, max_steps / 25), max_steps / 10)
    return TrainingBudget(
        batch_size=batch,
        learning_rate=learning_rate * math.sqrt(batch / rule.reference_batch),
        max_steps=max(1, max_steps),
        validation_interval=min(interval, max(1, max_steps)),
        min_stalled_steps=int(STALL_FRACTION * max_steps),
        warmup_steps=int(min(math.ceil(3 * steps_per_epoch), max(1, max_steps // 20))),
        averaging_steps=averaging,
        n_threads=fit_threads(batch * training_passes, device),
    )


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def fit_threads(work_per_step: int, device: torch.device) -> int:
    """Intra-op threads for a fit: what this process was given, or one for steps too small to share.

    ``torch.get_num_threads()`` already follows ``OMP_NUM_THREADS``, which
    joblib's workers set to their share of the cores (``GridSearchCV(n_jobs=N)``),
    so parallel fits do not oversubscribe the machine.
    """
    given = min(torch.get_num_threads(), available_cores())
    if device.type != "cpu" or work_per_step < ONE_THREAD_WORK:
        return 1 if device.type == "cpu" else given
    return given


@contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Within the block torch runs ``n`` intra-op threads; the previous count is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
