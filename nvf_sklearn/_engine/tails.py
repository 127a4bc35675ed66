"""A heavy-tailed base for tabular flows: independent Student-t features, degrees of freedom per state.

Rational-quadratic splines are the identity outside their interval, so a flow
on a standard-normal base has Gaussian tails whatever it learns: a cluster
with power-law tails is fitted with too small a spread in its core or too
little mass in its tails, and a single extreme row costs ``z**2 / 2`` nats and
dominates the gradient. A Student-t base with learned degrees of freedom
``nu`` per feature (and per state, through the one-hot context) puts the tail
decay in the model (Laszkiewicz et al., 2022, marginal tail-adaptive flows;
Jaini et al., 2020): ``nu`` large is a Gaussian, ``nu`` near 1 a Cauchy, and
an extreme row costs ``(nu + 1) log|z|`` with a bounded gradient.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: ``nu`` lives in ``(MIN_DOF, MAX_DOF)``, a sigmoid of the raw parameter on a log scale.
MIN_DOF, MAX_DOF = 1.0, 1000.0
#: ``nu`` at initialisation: within 0.003 nats per feature of a standard normal (KL), tails already t-shaped.
INITIAL_DOF = 30.0
_LOG_SPAN = math.log(MAX_DOF) - math.log(MIN_DOF)


def raw_dof(degrees_of_freedom: Tensor) -> Tensor:
    """The raw parameter that gives ``nu``: the inverse of :meth:`StudentTBase.degrees_of_freedom`'s map."""
    fraction = ((degrees_of_freedom.log() - math.log(MIN_DOF)) / _LOG_SPAN).clamp(1e-4, 1.0 - 1e-4)
    return torch.log(fraction / (1.0 - fraction))


class StudentTBase(nn.Module):
    """Independent standard Student-t features with ``nu`` linear (through a sigmoid) in the context.

    ``log nu = log MIN_DOF + (log MAX_DOF - log MIN_DOF) * sigmoid(b + W c)``
    for a bias ``b`` per feature and a weight ``W`` (zero at the start), so
    with a one-hot context every state has its own ``nu`` per feature and all
    start at :data:`INITIAL_DOF`.
    """

    def __init__(self, n_features: int, context_size: int = 0) -> None:
        super().__init__()
        initial = torch.full((n_features,), INITIAL_DOF, dtype=torch.float64)
        self.dof_bias = nn.Parameter(raw_dof(initial).to(torch.get_default_dtype()))
        self.dof_weight = nn.Linear(context_size, n_features, bias=False) if context_size else None
        if self.dof_weight is not None:
            self.dof_weight.zero_init = True  # read by initialization.initialize_parameters

    @torch.no_grad()
    def start_at(self, degrees_of_freedom: Tensor) -> None:
        """Set ``nu`` per one-hot state: ``degrees_of_freedom`` is ``(K, n_features)``, row k for state k."""
        self.dof_bias.zero_()
        self.dof_weight.weight.copy_(raw_dof(degrees_of_freedom).T)

    def degrees_of_freedom(self, context: Tensor | None) -> Tensor:
        """``nu``: ``(n_features,)``, or ``(..., n_features)`` for a context ``(..., c)``."""
        raw = self.dof_bias if self.dof_weight is None or context is None else self.dof_bias + self.dof_weight(context)
        return torch.exp(math.log(MIN_DOF) + _LOG_SPAN * torch.sigmoid(raw))

    def log_prob(self, z: Tensor, context: Tensor | None) -> Tensor:
        """``sum_j log t_nu_j(z_j)`` over the last dimension; leading shapes broadcast with the context's."""
        nu = self.degrees_of_freedom(context)
        half = 0.5 * (nu + 1.0)
        normalizer = torch.lgamma(half) - torch.lgamma(0.5 * nu) - 0.5 * torch.log(nu * math.pi)
        return (normalizer - half * torch.log1p(z * z / nu)).sum(dim=-1)

    def sample(self, shape: tuple[int, ...], context: Tensor | None, generator: torch.Generator | None,
               reference: Tensor) -> Tensor:  # fmt: skip
        """Draws of shape ``shape + (n_features,)`` (``shape`` ends with the context's batch shape).

        ``t = n / sqrt(g / nu)`` with ``n`` standard normal and ``g`` chi-squared
        with ``nu`` degrees of freedom. Gamma variates take no generator in
        torch, so they are drawn from a copy of the global stream seeded from
        ``generator`` (which is consumed), and the global state is restored.
        """
        nu = self.degrees_of_freedom(context).detach()
        full_shape = (*shape, nu.shape[-1])
        normal = torch.randn(full_shape, generator=generator, dtype=reference.dtype, device=reference.device)
        seed = int(torch.randint(2**62, (), generator=generator, device=generator.device if generator else "cpu"))
        devices = [reference.device] if reference.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            chi_squared = 2.0 * torch._standard_gamma(0.5 * nu.expand(full_shape).contiguous())
        return normal / torch.sqrt(chi_squared / nu)
