"""Conditional flows: a chain of transforms on a standard-normal base, and the tabular layers.

``flow(context)`` is the distribution ``p(x | context)``; ``log_prob`` and
``sample`` work the same way for tables and images (:mod:`.image_flows`).
Tabular layers take a context whose leading shape broadcasts against the
data's, so ``(n, 1, d)`` points against ``K`` contexts ``(K, c)`` give
``(n, K)`` log-densities in one call: this is how the latent model scores all
states at once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Transform, broadcast_shape, standard_normal_log_prob
from .splines import n_spline_parameters, rq_spline_columns
from .tails import StudentTBase


class Flow(nn.Module):
    """A chain of :class:`~.base.Transform` layers on a base distribution over ``base_shape``.

    ``event_shape`` is the shape of one data point, ``base_shape`` that of its
    image in the base space (they differ when layers reshape, e.g. squeezes).
    The base is a standard normal, or ``base`` (a :class:`~.tails.StudentTBase`
    over the last dimension, given the context).
    """

    def __init__(self, layers: list[Transform], event_shape: tuple[int, ...], base_shape: tuple[int, ...] | None = None,
                 base: StudentTBase | None = None):  # fmt: skip
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.base = base
        self.event_shape = tuple(event_shape)
        self.base_shape = tuple(base_shape or event_shape)
        # A buffer that follows the module's device and dtype, for new tensors.
        self.register_buffer("reference", torch.zeros(()), persistent=False)

    @property
    def n_features(self) -> int:
        return self.event_shape[-1]

    def context_batch_shape(self, context: Tensor) -> tuple[int, ...]:
        """Batch shape a context contributes to samples (tabular contexts are vectors)."""
        return tuple(context.shape[:-1])

    def forward(self, context: Tensor | None = None) -> FlowDistribution:
        return FlowDistribution(self, context)


class FlowDistribution:
    """The distribution ``p(x | context)`` of a :class:`Flow`; returned by ``flow(context)``."""

    def __init__(self, flow: Flow, context: Tensor | None) -> None:
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

    def base_log_prob(self, z: Tensor) -> Tensor:
        """``log`` density of base-space points under the base distribution (given the context)."""
        if self.flow.base is not None:
            return self.flow.base.log_prob(z, self.context)
        return standard_normal_log_prob(z, len(self.flow.base_shape))

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x | context)``; its shape is the broadcast batch shape."""
        z, log_det = self.transform(x)
        return self.base_log_prob(z) + log_det

    def sample(self, shape: tuple[int, ...] = (), generator: torch.Generator | None = None) -> Tensor:
        """Draw ``shape + context batch shape`` points."""
        reference = self.flow.reference
        batch = tuple(shape) + (self.flow.context_batch_shape(self.context) if self.context is not None else ())
        if self.flow.base is not None:
            return self.inverse(self.flow.base.sample(batch, self.context, generator, reference))
        z = torch.randn(
            *batch, *self.flow.base_shape, generator=generator, dtype=reference.dtype, device=reference.device
        )
        return self.inverse(z)


