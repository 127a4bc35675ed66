"""Seeded parameter initialisation through a private generator (no global seeding)."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def initialize_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """(Re)initialise every ``nn.Linear`` and ``nn.Embedding`` in ``module``.

    Linear layers get PyTorch's default (Kaiming-uniform) scheme, drawn from
    ``generator``; a layer flagged ``zero_init = True`` starts at zero, which
    makes its coupling layer the identity. Other parameters keep the values
    their constructors gave them (identity LU factors, zero biases).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if getattr(layer, "zero_init", False):
                layer.weight.zero_()
                if layer.bias is not None:
                    layer.bias.zero_()
                continue
            bound = 1.0 / math.sqrt(layer.in_features)
            _uniform_(layer.weight, bound, generator)
            if layer.bias is not None:
                _uniform_(layer.bias, bound, generator)
        elif isinstance(layer, nn.Embedding):
            layer.weight.copy_(_normal(layer.weight, generator))


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    values = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
    tensor.copy_((2.0 * values - 1.0) * bound)


def _normal(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
