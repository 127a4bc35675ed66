"""The engine's two contracts: invertible transforms and density models.

A :class:`Transform` maps data towards the base space and reports
``log|det J|``; every flow layer, tabular or image, is one. A
:class:`DensityModel` is what the estimators train and query: everything
public in them derives from its ``log_joint``, ``training_loss`` and
``sample``, and the defaults here (chunk sizes, the parameters that count for
BIC, training stages, selection criterion) are what a model overrides when it
differs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor, nn

LOG_TWO_PI = math.log(2.0 * math.pi)

#: Values (row-states times features) evaluated per scoring chunk, by device type. On a CPU the spline's
#: intermediates (some 23 numbers per value) must stay in the caches. Measured in one process (best of 5,
#: 2 threads), chunks of 2**16 values scored and sampled 2- to 8-D rows at 0.8 to 1.6 times the rows per
#: second of chunks of 2**17 (4-D rows 1.6 times, NVFDensity K = 32 on 8-D rows 1.5 times) and 16- and 32-D
#: rows at 0.9 to 1.0 times; against the former layout of the spline (its parameters last, chunks of 2**17)
#: 0.87 to 1.43 times. A GPU needs far larger chunks to fill its cores. Both also bound the working memory.
CHUNK_VALUES = {"cpu": 1 << 16, "cuda": 1 << 23}


def broadcast_shape(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    """The shape two shapes broadcast to, as ``torch.broadcast_shapes``.

    Written out because ``torch.broadcast_shapes`` costs about 40 microseconds
    a call in eager mode (it runs through symbolic-shape checks), a few times
    per layer and step.
    """
    if len(first) < len(second):
        first, second = second, first
    result = list(first)
    for i, n in enumerate(second, len(first) - len(second)):
        if n != 1 and result[i] != n:
            if result[i] != 1:
                raise ValueError(f"shapes {tuple(first)} and {tuple(second)} do not broadcast")
            result[i] = n
    return tuple(result)


class Transform(nn.Module, ABC):
    """An invertible map ``x -> y`` towards the base space, given an optional context.

    Subclasses implement :meth:`transform`; ``forward`` and ``inverse`` are
    its two directions. The context's leading shape broadcasts against the
    data's wherever the layer allows it (tabular layers: ``(n, 1, d)`` points
    against ``(K, c)`` contexts give ``(n, K, d)``).
    """

    @abstractmethod
    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        """``(y, log|det dy/dx|)`` of the map (``inverse=False``) or of its inverse."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform(x, context, inverse=False)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return self.transform(y, context, inverse=True)[0]


class DensityModel(nn.Module, ABC):
    """A density ``p(x) = sum_k exp(log_joint(x)[:, k])`` over ``n_states`` latent states.

    Rows arrive as ``(n, n_features)`` tensors in the model's (preprocessed)
    space. What a training batch needs beyond its rows (random numbers, a
    per-row cache) comes in as ``inputs`` made by :meth:`training_inputs`
    outside the training step, so the step itself is a pure function of its
    tensors (capturable as one graph).
    """

    #: Columns of ``log_joint``.
    n_states: int = 1
    #: Features of one row: what one row-state costs in a scoring chunk (tabular models read it from their flow).
    n_features: int = 1

    @abstractmethod
    def log_joint(self, x: Tensor) -> Tensor:
        """``(n, n_states)``: ``log pi_k + log p(x | k)``; its logsumexp is the score."""

    @abstractmethod
    def training_loss(self, x: Tensor, inputs: Tensor | None, progress: Tensor) -> Tensor:
        """``(n,)`` per-row objective to minimise; ``progress`` (0-d tensor in [0, 1]) drives schedules."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(x (n, n_features), state)`` drawn from the model."""

    def training_inputs(self, rows: Tensor, generator: torch.Generator) -> Tensor | None:
        """What ``training_loss`` needs besides the batch of training rows ``rows`` (indices), or None."""
        return None

    def begin_training(self, x: Tensor) -> None:
        """Called with all training rows before the first stage (e.g. to build a per-row cache)."""

    def validation_loss(self, x: Tensor) -> Tensor:
        """``(n,)`` criterion for early stopping and model selection: ``-log p(x)``."""
        return -self.log_joint(x).logsumexp(dim=-1)

    def training_passes(self) -> int:
        """Flow passes per row of a training step (what a step costs per row, for budgets)."""
        return 1

    def validation_passes(self) -> int:
        """Flow passes per row of :meth:`validation_loss`."""
        return self.n_states

    def chunk_rows(self, device_type: str, states_per_row: int | None = None) -> int:
        """Rows per chunk when scoring (``n_states`` per row) or sampling (one state per row): :data:`CHUNK_VALUES`."""
        budget = CHUNK_VALUES.get(device_type, CHUNK_VALUES["cuda"]) // self.n_features
        return max(1, budget // (self.n_states if states_per_row is None else states_per_row))

    def density_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of ``p(x)`` itself (BIC counts these; inference aids are excluded)."""
        return self.parameters()

    def decayed_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters weight decay pulls towards zero: all of them, unless a model spares some."""
        return self.parameters()

    def training_stages(self) -> tuple[str, ...]:
        """Names of the training stages, run in order; each selects its own best state."""
        return ("all",)

    def set_training_stage(self, stage: str) -> None:
        """Enter a stage of :meth:`training_stages` (freeze what it does not train)."""

    def end_training(self) -> None:
        """Leave training: unfreeze every parameter."""
        self.requires_grad_(True)

    def initialize(self, x: Tensor, weights: Tensor, generator: torch.Generator) -> None:
        """Data-dependent warm start from the training rows (none by default)."""


def standard_normal_log_prob(z: Tensor, event_dims: int) -> Tensor:
    """``log N(z; 0, I)`` summed over the last ``event_dims`` dimensions."""
    squared = (z * z).sum(dim=tuple(range(-event_dims, 0)))
    n_dims = math.prod(z.shape[-event_dims:])
    return -0.5 * squared - 0.5 * n_dims * LOG_TWO_PI
