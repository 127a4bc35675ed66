"""The sequential latent model, in float64: exact enumeration, the monotone bound, training, stages, sampling."""

import io
import itertools

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.image_flows import ImageFlow, image_chunk_rows
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.sequence import SequenceLatentFlowDensity, sequence_latent_flow, top_sequences

from .conftest import (
    F64,
    PROGRESS,
    all_sequences,
    assert_every_parameter_has_a_gradient,
    assert_uniform_training_inputs,
    generator,
    grid_rows,
    tiny_sequence_model,
)

V, GRID = 3, (2, 2)
L = GRID[0] * GRID[1]
SHAPE = (1, 4, 4)
N_LEVELS = 256


def _model(seed=0, top_m=5):
    """A tiny model (V = 3 codes, L = 4 positions: 81 sequences) far from its initial state."""
    return tiny_sequence_model(seed, n_codes=V, top_m=top_m, shape=SHAPE, n_levels=N_LEVELS)


def _images(n, seed=1):
    return torch.rand(n, *SHAPE, generator=generator(seed), dtype=F64)


def _exact_log_joints(model, image):
    """``log p(z) + log p(x | z)`` of one image ``(1, C, H, W)`` for every one of the V ** L sequences."""
    everything = all_sequences(V, L)
    images = image.expand(len(everything), -1, -1, -1)
    return model.prior.log_prob(everything) + model.flow(model.context(everything)).log_prob(images)


# ----------------------------------------------------------------- the bound
def test_bound_under_full_enumeration_is_the_exact_sum():
    model, x = _model(), _images(3)
    expected = torch.stack([_exact_log_joints(model, x[i : i + 1]).logsumexp(0) for i in range(3)])
    exact = model.log_prob_bound(x, top_m=V**L)
    assert_close(exact, expected, atol=1e-10, rtol=0)
    # A top_m beyond V ** L changes nothing.
    assert_close(model.log_prob_bound(x, top_m=10**6), exact, atol=1e-12, rtol=0)


def test_bound_never_decreases_with_m_and_stays_below_the_exact_value():
    model, x = _model(), _images(4)
    ms = list(range(1, 13)) + list(range(15, V**L, 6)) + [V**L]
    bounds = torch.stack([model.log_prob_bound(x, top_m=m) for m in ms], dim=1)
    steps = bounds.diff(dim=1)
    assert (steps >= -1e-12).all(), steps.min()
    assert (bounds[:, -1:] - bounds >= -1e-12).all()
    assert (bounds[:, -1] - bounds[:, 0] > 1e-6).all()  # the bound actually tightens


def test_candidates_are_distinct_nested_and_start_at_the_nearest_codes():
    model, x = _model(), _images(5)
    full = model.candidate_codes(x, V**L)
    assert full.shape == (5, V**L, L)
    for row in full:
        assert len({tuple(s.tolist()) for s in row}) == V**L
    for m in (1, 2, 7, 30):
        assert torch.equal(model.candidate_codes(x, m), full[:, :m])
    assert torch.equal(full[:, 0], model.encode(x)[0])


def test_top_sequences_is_the_exact_top_m_and_nested_under_ties():
    scores = torch.randn(2, 3, 4, generator=generator(), dtype=F64)
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))
    totals = scores[:, torch.arange(3), every].sum(-1)  # (2, 64)
    best = top_sequences(scores, 10)
    for row in range(2):
        chosen = scores[row, torch.arange(3), best[row]].sum(-1)
        assert_close(chosen, totals[row].sort(descending=True).values[:10])
    # All scores tied: every prefix of the enumeration is still nested.
    tied = torch.zeros(1, 3, 4)
    full = top_sequences(tied, 64)
    for m in range(1, 65):
        assert torch.equal(top_sequences(tied, m), full[:, :m])


def test_most_likely_codes_is_the_exact_map_under_enumeration():
    model, x = _model(), _images(3)
    everything = all_sequences(V, L)
    for i in range(3):
        best = everything[_exact_log_joints(model, x[i : i + 1]).argmax()]
        assert torch.equal(model.most_likely_codes(x[i : i + 1], top_m=V**L)[0], best)


def test_log_joint_protocol_shapes_and_batch_independence():
    model, x = _model(top_m=6), _images(5)
    assert model.n_states == 6
    joint = model.log_joint(x.flatten(1))
    assert joint.shape == (5, 6)
    assert_close(joint, model.log_joint(x), atol=0, rtol=0)
    assert_close(model.log_joint(x[1:3]), joint[1:3], atol=1e-12, rtol=0)
    assert_close(joint.logsumexp(-1), model.log_prob_bound(x), atol=1e-12, rtol=0)
    assert _model(top_m=500).n_states == V**L
    assert model.chunk_rows("cpu") == image_chunk_rows(SHAPE, "cpu") // 6
    assert model.chunk_rows("cpu", states_per_row=1) == image_chunk_rows(SHAPE, "cpu")


def test_density_parameters_exclude_the_encoder():
    model = _model()
    density = {id(parameter) for parameter in model.density_parameters()}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in density) != name.startswith("encoder."), name


# -------------------------------------------------------------- training
def test_training_inputs_is_one_uniform_per_pixel():
    assert_uniform_training_inputs(_model(), 16)


def test_training_loss_is_minus_log_joint_of_nearest_codes_plus_vq():
    """Zero noise makes the dequantisation ``x + noise / n_levels`` a no-op."""
    model, x = _model(), _images(4)
    codes, _, vq_loss = model.quantizer(model.encoder(x))
    assert torch.equal(codes, model.encode(x)[0])
    top_1 = model.log_joint_of(x, codes.unsqueeze(1))[:, 0]
    loss = model.training_loss(x.flatten(1), torch.zeros(4, 16, dtype=F64), PROGRESS)
    assert_close(loss, -top_1 + vq_loss, atol=1e-10, rtol=0)
    assert_close(top_1, model.log_prob_bound(x, top_m=1), atol=1e-10, rtol=0)
    assert_close(model.validation_loss(x.flatten(1)), -top_1, atol=1e-10, rtol=0)


