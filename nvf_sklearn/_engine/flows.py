"""Conditional neural spline flows: coupling layers, permutations, LU-linear layers.

A layer maps data ``x`` towards the base space and returns ``(y, log|det J|)``;
``inverse`` maps back. Every layer takes an optional context tensor whose
leading shape broadcasts against the data's, so a batch of points
``(n, 1, d)`` against ``K`` contexts ``(K, c)`` yields ``(n, K, d)`` outputs in
one call: this is how the latent model scores all states at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .splines import n_spline_parameters, rq_spline

LOG_TWO_PI = math.log(2.0 * math.pi)


class ConditionerMLP(nn.Module):
    """MLP ``(x, context) -> parameters`` whose first layer splits over its inputs.

    The first layer is ``W_x x + W_c c + b``; computing the two products
    separately lets ``n`` points and ``K`` contexts meet by broadcasting, at
    the cost of ``n + K`` rather than ``n * K`` first-layer products. The
    output layer starts at zero, so a fresh coupling layer is the identity.
    """

    def __init__(
        self,
        in_features: int,
        context_size: int,
        out_features: int,
        hidden_size: int,
        n_hidden_layers: int,
    ) -> None:
        super().__init__()
        self.data_input = nn.Linear(in_features, hidden_size, bias=False) if in_features else None
        self.context_input = (
            nn.Linear(context_size, hidden_size, bias=False) if context_size else None
        )
        self.input_bias = nn.Parameter(torch.zeros(hidden_size))
        layers: list[nn.Module] = [nn.ReLU()]
        for _ in range(n_hidden_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU()]
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(hidden_size, out_features)
        self.output.zero_init = True  # read by initialization.initialize_parameters

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        h = self.input_bias
        if self.data_input is not None:
            h = h + self.data_input(x)
        if self.context_input is not None and context is not None:
            h = h + self.context_input(context)
        return self.output(self.hidden(h))


class SplineCoupling(nn.Module):
    """Keep the first ``n_identity`` features; spline the rest given them and the context."""

    def __init__(
        self,
        n_features: int,
        context_size: int,
        hidden_size: int,
        n_hidden_layers: int,
        n_bins: int,
        tail_bound: float,
    ) -> None:
        super().__init__()
        self.n_identity = n_features // 2
        self.n_transformed = n_features - self.n_identity
        self.n_params = n_spline_parameters(n_bins)
        self.tail_bound = float(tail_bound)
        self.conditioner = ConditionerMLP(
            self.n_identity,
            context_size,
            self.n_transformed * self.n_params,
            hidden_size,
            n_hidden_layers,
        )

    def _transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        kept, changed = x.split([self.n_identity, self.n_transformed], dim=-1)
        params = self.conditioner(kept, context)
        batch_shape = torch.broadcast_shapes(x.shape[:-1], params.shape[:-1])
        params = params.expand(*batch_shape, -1).reshape(
            *batch_shape, self.n_transformed, self.n_params
        )
        changed = changed.expand(*batch_shape, -1)
        changed, log_det = rq_spline(changed, params, self.tail_bound, inverse=inverse)
        y = torch.cat([kept.expand(*batch_shape, -1), changed], dim=-1)
        return y, log_det.sum(dim=-1)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._transform(x, context, inverse=False)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return self._transform(y, context, inverse=True)[0]


class ReversePermutation(nn.Module):
    """Reverse the feature order, so the next coupling layer splines the other half."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.flip(-1), x.new_zeros(x.shape[:-1])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return y.flip(-1)


class LULinear(nn.Module):
    """Invertible linear map ``y = x W^T`` with ``W = L U`` (unit-lower L, upper U).

    Starts at the identity; ``log|det W| = sum(log diag U)`` costs O(d).
    """


    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.lower = nn.Parameter(torch.zeros(n_features, n_features))
        self.upper = nn.Parameter(torch.zeros(n_features, n_features))
        # diag U = exp(log_diagonal): positive, and exactly one at zero.
        self.log_diagonal = nn.Parameter(torch.zeros(n_features))

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.n_features, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower.tril(-1) + eye
        upper = self.upper.triu(1) + torch.diag(self.log_diagonal.exp())
        return lower, upper

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        y = x @ (lower @ upper).T
        return y, self.log_diagonal.sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        lower, upper = self._factors()
        # x W^T = y  <=>  W x^T = y^T: solve L (U x^T) = y^T, two triangular solves.
        columns = y.reshape(-1, self.n_features).T
        u_x = torch.linalg.solve_triangular(lower, columns, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, u_x, upper=True)
        return x.T.reshape(y.shape)


