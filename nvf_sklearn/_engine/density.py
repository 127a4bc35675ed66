"""The model protocol shared by every density the estimators train, and the K = 1 case.

A *density model* is an ``nn.Module`` with ``n_states`` latent states and

- ``log_joint(x) -> (n, K)``: ``log pi_k + log p(x | k)``, exact;
- ``training_loss(x, generator, progress) -> (n,)``: the per-row objective to
  minimise (``progress`` in ``[0, 1]`` drives schedules such as annealing);
- ``sample(n, generator) -> (x, k)``: draws and their latent states.

Everything public in the estimators derives from these three methods.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .flows import Flow

#: Rows times latent states evaluated per chunk when scoring. Past this size the
#: spline intermediates leave the CPU caches and throughput per row-state falls
#: (measured: about 2x slower at 4x this budget, K = 32); it also bounds memory.
SCORE_CHUNK_ELEMENTS = 1 << 16


def score_chunk_rows(module: nn.Module, states_per_row: int | None = None) -> int:
    """Rows per chunk when ``module`` evaluates ``states_per_row`` states of each row.

    The budget is ``SCORE_CHUNK_ELEMENTS`` row-states, unless the model sets a
    smaller ``row_state_budget`` of its own (image models, whose rows cost a
    whole image each). ``states_per_row`` defaults to ``module.n_states``
    (scoring); sampling draws one state per row.
    """
    budget = getattr(module, "row_state_budget", SCORE_CHUNK_ELEMENTS)
    return max(1, budget // (module.n_states if states_per_row is None else states_per_row))


class FlowDensity(nn.Module):
    """A plain normalizing flow seen as a one-state latent model."""

    n_states = 1

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    def log_joint(self, x: Tensor) -> Tensor:
        return self.flow().log_prob(x).unsqueeze(-1)

    def training_loss(self, x: Tensor, generator: torch.Generator, progress: float) -> Tensor:
        return -self.flow().log_prob(x)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.flow().sample((n,), generator)
        return x, torch.zeros(n, dtype=torch.long, device=x.device)