def test_training_loss_dequantises_grid_rows():
    model, x = _model(), grid_rows(4, 16, N_LEVELS)
    noise = model.training_inputs(torch.arange(4), generator())
    dequantised = model.training_loss(x + noise / N_LEVELS, torch.zeros_like(noise), PROGRESS)
    assert_close(model.training_loss(x, noise, PROGRESS), dequantised, atol=1e-12, rtol=0)


def test_training_loss_restarts_dead_codes():
    """A code no image uses, with no usage left, moves onto the batch's worst-quantised encoding."""
    model, x = _model(), _images(8)
    with torch.no_grad():
        model.quantizer.codebook.weight[V - 1] = 1e3
    model.quantizer.usage[V - 1] = 0.0
    encodings = model.quantizer.flatten_grid(model.encoder(x)).reshape(-1, 2)
    worst = encodings[model.encode(x)[1].min(-1).values.flatten().argmax()]
    before = model.quantizer.codebook.weight.clone()
    model.training_loss(x.flatten(1), torch.zeros(8, 16, dtype=F64), PROGRESS)
    assert torch.equal(model.quantizer.codebook.weight[V - 1], worst)
    assert torch.equal(model.quantizer.codebook.weight[: V - 1], before[: V - 1])


def test_stages_freeze_the_right_parameters():
    model, x = _model(), _images(6)
    model.train()
    assert model.training_stages() == ("joint", "prior")
    model.set_training_stage("joint")
    model.training_loss(x.flatten(1), torch.zeros(6, 16, dtype=F64), PROGRESS).sum().backward()
    assert_every_parameter_has_a_gradient(model)
    model.zero_grad(set_to_none=True)
    model.set_training_stage("prior")
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == name.startswith("prior."), name
    loss = model.training_loss(x.flatten(1), torch.zeros(6, 16, dtype=F64), PROGRESS)
    assert_close(loss, -model.prior.log_prob(model.encode(x)[0]), atol=1e-12, rtol=0)
    loss.sum().backward()
    for name, parameter in model.named_parameters():
        assert (parameter.grad is not None) == name.startswith("prior."), name
    model.end_training()
    assert model.stage == "joint" and all(parameter.requires_grad for parameter in model.parameters())
    with pytest.raises(ValueError, match="stage"):
        model.set_training_stage("flow")


def test_initialize_uses_every_code():
    model, x = _model(), grid_rows(32, 16, N_LEVELS)
    before = model.quantizer.codebook.weight.clone()
    model.initialize(x, torch.ones(32, dtype=F64), generator())
    codebook = model.quantizer.codebook.weight.clone()
    assert (codebook - before).abs().min() > 0
    assert model.encode(x)[0].unique().numel() == V
    model.initialize(x, torch.ones(32, dtype=F64), generator())
    assert torch.equal(model.quantizer.codebook.weight, codebook)


# -------------------------------------------------------------- sampling
def test_sample_shapes_and_reproducibility():
    model = _model()
    x, codes = model.sample(7, generator(3))
    again, codes_again = model.sample(7, generator(3))
    assert x.shape == (7, 16) and codes.shape == (7, L)
    assert torch.equal(x, again) and torch.equal(codes, codes_again)
    assert codes.min() >= 0 and codes.max() < V
    margin = 0.05 / 0.9  # the logit pre-transform's support
    assert x.min() >= -margin and x.max() <= 1 + margin


# ----------------------------------------------------------- construction
def test_indivisible_grid_names_the_remedy():
    with pytest.raises(ValueError, match="n_downsamples"):
        sequence_latent_flow(ImageFlow((1, 6, 6), context_channels=2, n_scales=0), 4, n_downsamples=2)


def test_model_is_a_sequence_latent_flow_density():
    model = _model()
    assert isinstance(model, SequenceLatentFlowDensity)
    assert model.grid == GRID and model.quantizer.code_dim == model.flow.context_channels == 2


def test_mnist_shape_keeps_its_dimensionality():
    """1x28x28: two squeezes give a 16x7x7 base, a 7x7 code grid (L = 49); no upsampling anywhere."""
    flow = ImageFlow((1, 28, 28), context_channels=2, n_scales=2, n_layers_per_scale=1, hidden_channels=4)
    model = sequence_latent_flow(
        flow, 8, n_downsamples=2, encoder_channels=4, prior_layers=1, prior_heads=1, prior_embd=8, top_m=2
    ).eval()
    initialize_parameters(model, generator())
    assert model.grid == (7, 7) and model.flow.base_shape == (16, 7, 7)
    x = torch.rand(2, 784, generator=generator(1))
    with torch.no_grad():
        assert model.log_joint(x).shape == (2, 2)
        assert torch.isfinite(model.log_prob_bound(x)).all()
        samples, codes = model.sample(2, generator(2))
    assert samples.shape == (2, 784) and codes.shape == (2, 49)


def test_save_and_load_round_trip():
    """The estimators pickle ``module_`` with torch.save; the loaded model scores identically."""
    model, x = _model(), _images(3)
    model.set_training_stage("prior")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert loaded.stage == "prior"
    assert_close(loaded.log_joint(x), model.log_joint(x), atol=0, rtol=0)
    other = _model(seed=1)
    other.load_state_dict(model.state_dict())
    assert_close(other.log_joint(x), model.log_joint(x), atol=0, rtol=0)
