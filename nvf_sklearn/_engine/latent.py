"""The K-state latent model of NVF: p(x) = sum_k pi_k p_flow(x | k).

The state k enters the flow as a one-hot context: every coupling conditioner's
first layer then holds a learned embedding of k (a column of its context
weight), and a :class:`~.flows.ContextAffine` first layer gives each state its
own location and scale. Scoring feeds the K one-hot rows as a ``(K, K)``
context against ``(n, 1, d)`` points, so all states are evaluated in one
broadcast pass, never in a Python loop over k.

Two training objectives:

- ``"elbo"``: the single-sample ELBO of the paper,
  ``E_q[log p(x | k)] - KL(q(k | x) || pi)``, with k drawn from the encoder
  q(k | x) by straight-through Gumbel-softmax (one flow pass per point);
- ``"exact"``: the exact marginal ``logsumexp_k(log pi_k + log p(x | k))``
  (K flow passes per point, in one batched call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .flows import ContextAffine, Flow


def mlp(in_features: int, hidden_sizes: tuple[int, ...], out_features: int) -> nn.Sequential:
    """A ReLU multilayer perceptron."""
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


def gumbel_softmax_straight_through(logits: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
    """Hard one-hot samples of ``softmax(logits)`` with the soft sample's gradient."""
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    soft = torch.softmax((logits + gumbel) / temperature, dim=-1)
    hard = F.one_hot(soft.argmax(dim=-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


class LatentFlowDensity(nn.Module):
    """Mixture of K conditional flows sharing one network; an amortised encoder for the ELBO."""

    def __init__(
        self,
        flow: Flow,
        n_states: int,
        encoder_hidden_sizes: tuple[int, ...] = (256, 256, 256),
        objective: str = "elbo",
        learn_prior: bool = True,
        temperature_start: float = 1.0,
        temperature_end: float = 1.0,
    ) -> None:
        super().__init__()
        self.flow = flow
        self.n_states = n_states
        self.objective = objective
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end
        # The exact objective never consults an encoder: do not build one.
        self.encoder = mlp(flow.n_features, encoder_hidden_sizes, n_states) if objective == "elbo" else None
        prior_logits = torch.zeros(n_states)
        if learn_prior:
            self.prior_logits = nn.Parameter(prior_logits)
        else:
            self.register_buffer("prior_logits", prior_logits)
        self.register_buffer("states", torch.eye(n_states))

    # --------------------------------------------------------------- density
    def log_prior(self) -> Tensor:
        """``log pi``, shape (K,)."""
        return torch.log_softmax(self.prior_logits, dim=-1)

    def log_likelihoods(self, x: Tensor) -> Tensor:
        """``log p(x | k)`` for every state: (n, d) -> (n, K), in one broadcast pass."""
        return self.flow(self.states).log_prob(x.unsqueeze(-2))

    def log_joint(self, x: Tensor) -> Tensor:
        return self.log_prior() + self.log_likelihoods(x)

    def density_parameters(self):
        """Parameters of p(x) itself (the encoder is only an inference aid)."""
        return (p for name, p in self.named_parameters() if not name.startswith("encoder."))

    # -------------------------------------------------------------- training
    def temperature(self, progress: float) -> float:
        """Gumbel-softmax temperature, annealed geometrically from start to end."""
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** progress

    def training_loss(self, x: Tensor, generator: torch.Generator, progress: float) -> Tensor:
        if self.objective == "exact":
            return -self.log_joint(x).logsumexp(dim=-1)
        logits = self.encoder(x)
        log_q = torch.log_softmax(logits, dim=-1)
        state = gumbel_softmax_straight_through(logits, self.temperature(progress), generator)
        log_likelihood = self.flow(state).log_prob(x)
        kl = (log_q.exp() * (log_q - self.log_prior())).sum(dim=-1)
        return kl - log_likelihood

    # -------------------------------------------------------------- sampling
    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        probabilities = self.log_prior().exp()
        k = torch.multinomial(probabilities, n, replacement=True, generator=generator)
        return self.flow(self.states[k]).sample((), generator), k

    # -------------------------------------------------------- initialisation
    @torch.no_grad()
    def initialize_from_assignments(
        self,
        x: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        encoder_steps: int = 300,
        batch_size: int = 256,
    ) -> None:
        """Warm start from hard assignments (e.g. k-means): a diagonal Gaussian mixture.

        Each state's location and scale become its cluster's mean and
        standard deviation, the prior its cluster frequencies (when learned),
        and the encoder (if any) is fitted to predict the labels.
        """
        one_hot = F.one_hot(labels, self.n_states).to(x.dtype)
        counts = one_hot.sum(dim=0)
        safe_counts = counts.clamp_min(1.0).unsqueeze(-1)
        means = one_hot.T @ x / safe_counts
        variances = one_hot.T @ (x * x) / safe_counts - means * means
        # Empty or single-point clusters keep unit scale; others are floored.
        scales = torch.where(counts.unsqueeze(-1) > 1, variances.clamp_min(1e-4).sqrt(), torch.ones_like(means))
        affine = self.flow.layers[0]
        if isinstance(affine, ContextAffine):
            affine.location.weight.copy_(means.T)
            affine.log_scale.weight.copy_(scales.log().T)
        if isinstance(self.prior_logits, nn.Parameter):
            self.prior_logits.copy_(torch.log((counts + 1.0) / (counts.sum() + self.n_states)))
        if self.encoder is not None:
            self._fit_encoder(x, labels, generator, encoder_steps, batch_size)

    @torch.enable_grad()
    def _fit_encoder(
        self, x: Tensor, labels: Tensor, generator: torch.Generator, steps: int, batch_size: int
    ) -> None:
        optimizer = torch.optim.Adam(self.encoder.parameters(), lr=1e-3)
        for _ in range(steps):
            index = torch.randint(x.shape[0], (min(batch_size, x.shape[0]),), generator=generator, device=x.device)
            loss = F.cross_entropy(self.encoder(x[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

