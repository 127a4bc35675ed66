"""The engine's Adam and gradient clipping against ``torch.optim`` and ``torch.nn.utils``, to rounding."""

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.optim import Adam, clip_gradient_norm_, flatten

from .conftest import generator

SHAPES = [(3, 4), (5,), (2, 1, 3)]
#: Largest difference after 50 steps on O(1) parameters: about one rounding of the parameters.
TOLERANCE = {torch.float32: 2e-7, torch.float64: 1e-12}


def _parameters(dtype, seed=0):
    draws = generator(seed)
    return [torch.randn(shape, generator=draws, dtype=dtype) for shape in SHAPES]


def _gradients(dtype, n_steps, seed=1):
    """Fixed gradients per step (independent of the parameters, so differences cannot feed back), drifting."""
    draws = generator(seed)
    return [[0.5 + torch.randn(shape, generator=draws, dtype=dtype) for shape in SHAPES] for _ in range(n_steps)]


def _learning_rate(value=1e-2):
    return torch.full((1,), value, dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_torch(dtype, weight_decay):
    """Without weight decay it is ``torch.optim.Adam``; with it, ``torch.optim.AdamW`` (decoupled decay)."""
    ours, theirs = _parameters(dtype), [p.clone().requires_grad_(True) for p in _parameters(dtype)]
    adam = Adam(ours, _learning_rate(), betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay)
    reference = (torch.optim.AdamW if weight_decay else torch.optim.Adam)(
        theirs, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay, foreach=True
    )
    for gradients in _gradients(dtype, 50):
        adam.step(flatten(gradients))
        for parameter, gradient in zip(theirs, gradients):
            parameter.grad = gradient.clone()
        reference.step()
    for mine, expected, start in zip(ours, theirs, _parameters(dtype)):
        assert (mine - start).abs().max() > 0.1  # 50 steps of 1e-2 moved them
        assert_close(mine, expected.detach(), atol=TOLERANCE[dtype], rtol=0)


def test_weight_decay_acts_only_on_the_decayed_parameters():
    """With zero gradients, AdamW's decay alone moves a parameter: by ``1 - lr * weight_decay`` per step."""
    kept, decayed = _parameters(torch.float64)[:2]
    start_kept, start_decayed = kept.clone(), decayed.clone()
    adam = Adam([kept, decayed], _learning_rate(1e-2), weight_decay=0.5, decayed=[False, True])
    for _ in range(3):
        adam.step(flatten([torch.zeros_like(kept), torch.zeros_like(decayed)]))
    assert torch.equal(kept, start_kept)
    assert_close(decayed, start_decayed * (1 - 1e-2 * 0.5) ** 3, atol=1e-15, rtol=0)


def test_learning_rate_tensor_is_read_at_every_step():
    parameters = _parameters(torch.float64)
    learning_rate = _learning_rate()
    adam = Adam(parameters, learning_rate)
    (gradients,) = _gradients(torch.float64, 1)
    learning_rate.fill_(0.0)
    before = [p.clone() for p in parameters]
    adam.step(flatten(gradients))
    assert all(torch.equal(p, b) for p, b in zip(parameters, before))
    learning_rate.fill_(1e-2)
    adam.step(flatten(gradients))
    assert all((p - b).abs().min() > 0 for p, b in zip(parameters, before))


def test_load_state_dict_restores_in_place():
    """The moments and step count come back into the same tensor objects (a captured step keeps reading them)."""
    parameters = _parameters(torch.float64)
    adam = Adam(parameters, _learning_rate())
    steps = _gradients(torch.float64, 6)
    for gradients in steps[:3]:
        adam.step(flatten(gradients))
    state = adam.state_dict()
    snapshot = [p.clone() for p in parameters]
    tensors = [adam.first_moment, adam.second_moment, adam.step_count]
    for gradients in steps[3:]:
        adam.step(flatten(gradients))
    assert not torch.equal(state["step_count"], adam.step_count)  # the state is a copy, not a view
    after = [p.clone() for p in parameters]

    adam.load_state_dict(state)
    assert all(a is b for a, b in zip([adam.first_moment, adam.second_moment, adam.step_count], tensors))
    assert torch.equal(adam.step_count, state["step_count"])
    assert torch.equal(adam.first_moment, state["first_moment"])
    assert torch.equal(adam.second_moment, state["second_moment"])
    for parameter, value in zip(parameters, snapshot):
        parameter.copy_(value)
    for gradients in steps[3:]:
        adam.step(flatten(gradients))
    assert all(torch.equal(p, a) for p, a in zip(parameters, after))


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_gradient_norm_matches_torch(max_norm):
    """Scaled down above ``max_norm``, untouched below it; the returned norm is the norm before clipping."""
    (gradients,) = _gradients(torch.float64, 1)
    parameters = [torch.zeros_like(g, requires_grad=True) for g in gradients]
    for parameter, gradient in zip(parameters, gradients):
        parameter.grad = gradient.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    gradient = flatten(gradients)
    norm = clip_gradient_norm_(gradient, max_norm)
    assert_close(norm, expected_norm, atol=1e-14, rtol=0)
    assert_close(gradient, flatten([p.grad for p in parameters]), atol=1e-15, rtol=0)
    clipped = torch.linalg.vector_norm(gradient)
    assert clipped.item() == pytest.approx(min(max_norm, norm.item()), rel=1e-5)
