"""Helpers shared by the engine's tests: small float64 models, randomised away from the identity."""

import itertools

import torch

from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.image_flows import ImageFlow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.sequence import sequence_latent_flow

F64 = torch.float64
#: Training progress handed to ``training_loss`` (drives schedules only).
PROGRESS = torch.tensor(0.5, dtype=F64)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def randomise_(module: torch.nn.Module, scale: float, seed: int = 0, *, add: bool = False) -> torch.nn.Module:
    """Set (or, with ``add``, shift) every parameter by ``scale`` standard normals: far from a fresh model."""
    draws = generator(seed)
    for parameter in module.parameters():
        noise = scale * torch.randn(parameter.shape, generator=draws, dtype=parameter.dtype)
        parameter.add_(noise) if add else parameter.copy_(noise)
    return module


def small_spline_flow(n_features, context_size=0, lu_linear=False, state_affine=None, n_layers=3, state_splines=False):
    """A float64 tabular flow small enough for brute-force Jacobians."""
    return spline_flow(
        n_features,
        context_size=context_size,
        n_layers=n_layers,
        hidden_size=16,
        n_bins=6,
        tail_bound=3.0,
        lu_linear=lu_linear,
        state_affine=state_affine,
        state_splines=state_splines,
    ).double()


def small_image_flow(image_shape=(1, 4, 4), context_channels=0, n_scales=1, logit_alpha=None, n_layers_per_scale=4):
    """A float64 image flow small enough for brute-force Jacobians."""
    return ImageFlow(
        image_shape,
        context_channels=context_channels,
        n_scales=n_scales,
        n_layers_per_scale=n_layers_per_scale,
        hidden_channels=4,
        n_bins=4,
        tail_bound=3.0,
        logit_alpha=logit_alpha,
    ).double()


def tabular_points(n, n_features, seed=1):
    """Points spread over a spline's interval ``[-3, 3]``; the first four lie in its identity tails."""
    x = 2.0 * torch.randn(n, n_features, generator=generator(seed), dtype=F64)
    x[:4] = x[:4].sign() * (3.5 + x[:4].abs())
    return x


def grid_rows(n, n_dims, n_levels, seed=1):
    """Flat rows of grid points ``p / n_levels``, as the image models train on."""
    return torch.randint(0, n_levels, (n, n_dims), generator=generator(seed)).to(F64) / n_levels


def all_sequences(n_codes, length):
    """Every code sequence ``(n_codes ** length, length)`` in lexicographic order."""
    return torch.tensor(list(itertools.product(range(n_codes), repeat=length)), dtype=torch.long)


def assert_uniform_training_inputs(model, n_columns, n=2000):
    """``model.training_inputs``: ``(n, n_columns)`` float64 draws of U[0, 1), reproducible from the generator."""
    noise = model.training_inputs(torch.arange(n), generator())
    assert noise.shape == (n, n_columns) and noise.dtype == F64
    assert noise.min() >= 0 and noise.max() < 1 and abs(noise.mean().item() - 0.5) < 0.02
    assert torch.equal(noise, model.training_inputs(torch.arange(n), generator()))


def assert_every_parameter_has_a_gradient(module):
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def jacobian_log_abs_det(function, x):
    """``log|det J|`` of ``function`` at ``x``, by brute force: autograd's full Jacobian and slogdet."""
    jacobian = torch.autograd.functional.jacobian(function, x, vectorize=True)
    return torch.linalg.slogdet(jacobian.reshape(x.numel(), x.numel())).logabsdet


def tiny_sequence_model(seed=0, *, n_codes=3, top_m=5, shape=(1, 4, 4), n_levels=256):
    """A float64 code-sequence model (a 2 x 2 code grid) far from its initial state, in eval mode."""
    flow = small_image_flow(shape, context_channels=2, n_scales=1, logit_alpha=0.05, n_layers_per_scale=2)
    model = sequence_latent_flow(
        flow, n_codes, n_downsamples=1, encoder_channels=4, prior_layers=1, prior_heads=2, prior_embd=8, top_m=top_m,
        n_levels=n_levels,
    ).double()  # fmt: skip
    initialize_parameters(model, generator(seed))
    # Move the zero-initialised outputs away from zero so that every part matters.
    return randomise_(model, 0.1, seed, add=True).eval()
