"""The sequential latent model, in float64: exact enumeration, monotone bound, causal prior, VQ."""

import itertools
import math

import pytest
import torch

from nvf_sklearn._engine.code_prior import CodePrior, CodePriorConfig
from nvf_sklearn._engine.sequence import SequenceLatentFlowDensity, sequence_latent_flow, top_sequences

V, GRID = 3, (2, 2)
L = GRID[0] * GRID[1]
SHAPE = (1, 4, 4)


def _model(seed=0, top_m=5):
    """A tiny model (V = 3 codes, L = 4 positions: 81 sequences) far from its initial state."""
    model = sequence_latent_flow(
        SHAPE,
        V,
        n_downsamples=1,
        code_dim=2,
        encoder_channels=4,
        n_layers_per_scale=2,
        hidden_channels=4,
        n_bins=4,
        tail_bound=3.0,
        logit_alpha=0.05,
        prior_layers=1,
        prior_heads=2,
        prior_embd=8,
        top_m=top_m,
    ).double()
    generator = torch.Generator().manual_seed(seed)
    model.reset_parameters(generator)
    with torch.no_grad():
        # Move the zero-initialised outputs away from zero so that every part matters.
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model.eval()


def _images(n, seed=1):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _all_sequences():
    return torch.tensor(list(itertools.product(range(V), repeat=L)), dtype=torch.long)


# ----------------------------------------------------------------- the bound
def test_bound_under_full_enumeration_is_the_exact_sum():
    model, x = _model(), _images(3)
    everything = _all_sequences()  # (81, L)
    expected = []
    for i in range(x.shape[0]):
        image = x[i : i + 1].expand(len(everything), -1, -1, -1)
        joint = model.prior.log_prob(everything) + model.flow.log_prob(image, model.context(everything))
        expected.append(joint.logsumexp(0))
    exact = model.log_prob_bound(x, top_m=V**L)
    torch.testing.assert_close(exact, torch.stack(expected), atol=1e-10, rtol=0)
    # A top_m beyond V ** L changes nothing.
    torch.testing.assert_close(model.log_prob_bound(x, top_m=10**6), exact, atol=1e-12, rtol=0)


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
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))
    totals = scores[:, torch.arange(3), every].sum(-1)  # (2, 64)
    best = top_sequences(scores, 10)
    for row in range(2):
        chosen = scores[row, torch.arange(3), best[row]].sum(-1)
        torch.testing.assert_close(chosen, totals[row].sort(descending=True).values[:10])
    # All scores tied: every prefix of the enumeration is still nested.
    tied = torch.zeros(1, 3, 4)
    full = top_sequences(tied, 64)
    for m in range(1, 65):
        assert torch.equal(top_sequences(tied, m), full[:, :m])


def test_most_likely_codes_is_the_exact_map_under_enumeration():
    model, x = _model(), _images(3)
    everything = _all_sequences()
    for i in range(x.shape[0]):
        image = x[i : i + 1].expand(len(everything), -1, -1, -1)
        joint = model.prior.log_prob(everything) + model.flow.log_prob(image, model.context(everything))
        assert torch.equal(model.most_likely_codes(x[i : i + 1], top_m=V**L)[0], everything[joint.argmax()])


def test_log_joint_protocol_shapes_and_batch_independence():
    model, x = _model(top_m=6), _images(5)
    assert model.n_states == 6
    joint = model.log_joint(x.flatten(1))
    assert joint.shape == (5, 6)
    torch.testing.assert_close(joint, model.log_joint(x), atol=0, rtol=0)
    torch.testing.assert_close(model.log_joint(x[1:3]), joint[1:3], atol=1e-12, rtol=0)
    torch.testing.assert_close(joint.logsumexp(-1), model.log_prob_bound(x), atol=1e-12, rtol=0)
    assert _model(top_m=500).n_states == V**L


# ----------------------------------------------------------------- the prior
def test_prior_is_normalised_over_all_sequences():
    model = _model()
    total = model.prior.log_prob(_all_sequences()).logsumexp(0)
    torch.testing.assert_close(total, torch.zeros((), dtype=torch.float64), atol=1e-12, rtol=0)


