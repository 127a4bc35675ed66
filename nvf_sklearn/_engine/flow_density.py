"""Plain flows as density models: the one-state case, for tables and for images."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import DensityModel
from .dequantization import dequantize
from .flows import Flow
from .image_flows import ImageFlow, image_chunk_rows


def pixel_noise(flow: ImageFlow, n: int, generator: torch.Generator) -> Tensor:
    """``(n, C * H * W)`` draws of ``U[0, 1)`` in the flow's dtype and device: dequantisation noise."""
    reference = flow.reference
    shape = (n, math.prod(flow.event_shape))
    return torch.rand(shape, generator=generator, dtype=reference.dtype, device=reference.device)


class FlowDensity(DensityModel):
    """A tabular normalizing flow seen as a one-state latent model."""

    n_states = 1

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    @property
    def n_features(self) -> int:
        return self.flow.n_features

    def log_joint(self, x: Tensor) -> Tensor:
        return self.flow().log_prob(x).unsqueeze(-1)

    def training_loss(self, x: Tensor, inputs: Tensor | None, progress: Tensor) -> Tensor:
        return -self.flow().log_prob(x)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.flow().sample((n,), generator)
        return x, torch.zeros(n, dtype=torch.long, device=x.device)


class ImageFlowDensity(DensityModel):
    """An unconditional :class:`~.image_flows.ImageFlow` over flat rows ``(n, C * H * W)``.

    Training rows are the grid points ``p / n_levels`` of integer pixel levels
    ``p``; ``training_loss`` dequantises them with the fresh uniform noise of
    :meth:`training_inputs` on every call. Validation and scoring rows arrive
    already dequantised.
    """

    n_states = 1

    def __init__(self, flow: ImageFlow, n_levels: int) -> None:
        super().__init__()
        self.flow = flow
        self.n_levels = n_levels

    def _images(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.flow.event_shape)

    def log_joint(self, x: Tensor) -> Tensor:
        return self.flow().log_prob(self._images(x)).unsqueeze(-1)

    def training_inputs(self, rows: Tensor, generator: torch.Generator) -> Tensor:
        """The dequantisation noise: one ``U[0, 1)`` draw per pixel."""
        return pixel_noise(self.flow, rows.shape[0], generator)

    def training_loss(self, x: Tensor, inputs: Tensor | None, progress: Tensor) -> Tensor:
        return -self.flow().log_prob(self._images(dequantize(x, inputs, self.n_levels)))

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.flow().sample((n,), generator).flatten(1)
        return x, torch.zeros(n, dtype=torch.long, device=x.device)

    def chunk_rows(self, device_type: str, states_per_row: int | None = None) -> int:
        return image_chunk_rows(self.flow.event_shape, device_type)