class ContextAffine(nn.Module):
    """Element-wise ``y = (x - a(c)) * exp(-s(c))`` with ``a``, ``s`` linear in the context.

    With a one-hot context this is a per-state location and log-scale: a
    latent model warm-started from k-means starts as a diagonal Gaussian
    mixture, which the spline layers then refine.
    """

    def __init__(self, n_features: int, context_size: int) -> None:
        super().__init__()
        self.location = nn.Linear(context_size, n_features, bias=False)
        self.log_scale = nn.Linear(context_size, n_features, bias=False)
        self.location.zero_init = True
        self.log_scale.zero_init = True

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_scale = self.log_scale(context)
        y = (x - self.location(context)) * torch.exp(-log_scale)
        log_det = -log_scale.sum(dim=-1)
        return y, log_det.expand(y.shape[:-1])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        return y * torch.exp(self.log_scale(context)) + self.location(context)


class FlowDistribution:
    """The distribution ``p(x | context)`` of a :class:`Flow`; returned by ``flow(context)``."""

    def __init__(self, flow: "Flow", context: Tensor | None) -> None:
        self.flow = flow
        self.context = context

    def transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map data to the base space: ``(z, log|det dz/dx|)``."""
        log_det = torch.zeros((), dtype=x.dtype, device=x.device)
        for layer in self.flow.layers:
            x, layer_log_det = layer(x, self.context)
            log_det = log_det + layer_log_det
        return x, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """Map base-space points back to data space."""
        for layer in reversed(self.flow.layers):
            z = layer.inverse(z, self.context)
        return z

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x | context)``; shape is the broadcast batch shape."""
        z, log_det = self.transform(x)
        base = -0.5 * (z * z).sum(dim=-1) - 0.5 * z.shape[-1] * LOG_TWO_PI
        return base + log_det

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
        """Draw ``shape + context batch shape`` points of dimension ``n_features``."""
        ref = self.flow.reference
        batch = tuple(shape) + (tuple(self.context.shape[:-1]) if self.context is not None else ())
        z = torch.randn(
            *batch, self.flow.n_features, generator=generator, dtype=ref.dtype, device=ref.device
        )
        return self.inverse(z)


class Flow(nn.Module):
    """A chain of invertible layers on top of a standard-normal base.

    ``flow(context)`` returns the conditional distribution; pass ``None`` for an
    unconditional flow.
    """

    def __init__(self, n_features: int, layers: list[nn.Module]) -> None:
        super().__init__()
        self.n_features = n_features
        self.layers = nn.ModuleList(layers)
        # A buffer that follows the module's device and dtype, for new tensors.
        self.register_buffer("reference", torch.zeros(()), persistent=False)

    def forward(self, context: Tensor | None = None) -> FlowDistribution:
        return FlowDistribution(self, context)


def spline_flow(
    n_features: int,
    *,
    context_size: int = 0,
    n_layers: int = 5,
    hidden_size: int = 64,
    n_hidden_layers: int = 2,
    n_bins: int = 8,
    tail_bound: float = 5.0,
    lu_linear: bool = False,
    context_affine: bool = False,
) -> Flow:
    """Build a coupling neural spline flow (identity at initialisation).

    Each block is an optional LU-linear layer, a spline coupling layer, then a
    reversal of the features so consecutive couplings transform other halves.
    With one feature the coupling layer splines it given the context alone.
    ``context_affine`` puts a :class:`ContextAffine` layer first (data side).
    """
    layers: list[nn.Module] = [ContextAffine(n_features, context_size)] if context_affine else []
    for _ in range(n_layers):
        if lu_linear and n_features > 1:
            layers.append(LULinear(n_features))
        layers.append(
            SplineCoupling(n_features, context_size, hidden_size, n_hidden_layers, n_bins, tail_bound)
        )
        if n_features > 1:
            layers.append(ReversePermutation())
    return Flow(n_features, layers)