def test_fresh_prior_is_uniform():
    prior = CodePrior(CodePriorConfig(vocab_size=5, n_positions=6, n_layer=1, n_head=2, n_embd=8)).double()
    from nvf_sklearn._engine.initialization import initialize_parameters

    initialize_parameters(prior, torch.Generator().manual_seed(0))
    codes = torch.randint(0, 5, (4, 6), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(prior.log_prob(codes), torch.full((4,), -6 * math.log(5), dtype=torch.float64))


@pytest.mark.parametrize("t", [0, 3, 7])
def test_prior_is_causal(t):
    """Changing z_t leaves the logits at positions 0..t (which see z_<t only) unchanged, and the
    log-probabilities of z_0..z_{t-1}; later positions do change."""
    config = CodePriorConfig(vocab_size=6, n_positions=8, n_layer=2, n_head=2, n_embd=16)
    prior = CodePrior(config).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    codes = torch.randint(0, 6, (3, 8), generator=generator)
    changed = codes.clone()
    changed[:, t] = (codes[:, t] + 1) % 6
    logits, logits_changed = prior.logits(codes), prior.logits(changed)
    torch.testing.assert_close(logits[:, : t + 1], logits_changed[:, : t + 1], atol=0, rtol=0)
    token, token_changed = prior.token_log_probs(codes), prior.token_log_probs(changed)
    torch.testing.assert_close(token[:, :t], token_changed[:, :t], atol=0, rtol=0)
    assert (token[:, t] != token_changed[:, t]).all()
    if t + 1 < 8:
        assert (logits[:, t + 1 :] - logits_changed[:, t + 1 :]).abs().amax(dim=(1, 2)).min() > 1e-6


def test_prior_samples_follow_the_prior():
    """Empirical frequencies of 20,000 samples of a 2-position, 3-code prior match p(z)."""
    prior = CodePrior(CodePriorConfig(vocab_size=3, n_positions=2, n_layer=1, n_head=1, n_embd=8)).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.copy_(0.7 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    samples = prior.sample(20000, generator)
    every = torch.tensor(list(itertools.product(range(3), repeat=2)))
    expected = prior.log_prob(every).exp()
    observed = torch.stack([(samples == s).all(-1).double().mean() for s in every])
    torch.testing.assert_close(observed, expected, atol=0.015, rtol=0)


# -------------------------------------------------------------- training
def test_training_loss_is_minus_log_joint_of_nearest_codes_plus_vq():
    model, x = _model(), _images(4)
    codes, quantized, vq_loss = model.quantizer(model.encoder(x))
    assert torch.equal(codes, model.encode(x)[0])
    loss = model.training_loss(x.flatten(1), torch.Generator().manual_seed(0), 0.5)
    top_1 = model.log_joint_of(x, codes.unsqueeze(1))[:, 0]
    torch.testing.assert_close(loss, -top_1 + vq_loss, atol=1e-10, rtol=0)
    torch.testing.assert_close(top_1, model.log_prob_bound(x, top_m=1), atol=1e-10, rtol=0)


def test_gradients_reach_every_part_and_the_prior_stage_freezes_the_rest():
    model, x = _model(), _images(6)
    model.train()
    model.training_loss(x, torch.Generator(), 0.0).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    model.zero_grad(set_to_none=True)
    model.set_training_stage("prior")
    model.training_loss(x, torch.Generator(), 0.0).sum().backward()
    for name, parameter in model.named_parameters():
        assert (parameter.grad is not None) == name.startswith("prior."), name
    with pytest.raises(ValueError, match="stage"):
        model.set_training_stage("flow")


def test_codebook_initialisation_uses_every_code():
    model, x = _model(), _images(32)
    model.initialize_codebook(x, torch.Generator().manual_seed(0))
    used = model.encode(x)[0].unique()
    assert len(used) == V


def test_sample_shapes_and_reproducibility():
    model = _model()
    x, codes = model.sample(7, torch.Generator().manual_seed(3))
    again, codes_again = model.sample(7, torch.Generator().manual_seed(3))
    assert x.shape == (7, 16) and codes.shape == (7, L)
    assert torch.equal(x, again) and torch.equal(codes, codes_again)
    assert codes.min() >= 0 and codes.max() < V
    # The flow's inverse inverts its forward on the sampled codes.
    torch.testing.assert_close(
        model.flow.inverse(model.flow.transform(x.reshape(7, *SHAPE), model.context(codes))[0], model.context(codes)),
        x.reshape(7, *SHAPE),
        atol=1e-9,
        rtol=0,
    )


def test_indivisible_grid_names_the_remedy():
    with pytest.raises(ValueError, match="n_downsamples"):
        sequence_latent_flow((1, 6, 6), 4, n_downsamples=2, n_scales=0)


def test_model_is_a_sequence_latent_flow_density():
    assert isinstance(_model(), SequenceLatentFlowDensity)


def test_mnist_shape_keeps_its_dimensionality():
    """1x28x28: two squeezes give a 16x7x7 base, a 7x7 code grid (L = 49); no upsampling anywhere."""
    model = sequence_latent_flow(
        (1, 28, 28), 8, n_downsamples=2, code_dim=2, encoder_channels=4, n_scales=2, n_layers_per_scale=1,
        hidden_channels=4, prior_layers=1, prior_heads=1, prior_embd=8, top_m=2,
    ).eval()
    model.reset_parameters(torch.Generator().manual_seed(0))
    assert model.grid == (7, 7) and model.flow.output_shape == (16, 7, 7)
    x = torch.rand(2, 784, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert model.log_joint(x).shape == (2, 2)
        assert torch.isfinite(model.log_prob_bound(x)).all()
        samples, codes = model.sample(2, torch.Generator().manual_seed(2))
    assert samples.shape == (2, 784) and codes.shape == (2, 49)


def test_save_and_load_round_trip():
    """The estimators pickle ``module_`` with torch.save; the loaded model scores identically."""
    import io

    model, x = _model(), _images(3)
    model.set_training_stage("prior")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert loaded.stage == "prior"
    torch.testing.assert_close(loaded.log_joint(x), model.log_joint(x), atol=0, rtol=0)


def test_dead_codes_restart_at_encodings_and_used_codes_stay():
    from nvf_sklearn._engine.quantizer import VectorQuantizer

    quantizer = VectorQuantizer(n_codes=3, code_dim=2).double()
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]))
    generator = torch.Generator().manual_seed(0)
    encodings = 0.01 * torch.randn(8, 2, 2, 2, generator=generator, dtype=torch.float64)  # all near code 0
    for _ in range(40):
        codes = quantizer.distances(encodings).argmin(-1)
        quantizer.restart_dead_codes(encodings, codes, generator)
    flat = quantizer.flatten_grid(encodings).reshape(-1, 2)
    codebook = quantizer.codebook.weight
    torch.testing.assert_close(codebook[0], torch.zeros(2, dtype=torch.float64))  # in use: untouched
    for restarted in codebook[1:]:
        assert (flat - restarted).norm(dim=-1).min() < 1e-12  # now sits on an encoding of the batch
    assert quantizer.distances(encodings).argmin(-1).unique().numel() > 1
