"""Vector quantisation, in float64: distances, straight-through gradients, VQ losses, codebook restarts and start."""

import inspect

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.quantizer import ConvEncoder, VectorQuantizer

from .conftest import F64, generator, randomise_

V, CODE_DIM = 4, 3


def _quantizer(commitment=0.25):
    return randomise_(VectorQuantizer(V, CODE_DIM, commitment).double(), 1.0)


def _encodings(n=2, height=2, width=3, seed=1):
    return torch.randn(n, CODE_DIM, height, width, generator=generator(seed), dtype=F64)


def test_distances_equal_brute_force_in_raster_order():
    quantizer, encodings = _quantizer(), _encodings()
    distances = quantizer.distances(encodings)
    assert distances.shape == (2, 6, V)
    codebook = quantizer.codebook.weight
    for n in range(2):
        for row in range(2):
            for column in range(3):
                for v in range(V):
                    expected = ((encodings[n, :, row, column] - codebook[v]) ** 2).sum()
                    assert_close(distances[n, 3 * row + column, v], expected, atol=1e-12, rtol=0)


def test_embed_puts_codes_on_the_grid_in_raster_order():
    quantizer = _quantizer()
    codes = torch.randint(0, V, (2, 6), generator=generator())
    grid = quantizer.embed(codes, (2, 3))
    assert grid.shape == (2, CODE_DIM, 2, 3)
    assert torch.equal(grid[1, :, 1, 0], quantizer.codebook.weight[codes[1, 3]])
    assert torch.equal(quantizer.flatten_grid(grid), quantizer.codebook.weight[codes])


def test_quantisation_is_nearest_code_with_straight_through_gradient():
    quantizer = _quantizer()
    encodings = _encodings().requires_grad_(True)
    codes, quantized, _ = quantizer(encodings)
    assert torch.equal(codes, quantizer.distances(encodings).argmin(-1))
    assert codes.unique().numel() > 1
    assert_close(quantized, quantizer.embed(codes, (2, 3)), atol=1e-15, rtol=0)
    # The flow's gradient passes to the encoder as if quantisation were the identity, and not to the codebook.
    weights = torch.randn(quantized.shape, generator=generator(2), dtype=F64)
    encodings_grad, codebook_grad = torch.autograd.grad(
        (quantized * weights).sum(), [encodings, quantizer.codebook.weight], allow_unused=True
    )
    assert torch.equal(encodings_grad, weights)
    assert codebook_grad is None


def test_vq_loss_value_and_its_two_gradients():
    """``||sg(e) - c||^2 + beta ||e - sg(c)||^2`` per image: codes move to encodings, encodings to codes."""
    beta = 0.4
    quantizer = _quantizer(commitment=beta)
    encodings = _encodings().requires_grad_(True)
    codes, quantized, vq_loss = quantizer(encodings)
    error = (quantized - encodings).detach()
    assert_close(vq_loss, (1 + beta) * error.pow(2).flatten(1).sum(1), atol=1e-12, rtol=0)
    encodings_grad, codebook_grad = torch.autograd.grad(vq_loss.sum(), [encodings, quantizer.codebook.weight])
    assert_close(encodings_grad, -2 * beta * error, atol=1e-12, rtol=0)
    per_position = quantizer.flatten_grid(error).reshape(-1, CODE_DIM)
    expected = torch.zeros(V, CODE_DIM, dtype=F64).index_add_(0, codes.flatten(), 2 * per_position)
    assert_close(codebook_grad, expected, atol=1e-12, rtol=0)


def _restart_case():
    """Codes 0 and 2 far away and marked dead-to-be; every encoding is nearest to code 1 at the origin."""
    quantizer = VectorQuantizer(3, 2).double()
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[100.0, 100.0], [0.0, 0.0], [50.0, -50.0]]))
    encodings = torch.randn(2, 2, 2, 3, generator=generator(), dtype=F64)
    codes = quantizer.distances(encodings).argmin(-1)
    assert (codes == 1).all()
    return quantizer, encodings, codes


def test_dead_codes_restart_at_the_farthest_encodings_in_order():
    """The i-th dead code lands exactly on the i-th farthest encoding from its nearest code; used codes stay."""
    quantizer, encodings, codes = _restart_case()
    quantizer.usage.copy_(torch.tensor([0.0, 0.5, 0.0]))
    flat = quantizer.flatten_grid(encodings).reshape(-1, 2)
    farthest = flat[(flat * flat).sum(-1).argsort(descending=True)]  # nearest code is the origin
    quantizer.restart_dead_codes(encodings, codes)
    expected = torch.stack([farthest[0], torch.zeros(2, dtype=F64), farthest[1]])
    assert torch.equal(quantizer.codebook.weight, expected)
    assert_close(quantizer.usage, torch.tensor([1 / 3, 0.9 * 0.5 + 0.1, 1 / 3], dtype=F64), atol=1e-15, rtol=0)
    assert "generator" not in inspect.signature(quantizer.restart_dead_codes).parameters


def test_unused_codes_die_after_thirty_four_steps():
    """Usage ``0.9 ** t / V`` falls below ``0.03 / V`` at t = 34; until then the codebook does not move."""
    quantizer, encodings, codes = _restart_case()
    initial = quantizer.codebook.weight.clone()
    for _ in range(33):
        quantizer.restart_dead_codes(encodings, codes)
    assert torch.equal(quantizer.codebook.weight, initial)
    quantizer.restart_dead_codes(encodings, codes)
    assert torch.equal(quantizer.codebook.weight[1], initial[1])
    assert (quantizer.codebook.weight[[0, 2]] - initial[[0, 2]]).abs().min() > 1
    assert quantizer.distances(encodings).argmin(-1).unique().numel() == 3


@pytest.mark.parametrize("n_positions", [12, 2])
def test_initialize_from_encodings_uses_distinct_codes(n_positions):
    """Codes start at (jittered) encodings: distinct positions when there are enough, distinct vectors always."""
    quantizer = VectorQuantizer(5, CODE_DIM).double()
    encodings = _encodings(n=1, height=1, width=n_positions)
    quantizer.initialize_from_encodings(encodings, generator())
    codebook = quantizer.codebook.weight
    pairwise = torch.cdist(codebook, codebook) + torch.eye(5, dtype=F64)
    assert pairwise.min() > 1e-6
    flat = quantizer.flatten_grid(encodings)[0]
    nearest = torch.cdist(codebook, flat).min(dim=1)
    assert nearest.values.max() < 0.1 * flat.std()  # each code sits next to an encoding
    if n_positions >= 5:
        assert nearest.indices.unique().numel() == 5
    before = codebook.clone()
    quantizer.initialize_from_encodings(encodings, generator())
    assert torch.equal(quantizer.codebook.weight, before)


def test_encoder_downsamples_to_the_code_grid():
    encoder = ConvEncoder(2, CODE_DIM, hidden_channels=4, n_downsamples=2).double()
    assert encoder(torch.zeros(3, 2, 8, 12, dtype=F64)).shape == (3, CODE_DIM, 2, 3)
