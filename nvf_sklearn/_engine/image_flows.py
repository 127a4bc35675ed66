"""Neural spline flows over images ``(n, C, H, W)``, optionally conditioned on a context.

The flow keeps the true dimensionality of the image (no upsampling, no
padding of the data): squeezes trade space for channels, checkerboard and
channel couplings spline one half of the pixels given the other half, and a
small residual conv net (the conditioner) emits the spline parameters of
:func:`~.splines.rq_spline_columns` for every transformed pixel.

A context is either a spatial grid ``(n, Cc, h, w)`` (e.g. an embedded grid of
discrete codes) or a vector ``(n, Cc)``. Each coupling layer sees it resized
to its own resolution (:func:`match_context`) and concatenated to its
conditioner's input. The data always enters the flow as ``(n, C, H, W)``; the
base distribution is a standard normal over the squeezed output shape.

Layers map data towards the base and return ``(z, log|det dz/dx|)`` per image;
``inverse`` maps back. Conditioners' last convolutions start at zero, so a
fresh flow is the identity after its optional logit pre-transform.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Transform
from .dequantization import logit_inverse, logit_transform
from .flows import Flow, FlowDistribution
from .splines import n_spline_parameters, rq_spline_columns

#: Pixels pushed through a flow at once when scoring or sampling in chunks,
#: by device type: bounds the memory of the conditioners' activations, about
#: ``hidden_channels * 4`` bytes per pixel each.
FLOW_CHUNK_PIXELS = {"cpu": 1 << 21, "cuda": 1 << 24}


def image_chunk_rows(image_shape: tuple[int, ...], device_type: str) -> int:
    """Images per chunk of :data:`FLOW_CHUNK_PIXELS` pixels on ``device_type``."""
    budget = FLOW_CHUNK_PIXELS.get(device_type, FLOW_CHUNK_PIXELS["cuda"])
    return max(1, budget // math.prod(image_shape))


def match_context(context: Tensor | None, height: int, width: int) -> Tensor | None:
    """Bring a context to ``(n, Cc, height, width)``.

    A vector is broadcast over space; a coarser grid is repeated (nearest
    neighbour, so every pixel sees the code of the cell it lies in); a finer
    grid is average-pooled.
    """
    if context is None:
        return None
    if context.dim() == 2:
        return context[:, :, None, None].expand(-1, -1, height, width)
    if tuple(context.shape[-2:]) == (height, width):
        return context
    if context.shape[-2] < height:
        return F.interpolate(context, size=(height, width), mode="nearest")
    return F.adaptive_avg_pool2d(context, (height, width))


class ResidualBlock(nn.Module):
    """``h + conv1x1(relu(conv3x3(relu(h))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 3, padding=1)
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.pointwise(F.relu(self.spatial(F.relu(h))))


class ConvConditioner(nn.Module):
    """A small ResNet ``(x, context) -> parameters`` whose output conv starts at zero."""

    def __init__(
        self, in_channels: int, context_channels: int, out_channels: int, hidden_channels: int, n_blocks: int
    ) -> None:
        super().__init__()
        self.input = nn.Conv2d(in_channels + context_channels, hidden_channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden_channels) for _ in range(n_blocks)])
        self.output = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
        self.output.zero_init = True  # read by initialization.initialize_parameters

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        if context is not None:
            x = torch.cat([x, context.expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.output(F.relu(self.blocks(self.input(x))))


class _SplineCoupling2d(Transform):
    """Shared machinery: spline the pixels where ``transformed_mask`` is 1 given the rest."""

    def __init__(self, channels: int, n_bins: int, tail_bound: float) -> None:
        super().__init__()
        self.channels = channels
        self.n_params = n_spline_parameters(n_bins)
        self.tail_bound = float(tail_bound)

    def _spline(self, x: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        # The spline's own layout: one column of parameters per pixel, pixels in x's order.
        columns = raw.reshape(n, c, self.n_params, h, w).movedim(2, 0).reshape(self.n_params, -1)
        y, log_det = rq_spline_columns(x.reshape(-1), columns, self.tail_bound, inverse=inverse)
        return y.view(x.shape), log_det.view(x.shape)


class CheckerboardCoupling(_SplineCoupling2d):
    """Spline the pixels of one checkerboard colour (``parity``) given the other colour."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        parity: int,
        context_channels: int,
        hidden_channels: int,
        n_blocks: int,
        n_bins: int,
        tail_bound: float,
    ) -> None:
        super().__init__(channels, n_bins, tail_bound)
        rows = torch.arange(height).unsqueeze(1)
        columns = torch.arange(width).unsqueeze(0)
        mask = ((rows + columns) % 2 == parity).to(torch.get_default_dtype())
        self.register_buffer("mask", mask.expand(1, 1, height, width).clone())
        # The mask is an input channel too: zero padding breaks the checkerboard's symmetry.
        self.conditioner = ConvConditioner(
            channels + 1, context_channels, channels * self.n_params, hidden_channels, n_blocks
        )

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(x.dtype)
        kept = x * (1.0 - mask)
        inputs = torch.cat([kept, mask.expand(x.shape[0], -1, -1, -1)], dim=1)
        raw = self.conditioner(inputs, match_context(context, x.shape[-2], x.shape[-1]))
        y, log_det = self._spline(x, raw, inverse)
        selected = mask.expand_as(x) > 0.5
        y = torch.where(selected, y, x)
        return y, (log_det * mask).flatten(1).sum(dim=1)


class ChannelCoupling(_SplineCoupling2d):
    """Spline one half of the channels given the other half (``parity`` picks the half)."""

    def __init__(
        self,
        channels: int,
        parity: int,
        context_channels: int,
        hidden_channels: int,
        n_blocks: int,
        n_bins: int,
        tail_bound: float,
    ) -> None:
        super().__init__(channels, n_bins, tail_bound)
        first = channels // 2
        self.sizes = [first, channels - first]
        self.parity = parity
        n_kept, n_changed = self.sizes[parity], self.sizes[1 - parity]
        self.conditioner = ConvConditioner(
            n_kept, context_channels, n_changed * self.n_params, hidden_channels, n_blocks
        )

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        halves = list(x.split(self.sizes, dim=1))
        kept, changed = halves[self.parity], halves[1 - self.parity]
        raw = self.conditioner(kept, match_context(context, x.shape[-2], x.shape[-1]))
        changed, log_det = self._spline(changed, raw, inverse)
        halves[1 - self.parity] = changed
        return torch.cat(halves, dim=1), log_det.flatten(1).sum(dim=1)


class Squeeze(Transform):
    """Space-to-depth: ``(n, C, H, W) -> (n, 4C, H/2, W/2)``; volume preserving."""

    def transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        if inverse:
            y = x.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, 2 * h, 2 * w)
        else:
            y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)


class LogitPreTransform(Transform):
    """Fixed ``s = logit(alpha + (1 - 2 alpha) y)`` for pixels ``y`` in ``[0, 1]``, exact log-Jacobian.

    The map is a bijection from ``(-a, 1 + a)``, ``a = alpha / (1 - 2 alpha)``,
    onto the real line, so the flow's density is zero outside that box: an
    image with a pixel outside it gets log-Jacobian ``-inf`` (never NaN), and
    that pixel is not recovered by ``inverse``.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"logit_alpha must lie in (0, 0.5), got {alpha!r}.")
        self.alpha = float(alpha)
        self.margin = self.alpha / (1.0 - 2.0 * self.alpha)

    def transform(self, y: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        if inverse:
            pixels = logit_inverse(y, self.alpha)
            return pixels, -logit_transform(pixels, self.alpha)[1]
        inside = (y > -self.margin) & (y < 1.0 + self.margin)
        s, log_det = logit_transform(torch.where(inside, y, torch.full_like(y, 0.5)), self.alpha)
        in_support = inside.flatten(1).all(dim=1)
        return s, torch.where(in_support, log_det, torch.full_like(log_det, -math.inf))


class ImageFlow(Flow):
    """A multi-scale coupling spline flow ``p(x | context)`` over images ``(n, C, H, W)``.

    ``flow(context)`` answers ``log_prob`` and ``sample`` like every
    :class:`~.flows.Flow`; a context has one row per image (a grid
    ``(n, Cc, h, w)`` or a vector ``(n, Cc)``).

    Parameters
    ----------
    image_shape : (C, H, W)
        Shape of one image; ``H`` and ``W`` must be divisible by ``2 ** n_scales``.
    context_channels : int, default=0
        Channels of the context (spatial grid or vector); 0 for none.
    n_scales : int, default=1
        Number of squeezes. Scale 0 uses checkerboard couplings; every later
        scale cycles through channel and checkerboard couplings of both parities.
    n_layers_per_scale : int, default=4
        Coupling layers per scale.
    hidden_channels, n_blocks : int
        Width and residual blocks of each conditioner.
    n_bins, tail_bound :
        Spline bins, and the half-width of the spline interval.
    logit_alpha : float or None, default=None
        When given, data is in ``[0, 1]`` and first goes through the logit
        pre-transform; ``log_prob`` is then the density in ``[0, 1]`` pixel space.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        *,
        context_channels: int = 0,
        n_scales: int = 1,
        n_layers_per_scale: int = 4,
        hidden_channels: int = 32,
        n_blocks: int = 1,
        n_bins: int = 8,
        tail_bound: float = 4.0,
        logit_alpha: float | None = None,
    ) -> None:
        channels, height, width = image_shape
        if height % 2**n_scales or width % 2**n_scales:
            raise ValueError(
                f"image_shape={tuple(image_shape)} cannot be squeezed {n_scales} times; "
                "use fewer scales (n_scales) or an image side divisible by 2 ** n_scales."
            )
        layers: list[Transform] = [LogitPreTransform(logit_alpha)] if logit_alpha is not None else []
        common = dict(
            context_channels=context_channels,
            hidden_channels=hidden_channels,
            n_blocks=n_blocks,
            n_bins=n_bins,
            tail_bound=tail_bound,
        )
        for scale in range(n_scales + 1):
            if scale > 0:
                layers.append(Squeeze())
                channels, height, width = 4 * channels, height // 2, width // 2
            for index in range(n_layers_per_scale):
                # Scale 0: checkerboard 0, 1, 0, ...; later: channel 0, channel 1, checker 0, checker 1, ...
                # A 1x1 grid has one checkerboard colour only: channel couplings there, if it has channels.
                parity = index % 2
                if (scale == 0 or index % 4 >= 2) and (height * width > 1 or channels == 1):
                    layers.append(CheckerboardCoupling(channels, height, width, parity, **common))
                else:
                    layers.append(ChannelCoupling(channels, parity, **common))
        super().__init__(layers, tuple(image_shape), (channels, height, width))
        self.context_channels = context_channels

    def context_batch_shape(self, context: Tensor) -> tuple[int, ...]:
        return tuple(context.shape[:1])

    def forward(self, context: Tensor | None = None) -> ImageFlowDistribution:
        return ImageFlowDistribution(self, context)


class ImageFlowDistribution(FlowDistribution):
    """``p(x | context)`` of an :class:`ImageFlow`: a context holds one row per image."""

    def sample(self, shape: tuple[int, ...] = (), generator: torch.Generator | None = None) -> Tensor:
        if self.context is not None and tuple(shape):
            raise ValueError(
                "an image flow's context has one row per image: sample with shape () (one image per context row), "
                "or without a context with shape (n,)."
            )
        return super().sample(shape, generator)
