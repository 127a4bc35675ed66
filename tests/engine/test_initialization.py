"""Seeded initialisation: reproducible, PyTorch's default bounds, zero-initialised outputs, identity factors kept."""

import math

import torch
from torch import nn

from nvf_sklearn._engine.code_prior import CodePrior, CodePriorConfig
from nvf_sklearn._engine.initialization import initialize_parameters

from .conftest import generator, randomise_, small_image_flow, small_spline_flow


def _model():
    return nn.ModuleDict(
        {
            "flow": small_spline_flow(3, 2, lu_linear=True, state_affine="full"),
            "image": small_image_flow((1, 4, 4), 2),
            "prior": CodePrior(CodePriorConfig(5, 4, n_layer=1, n_head=2, n_embd=64)).double(),
        }
    )


def test_same_generator_same_parameters_and_a_new_seed_changes_them():
    first, second = _model(), _model()  # constructed from the global generator: they differ
    assert not torch.equal(first["image"].layers[0].conditioner.input.weight,
                           second["image"].layers[0].conditioner.input.weight)  # fmt: skip
    initialize_parameters(first, generator(0))
    initialize_parameters(second, generator(0))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    initialize_parameters(second, generator(1))
    assert not torch.equal(first["flow"].layers[2].conditioner.data_input.weight,
                           second["flow"].layers[2].conditioner.data_input.weight)  # fmt: skip


def test_bounds_zero_outputs_and_untouched_factors():
    model = randomise_(_model(), 1.0)
    initialize_parameters(model, generator())
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if getattr(layer, "zero_init", False):
                assert not layer.weight.any() and (layer.bias is None or not layer.bias.any()), name
                continue
            bound = 1.0 / math.sqrt(layer.weight[0].numel())
            assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.5 * bound, name
            if layer.bias is not None:
                assert layer.bias.abs().max() <= bound, name
        elif isinstance(layer, nn.Embedding) and layer.weight.numel() >= 256:
            assert abs(layer.weight.mean().item()) < 0.2 and abs(layer.weight.std().item() - 1) < 0.2, name
    # Parameters outside Linear, Conv2d and Embedding keep what the randomisation gave them.
    lu = model["flow"].layers[1]
    assert lu.lower.abs().sum() > 0 and lu.log_diagonal.abs().sum() > 0
    assert model["flow"].layers[2].conditioner.input_bias.abs().sum() > 0
