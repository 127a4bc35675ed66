"""The causal transformer prior over code sequences, in float64: normalised, uniform at start, causal, sampled right."""

import math

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.code_prior import CodePrior, CodePriorConfig
from nvf_sklearn._engine.initialization import initialize_parameters

from .conftest import F64, all_sequences, generator, randomise_


def _prior(vocab_size, n_positions, n_layer=1, n_head=2, n_embd=8, scale=0.5):
    prior = CodePrior(CodePriorConfig(vocab_size, n_positions, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    return randomise_(prior.double(), scale)


def test_prior_is_normalised_over_all_sequences():
    prior = _prior(3, 4, n_layer=2)
    log_prob = prior.log_prob(all_sequences(3, 4))
    assert_close(log_prob.logsumexp(0), torch.zeros((), dtype=F64), atol=1e-12, rtol=0)
    assert log_prob.max() - log_prob.min() > 1.0  # far from uniform: a real test


def test_log_prob_is_the_sum_of_the_token_log_probs():
    prior = _prior(4, 5)
    codes = torch.randint(0, 4, (6, 5), generator=generator())
    token = prior.token_log_probs(codes)
    assert token.shape == (6, 5) and prior.logits(codes).shape == (6, 5, 4)
    assert_close(prior.log_prob(codes), token.sum(-1), atol=0, rtol=0)
    log_softmax = torch.log_softmax(prior.logits(codes), -1)
    assert_close(token[2, 3], log_softmax[2, 3, codes[2, 3]], atol=0, rtol=0)


def test_fresh_prior_is_uniform():
    prior = CodePrior(CodePriorConfig(vocab_size=5, n_positions=6, n_layer=1, n_head=2, n_embd=8)).double()
    initialize_parameters(prior, generator())
    codes = torch.randint(0, 5, (4, 6), generator=generator(1))
    assert_close(prior.log_prob(codes), torch.full((4,), -6 * math.log(5), dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("t", [0, 3, 7])
def test_prior_is_causal(t):
    """Changing z_t leaves the logits at positions 0..t (which see z_<t only) and the log-probabilities of
    z_0..z_{t-1} unchanged; z_t's own log-probability and every later position's logits change."""
    prior = _prior(6, 8, n_layer=2, n_embd=16)
    codes = torch.randint(0, 6, (3, 8), generator=generator(1))
    changed = codes.clone()
    changed[:, t] = (codes[:, t] + 1) % 6
    logits, logits_changed = prior.logits(codes), prior.logits(changed)
    assert_close(logits[:, : t + 1], logits_changed[:, : t + 1], atol=0, rtol=0)
    token, token_changed = prior.token_log_probs(codes), prior.token_log_probs(changed)
    assert_close(token[:, :t], token_changed[:, :t], atol=0, rtol=0)
    assert (token[:, t] != token_changed[:, t]).all()
    if t + 1 < 8:
        assert (logits[:, t + 1 :] - logits_changed[:, t + 1 :]).abs().amax(dim=(1, 2)).min() > 1e-6


def test_prior_samples_follow_the_prior():
    """Empirical frequencies of 20,000 samples of a 2-position, 3-code prior match p(z)."""
    prior = _prior(3, 2, n_head=1, scale=0.7)
    samples = prior.sample(20000, generator())
    assert samples.shape == (20000, 2) and samples.dtype == torch.long
    every = all_sequences(3, 2)
    expected = prior.log_prob(every).exp()
    observed = torch.stack([(samples == sequence).all(-1).to(F64).mean() for sequence in every])
    assert_close(observed, expected, atol=0.015, rtol=0)
    assert torch.equal(prior.sample(50, generator(3)), prior.sample(50, generator(3)))


def test_indivisible_embedding_names_the_remedy():
    with pytest.raises(ValueError, match="n_head"):
        CodePrior(CodePriorConfig(4, 4, n_head=3, n_embd=8))