class ConditionerMLP(nn.Module):
    """MLP ``(x, context) -> parameters`` whose first layer splits over its inputs.

    The first layer is ``W_x x + W_c c + b``; computing the two products
    separately lets ``n`` points and ``K`` contexts meet by broadcasting, at
    the cost of ``n + K`` rather than ``n * K`` first-layer products. The
    output layer starts at zero, so a fresh coupling layer is the identity.
    ``dropout`` drops hidden units in training (from torch's global generator,
    which the training loop seeds from the fit's own and restores).

    The output comes as columns, one per batch element (:meth:`parameter_columns`):
    the output layer's product taken the other way round, ``W h^T``, costs
    the same and hands the spline its parameters in the layout it works in.
    """

    def __init__(
        self,
        in_features: int,
        context_size: int,
        out_features: int,
        hidden_size: int,
        n_hidden_layers: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.data_input = nn.Linear(in_features, hidden_size, bias=False) if in_features else None
        self.context_input = nn.Linear(context_size, hidden_size, bias=False) if context_size else None
        self.input_bias = nn.Parameter(torch.zeros(hidden_size))
        layers: list[nn.Module] = [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        for _ in range(n_hidden_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(hidden_size, out_features)
        self.output.zero_init = True  # read by initialization.initialize_parameters

    def hidden_state(self, x: Tensor, context: Tensor | None) -> Tensor:
        """``(..., hidden_size)``: the last hidden layer, batch shape broadcast from ``x`` and ``context``."""
        h = self.input_bias
        if self.data_input is not None:
            h = h + self.data_input(x)
        if self.context_input is not None and context is not None:
            h = h + self.context_input(context)
        return self.hidden(h)

    def parameter_columns(self, hidden: Tensor) -> Tensor:
        """``(out_features, M)``: the output for each of the ``M`` rows of ``hidden`` ``(M, hidden_size)``."""
        return torch.addmm(self.output.bias.unsqueeze(-1), self.output.weight, hidden.T)


class SplineCoupling(Transform):
    """Keep the first ``n_identity`` features; spline the rest given them and the context.

    The conditioner's output rows are parameter-major: row ``p * n_transformed
    + j`` is spline parameter ``p`` of transformed feature ``j``, so its
    columns view as the ``(n_params, n_transformed * M)`` parameters that
    :func:`~.splines.rq_spline_columns` takes, features first.
    """

    def __init__(
        self,
        n_features: int,
        context_size: int,
        hidden_size: int,
        n_hidden_layers: int,
        n_bins: int,
        tail_bound: float,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_identity = n_features // 2
        self.n_transformed = n_features - self.n_identity
        self.n_params = n_spline_parameters(n_bins)
        self.tail_bound = float(tail_bound)
        self.conditioner = ConditionerMLP(
            self.n_identity, context_size, self.n_transformed * self.n_params, hidden_size, n_hidden_layers, dropout
        )

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        kept, changed = x.split([self.n_identity, self.n_transformed], dim=-1)
        hidden = self.conditioner.hidden_state(kept, context)
        batch_shape = broadcast_shape(x.shape[:-1], hidden.shape[:-1])
        params = self.conditioner.parameter_columns(hidden.expand(*batch_shape, -1).reshape(-1, hidden.shape[-1]))
        changed, log_det = spline_features(
            changed.expand(*batch_shape, -1), params.view(self.n_params, -1), self.tail_bound, inverse
        )
        return torch.cat([kept.expand(*batch_shape, -1), changed], dim=-1), log_det


def spline_features(x: Tensor, params: Tensor, tail_bound: float, inverse: bool) -> tuple[Tensor, Tensor]:
    """Spline every feature of ``x`` ``(..., d)``: ``(y, log|det|)``, shapes ``(..., d)`` and ``(...)``.

    ``params`` ``(n_params, d * M)`` are the splines' parameters as columns,
    feature-major: column ``j * M + m`` is feature ``j`` of batch element
    ``m``. The log-determinants are summed over the features by a cumulative
    sum, not a sum: a CPU reduction over a leading axis rounds an element
    differently by its position in the batch, and a row's density must not
    depend on which rows come with it.
    """
    n_features = x.shape[-1]
    by_feature = x.reshape(-1, n_features).T.reshape(-1)
    y, log_det = rq_spline_columns(by_feature, params, tail_bound, inverse)
    y = y.view(n_features, -1).T.reshape(x.shape)
    return y, log_det.view(n_features, -1).cumsum(dim=0)[-1].view(x.shape[:-1])


class ReversePermutation(Transform):
    """Reverse the feature order, so the next coupling layer splines the other half."""

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        return x.flip(-1), x.new_zeros(x.shape[:-1])


class LULinear(Transform):
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

    def factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.n_features, dtype=self.lower.dtype, device=self.lower.device)
        return self.lower.tril(-1) + eye, self.upper.triu(1) + torch.diag(self.log_diagonal.exp())

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        lower, upper = self.factors()
        log_det = self.log_diagonal.sum().expand(x.shape[:-1])
        if not inverse:
            return x @ (lower @ upper).T, log_det
        # x W^T = y  <=>  W x^T = y^T: solve L (U x^T) = y^T, two triangular solves.
        columns = x.reshape(-1, self.n_features).T
        u_x = torch.linalg.solve_triangular(lower, columns, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, u_x, upper=True).T.reshape(x.shape), -log_det


def lu_without_pivoting(matrices: Tensor) -> tuple[Tensor, Tensor]:
    """``(L, U)`` with ``matrices = L U``, ``L`` unit lower- and ``U`` upper-triangular (Doolittle, no row exchanges)."""
    d = matrices.shape[-1]
    lower = torch.eye(d, dtype=matrices.dtype, device=matrices.device).repeat(*matrices.shape[:-2], 1, 1)
    upper = torch.zeros_like(matrices)
    for i in range(d):
        upper[..., i, i:] = matrices[..., i, i:] - (lower[..., i : i + 1, :i] @ upper[..., :i, i:]).squeeze(-2)
        below = matrices[..., i + 1 :, i] - (lower[..., i + 1 :, :i] @ upper[..., :i, i : i + 1]).squeeze(-1)
        lower[..., i + 1 :, i] = below / upper[..., i : i + 1, i]
    return lower, upper


class StateAffine(Transform):
    """``y = A(c) (x - m(c))``: a location and an invertible matrix per state, linear in the context.

    With a one-hot context each state ``k`` has its own location ``m_k`` and
    either a diagonal ``A_k`` (``full=False``) or a full invertible one
    (``full=True``), factorised ``A_k = L_k U_k`` with ``L_k`` unit lower- and
    ``U_k`` upper-triangular with a positive diagonal (``exp(log_scale)``), so
    ``log|det A| = sum(log_scale)`` costs O(d) and any orientation can be
    learned (a lower-triangular map alone fixes the frame, and a state's
    independent directions need not be its Cholesky frame). A latent model
    warm-started from a Gaussian mixture sets ``A_k`` to a whitening map of
    component ``k``'s covariance (:meth:`start_at`), so it starts as that
    mixture and later layers refine it.
    """

    def __init__(self, n_features: int, context_size: int, full: bool = False) -> None:
        super().__init__()
        self.n_features = n_features
        self.location = nn.Linear(context_size, n_features, bias=False)
        self.log_scale = nn.Linear(context_size, n_features, bias=False)
        self.location.zero_init = self.log_scale.zero_init = True
        rows, columns = torch.tril_indices(n_features, n_features, offset=-1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("columns", columns, persistent=False)
        full = full and rows.numel() > 0
        self.lower = nn.Linear(context_size, rows.numel(), bias=False) if full else None
        self.upper = nn.Linear(context_size, rows.numel(), bias=False) if full else None
        if full:
            self.lower.zero_init = self.upper.zero_init = True

    @torch.no_grad()
    def start_at(self, locations: Tensor, maps: Tensor) -> None:
        """State k starts at ``x -> maps[k] (x - locations[k])`` (one-hot contexts; ``(K, d)`` and ``(K, d, d)``).

        A full map is factorised ``L U`` without row exchanges (each map must
        have one, with a positive diagonal of ``U``: a lower-triangular map
        with a positive diagonal has, and so has any map whose rows are in
        the order partial pivoting puts them, signs fixed). A diagonal state
        map keeps only the diagonal.
        """
        self.location.weight.copy_(locations.T)
        if self.lower is None:
            self.log_scale.weight.copy_(torch.diagonal(maps, dim1=-2, dim2=-1).log().T)
            return
        lower, upper = lu_without_pivoting(maps)
        self.log_scale.weight.copy_(torch.diagonal(upper, dim1=-2, dim2=-1).log().T)
        self.lower.weight.copy_(lower[:, self.rows, self.columns].T)
        self.upper.weight.copy_(upper[:, self.columns, self.rows].T)

    def restrict_to_diagonal(self) -> None:
        """Drop the off-diagonal factors (before training): a location and a diagonal scale per state."""
        self.lower = self.upper = None

    def factors(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """``(L(c), U(c))``, each ``(..., d, d)``; ``A(c) = L(c) U(c)``."""
        diagonal = torch.diag_embed(self.log_scale(context).exp())
        lower = torch.eye(self.n_features, dtype=diagonal.dtype, device=diagonal.device).expand_as(diagonal).clone()
        lower[..., self.rows, self.columns] = self.lower(context)
        upper = diagonal.clone()
        upper[..., self.columns, self.rows] = self.upper(context)
        return lower, upper

    def matrix(self, context: Tensor) -> Tensor:
        """``A(c)``: ``(..., d, d)``."""
        if self.lower is None:
            return torch.diag_embed(self.log_scale(context).exp())
        lower, upper = self.factors(context)
        return lower @ upper

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        log_scale = self.log_scale(context)
        log_det = log_scale.sum(dim=-1)
        location = self.location(context)
        if self.lower is None:
            if inverse:
                y = x * torch.exp(-log_scale) + location
            else:
                y = (x - location) * torch.exp(log_scale)
        elif inverse:
            lower, upper = self.factors(context)
            batch = broadcast_shape(x.shape[:-1], log_det.shape)
            columns = x.expand(*batch, -1).unsqueeze(-1)
            u_x = torch.linalg.solve_triangular(lower.expand(*batch, -1, -1), columns, upper=False, unitriangular=True)
            y = torch.linalg.solve_triangular(upper.expand(*batch, -1, -1), u_x, upper=True).squeeze(-1) + location
        else:
            y = (self.matrix(context) @ (x - location).unsqueeze(-1)).squeeze(-1)
        log_det = log_det.expand(y.shape[:-1])
        return y, -log_det if inverse else log_det


class StateSpline(Transform):
    """An element-wise monotone spline per feature whose knots are linear in the context.

    With a one-hot context every state has its own spline on every feature:
    cheap per-state capacity (``K * d * (3 * n_bins - 1)`` parameters) for
    the skew and tails of each state's marginals. Starts at the identity.
    """

    def __init__(self, n_features: int, context_size: int, n_bins: int, tail_bound: float) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_params = n_spline_parameters(n_bins)
        self.tail_bound = float(tail_bound)
        self.knots = nn.Linear(context_size, n_features * self.n_params, bias=False)
        self.knots.zero_init = True

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        # The knots of each state as columns (rows parameter-major, as in SplineCoupling), then one per element.
        columns = self.knots.weight @ context.reshape(-1, context.shape[-1]).T
        batch_shape = broadcast_shape(x.shape[:-1], context.shape[:-1])
        context_dims = (1,) * (len(batch_shape) - context.dim() + 1) + tuple(context.shape[:-1])
        params = columns.view(self.n_params, self.n_features, *context_dims).expand(
            self.n_params, self.n_features, *batch_shape
        )
        return spline_features(x.expand(*batch_shape, -1), params.reshape(self.n_params, -1), self.tail_bound, inverse)


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
    state_affine: str | None = None,
    state_splines: bool = False,
    dropout: float = 0.0,
    tails: str = "gaussian",
) -> Flow:
    """Build a coupling neural spline flow (identity at initialisation).

    Each block is an optional LU-linear layer, a spline coupling layer, then a
    reversal of the features so consecutive couplings transform other halves.
    With one feature the coupling layer splines it given the context alone.
    ``state_affine`` (``"diagonal"`` or ``"full"``) puts a :class:`StateAffine`
    layer first (data side), and ``state_splines`` a :class:`StateSpline` after it.
    ``tails="student_t"`` replaces the standard-normal base by a
    :class:`~.tails.StudentTBase` (degrees of freedom per feature, per state
    through the context).
    """
    if (state_affine is not None or state_splines) and not context_size:
        raise ValueError("state layers need a context (the state); pass context_size > 0.")
    layers: list[Transform] = []
    if state_affine is not None:
        layers.append(StateAffine(n_features, context_size, full=state_affine == "full"))
    if state_splines:
        layers.append(StateSpline(n_features, context_size, n_bins, tail_bound))
    for _ in range(n_layers):
        if lu_linear and n_features > 1:
            layers.append(LULinear(n_features))
        layers.append(
            SplineCoupling(n_features, context_size, hidden_size, n_hidden_layers, n_bins, tail_bound, dropout)
        )
        if n_features > 1:
            layers.append(ReversePermutation())
    base = StudentTBase(n_features, context_size) if tails == "student_t" else None
    return Flow(layers, (n_features,), base=base)
