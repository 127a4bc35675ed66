"""Vector quantisation of images into a grid of discrete codes (van den Oord et al., 2017).

A small conv encoder maps an image ``(n, C, H, W)`` to encodings
``(n, D, h, w)`` with ``h = H / 2**n_downsamples``; each of the ``L = h * w``
positions is replaced by its nearest of ``V`` codebook vectors. Positions are
read in raster order (row by row), the order of the code prior.

Training uses the straight-through estimator (the flow's gradient passes to
the encoder as if quantisation were the identity) and the two VQ-VAE terms:
the codebook loss ``||sg(e) - c||^2`` moves codes towards encodings, the
commitment loss ``beta ||e - sg(c)||^2`` keeps encodings near their codes.
Codes that no position has chosen for a while are restarted at the worst
quantised encodings of the current batch (:meth:`VectorQuantizer.restart_dead_codes`, called by the
training loss only): without it, a codebook can collapse onto one or two codes,
which was seen on digits. The codebook changes only through these two paths,
so it is frozen whenever training is not stepping (in particular at
evaluation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .image_flows import ResidualBlock


class ConvEncoder(nn.Module):
    """Image ``(n, C, H, W)`` -> encodings ``(n, code_dim, H / 2**k, W / 2**k)``, ``k = n_downsamples``."""

    def __init__(
        self, in_channels: int, code_dim: int, hidden_channels: int = 32, n_downsamples: int = 1, n_blocks: int = 1
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden_channels, 3, padding=1)]
        for _ in range(n_downsamples):
            layers += [nn.ReLU(), nn.Conv2d(hidden_channels, hidden_channels, 4, stride=2, padding=1)]
        layers += [ResidualBlock(hidden_channels) for _ in range(n_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(hidden_channels, code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


class VectorQuantizer(nn.Module):
    """Nearest-codebook quantisation of an encoding grid, with straight-through gradients."""

    def __init__(self, n_codes: int, code_dim: int, commitment: float = 0.25) -> None:
        super().__init__()
        self.n_codes = n_codes
        self.code_dim = code_dim
        self.commitment = commitment
        self.codebook = nn.Embedding(n_codes, code_dim)
        # Moving average of each code's share of the positions of recent training batches.
        self.register_buffer("usage", torch.full((n_codes,), 1.0 / n_codes))

    @staticmethod
    def flatten_grid(encodings: Tensor) -> Tensor:
        """``(n, D, h, w) -> (n, L, D)`` in raster order."""
        return encodings.flatten(2).transpose(1, 2)

    def distances(self, encodings: Tensor) -> Tensor:
        """Squared distances ``(n, L, V)`` from each position's encoding to every code."""
        flat = self.flatten_grid(encodings)
        codes = self.codebook.weight
        # ||e||^2 - 2 e.c + ||c||^2 without an (n, L, V, D) intermediate; clipped at 0 against rounding.
        squared = (flat * flat).sum(-1, keepdim=True) - 2.0 * flat @ codes.T + (codes * codes).sum(-1)
        return squared.clamp_min(0.0)

    def embed(self, codes: Tensor, grid: tuple[int, int]) -> Tensor:
        """Codebook vectors of a code grid: ``(n, L) -> (n, D, h, w)``."""
        vectors = self.codebook(codes)  # (n, L, D)
        return vectors.transpose(1, 2).reshape(codes.shape[0], self.code_dim, *grid)

    def forward(self, encodings: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise: ``(codes (n, L), straight-through quantised grid (n, D, h, w), VQ loss (n,))``."""
        codes = self.distances(encodings).argmin(dim=-1)
        quantized = self.embed(codes, tuple(encodings.shape[-2:]))
        codebook_loss = (quantized - encodings.detach()).pow(2).flatten(1).sum(dim=1)
        commitment_loss = (encodings - quantized.detach()).pow(2).flatten(1).sum(dim=1)
        straight_through = encodings + (quantized - encodings).detach()
        return codes, straight_through, codebook_loss + self.commitment * commitment_loss

    @torch.no_grad()
    def restart_dead_codes(self, encodings: Tensor, codes: Tensor, decay: float = 0.9) -> None:
        """Update the usage averages with a batch's codes; move dead codes onto its worst-fitted encodings.

        A code is dead when its average share of the positions falls below
        ``0.03 / V`` (about 30 steps without use, with ``decay=0.9``); it
        restarts, with a fresh share of ``1 / V``, at one of the batch's
        encodings farthest from their nearest code (the i-th dead code at the
        i-th farthest), where a new code reduces the quantisation error most.
        Deterministic, static shapes, no host synchronisation.
        """
        counts = F.one_hot(codes.flatten(), self.n_codes).sum(dim=0).to(self.usage.dtype)
        self.usage.mul_(decay).add_((1.0 - decay) * counts / counts.sum())
        dead = self.usage < 0.03 / self.n_codes
        flat = self.flatten_grid(encodings).reshape(-1, self.code_dim)
        errors = self.distances(encodings).min(dim=-1).values.flatten()
        farthest = flat[errors.topk(min(self.n_codes, errors.numel())).indices]
        rank = (dead.cumsum(0) - 1).clamp(0, farthest.shape[0] - 1)
        self.codebook.weight.copy_(torch.where(dead.unsqueeze(-1), farthest[rank], self.codebook.weight))
        self.usage.copy_(torch.where(dead, torch.full_like(self.usage, 1.0 / self.n_codes), self.usage))

    @torch.no_grad()
    def initialize_from_encodings(self, encodings: Tensor, generator: torch.Generator) -> None:
        """Set the codebook to ``V`` encodings drawn at random from a batch (a data-dependent start).

        Draws without replacement when the batch has at least ``V`` positions;
        duplicates are jittered so no two codes coincide.
        """
        flat = self.flatten_grid(encodings).reshape(-1, self.code_dim)
        n = flat.shape[0]
        if n >= self.n_codes:
            index = torch.randperm(n, generator=generator, device=flat.device)[: self.n_codes]
        else:
            index = torch.randint(n, (self.n_codes,), generator=generator, device=flat.device)
        chosen = flat[index]
        scale = flat.std().clamp_min(1e-3)
        noise = torch.randn(chosen.shape, generator=generator, dtype=chosen.dtype, device=chosen.device)
        self.codebook.weight.copy_(chosen + 0.01 * scale * noise)

