"""Seeded parameter initialisation through a private generator (no global seeding)."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def initialize_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """(Re)initialise every ``nn.Linear``, ``nn.Conv2d`` and ``nn.Embedding`` in ``module``.

    Linear and convolutional layers get PyTorch's default (Kaiming-uniform)
    scheme, uniform in ``+-1/sqrt(fan_in)``, drawn from ``generator``; a layer
    flagged ``zero_init = True`` starts at zero, which makes its coupling layer
    the identity. Embeddings are standard normal. Other parameters keep the
    values their constructors gave them (identity LU factors, zero biases).
    The generator may live on any device: values are drawn there and copied.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if getattr(layer, "zero_init", False):
                layer.weight.zero_()
                if layer.bias is not None:
                    layer.bias.zero_()
                continue
            bound = 1.0 / math.sqrt(layer.weight[0].numel())  # fan-in
            _uniform_(layer.weight, bound, generator)
            if layer.bias is not None:
                _uniform_(layer.bias, bound, generator)
        elif isinstance(layer, nn.Embedding):
            layer.weight.copy_(_draw(torch.randn, layer.weight, generator))


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    tensor.copy_((2.0 * _draw(torch.rand, tensor, generator) - 1.0) * bound)


def _draw(sampler, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Drawn in float64 whatever the model's dtype: a float32 draw consumes the generator differently, so the
    # float32 and float64 fits of one random_state would start from different weights.
    values = sampler(tensor.shape, generator=generator, dtype=torch.float64, device=generator.device)
    return values.to(tensor.device, tensor.dtype)
