"""A causal transformer prior over code sequences, nanoGPT style.

``log p(z) = sum_t log p(z_t | z_<t)`` over the ``L`` codes of an image in
raster order. The input at position ``t`` is a learned start token for
``t = 0`` and the embedding of ``z_{t-1}`` otherwise, so the logits at position
``t`` see ``z_<t`` only (attention through
``scaled_dot_product_attention(is_causal=True)``). Unlike nanoGPT's inference
shortcut, the logits of every position are computed: a density needs all of
them. The output layer starts at zero, so a fresh prior is uniform,
``log p(z) = -L log V``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class CodePriorConfig:
    vocab_size: int  # V
    n_positions: int  # L
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64


class CausalSelfAttention(nn.Module):
    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(
                f"n_embd={config.n_embd} is not divisible by n_head={config.n_head}; "
                "choose an n_embd that is a multiple of n_head."
            )
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CodePrior(nn.Module):
    """Autoregressive prior ``p(z)`` over ``(n, L)`` integer code sequences."""

    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.n_positions, config.n_embd)
        self.start_token = nn.Embedding(1, config.n_embd)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)
        self.head.zero_init = True  # a fresh prior is uniform

    def next_token_logits(self, prefix: Tensor) -> Tensor:
        """Logits ``(n, t + 1, V)`` of ``z_0 .. z_t`` given a prefix ``(n, t)`` of codes, ``t < L``."""
        n, t = prefix.shape
        start = self.start_token.weight.expand(n, 1, -1)
        x = torch.cat([start, self.token_embedding(prefix)], dim=1)  # (n, t + 1, n_embd)
        x = x + self.position_embedding.weight[: t + 1]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def logits(self, codes: Tensor) -> Tensor:
        """Logits ``(n, L, V)`` at every position of full sequences ``(n, L)``."""
        return self.next_token_logits(codes[:, :-1])

    def token_log_probs(self, codes: Tensor) -> Tensor:
        """``log p(z_t | z_<t)`` for every position: ``(n, L)``."""
        log_probs = torch.log_softmax(self.logits(codes), dim=-1)
        return log_probs.gather(-1, codes.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, codes: Tensor) -> Tensor:
        """``log p(z)``: the sum of the token log-probabilities, ``(n,)``."""
        return self.token_log_probs(codes).sum(dim=-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` sequences ``(n, L)`` one position at a time (L forward passes)."""
        device = self.head.weight.device
        codes = torch.zeros(n, 0, dtype=torch.long, device=device)
        for _ in range(self.config.n_positions):
            probabilities = torch.softmax(self.next_token_logits(codes)[:, -1], dim=-1)
            following = torch.multinomial(probabilities, 1, generator=generator)
            codes = torch.cat([codes, following], dim=1)
        return codes
