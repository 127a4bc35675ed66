"""Plain flows as one-state density models: tabular rows, and flat image rows that train dequantised."""

import math

import torch
from torch.testing import assert_close

from nvf_sklearn._engine.base import CHUNK_VALUES
from nvf_sklearn._engine.flow_density import FlowDensity, ImageFlowDensity
from nvf_sklearn._engine.image_flows import image_chunk_rows

from .conftest import (
    F64,
    PROGRESS,
    assert_uniform_training_inputs,
    generator,
    grid_rows,
    randomise_,
    small_image_flow,
    small_spline_flow,
    tabular_points,
)

SHAPE = (1, 4, 4)


def _image_model(n_levels=17):
    return ImageFlowDensity(randomise_(small_image_flow(SHAPE, logit_alpha=0.05), 0.1), n_levels)


def test_flow_density_is_the_flow_with_one_state():
    model = FlowDensity(randomise_(small_spline_flow(3), 0.25))
    x = tabular_points(6, 3)
    log_joint = model.log_joint(x)
    assert model.n_states == 1 and log_joint.shape == (6, 1)
    assert_close(log_joint[:, 0], model.flow().log_prob(x), atol=0, rtol=0)
    assert model.training_inputs(torch.arange(6), generator()) is None
    assert_close(model.training_loss(x, None, PROGRESS), -log_joint[:, 0], atol=0, rtol=0)
    assert_close(model.validation_loss(x), -log_joint[:, 0], atol=0, rtol=0)
    samples, states = model.sample(5, generator())
    assert samples.shape == (5, 3) and torch.equal(states, torch.zeros(5, dtype=torch.long))
    assert torch.equal(samples, model.sample(5, generator())[0])
    assert model.chunk_rows("cpu") == CHUNK_VALUES["cpu"] // 3 and model.training_stages() == ("all",)


def test_image_flow_density_takes_flat_rows():
    model = _image_model()
    x = torch.rand(4, 16, generator=generator(1), dtype=F64)
    log_joint = model.log_joint(x)
    assert log_joint.shape == (4, 1)
    assert_close(log_joint[:, 0], model.flow().log_prob(x.reshape(4, *SHAPE)), atol=0, rtol=0)
    samples, states = model.sample(3, generator())
    assert samples.shape == (3, 16) and torch.equal(states, torch.zeros(3, dtype=torch.long))
    assert model.chunk_rows("cpu") == image_chunk_rows(SHAPE, "cpu")


def test_image_training_inputs_is_uniform_per_pixel():
    assert_uniform_training_inputs(_image_model(), 16)


def test_image_training_loss_dequantises_grid_rows():
    """``training_loss(p / L, u)`` is ``-log p((p + u) / L)``; zero noise scores the grid points themselves."""
    model = _image_model(n_levels=17)
    x = grid_rows(5, 16, 17)
    noise = model.training_inputs(torch.arange(5), generator())
    expected = -model.log_joint(x + noise / 17)[:, 0]
    assert_close(model.training_loss(x, noise, PROGRESS), expected, atol=1e-12, rtol=0)
    assert_close(model.training_loss(x, torch.zeros_like(x), PROGRESS), -model.log_joint(x)[:, 0], atol=0, rtol=0)
    assert (model.training_loss(x, noise, PROGRESS) - model.training_loss(x, 1 - noise, PROGRESS)).abs().max() > 1e-3
    assert math.isfinite(model.training_loss(x, noise, PROGRESS).sum().item())
