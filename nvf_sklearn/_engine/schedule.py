"""The learning rate of every optimiser step: warm-up, then cosine decay or halving on plateaus.

One object holds the whole policy, counted in optimiser steps (not epochs), so
the same schedule serves 1,600 rows and 1,000,000: ``rate(step)`` is what the
step at ``step`` uses, :meth:`Schedule.record_check` feeds it the outcome of
each validation check (a plateau halves the rate), and :meth:`Schedule.back_off`
halves it after a diverged period was rolled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Schedule:
    """Learning rate per optimiser step.

    Parameters
    ----------
    learning_rate : float
        Peak rate, reached at the end of the warm-up.
    total_steps : int
        The step budget; cosine decay ends there.
    warmup_steps : int, default=0
        Linear warm-up from ``learning_rate / warmup_steps`` to ``learning_rate``.
    kind : {"cosine", "plateau"}, default="cosine"
        ``"cosine"``: decay to ``final_fraction * learning_rate`` over
        ``total_steps``; ``"plateau"``: constant, halved after every
        ``plateau_checks`` validation checks without improvement.
    final_fraction : float, default=0.01
        Where cosine decay ends, as a fraction of the peak.
    plateau_checks : int, default=5
        Checks without improvement per halving (``"plateau"`` only).
    """

    learning_rate: float
    total_steps: int
    warmup_steps: int = 0
    kind: str = "cosine"
    final_fraction: float = 0.01
    plateau_checks: int = 5

    def __post_init__(self) -> None:
        #: Product of every halving so far (plateaus and roll-backs).
        self.scale = 1.0
        self._stalled = 0

    def rate(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "plateau":
            return self.learning_rate * warmup * self.scale
        progress = min(step / max(self.total_steps - 1, 1), 1.0)
        floor = self.final_fraction
        decay = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.learning_rate * warmup * decay * self.scale

    def record_check(self, improved: bool) -> None:
        """Feed a validation check's outcome: a plateau of ``plateau_checks`` halves the rate."""
        self._stalled = 0 if improved else self._stalled + 1
        if self.kind == "plateau" and self._stalled and self._stalled % self.plateau_checks == 0:
            self.scale *= 0.5

    def back_off(self) -> None:
        """Halve the rate for good (after a period gave a non-finite loss and was rolled back)."""
        self.scale *= 0.5
