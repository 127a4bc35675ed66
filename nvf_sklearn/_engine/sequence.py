"""The sequential latent model for images: p(x) = sum_z p(z) p_flow(x | z).

``z`` is a grid of ``L`` discrete codes from a vocabulary of ``V``
(:mod:`.quantizer`), ``p(z)`` a causal transformer over them in raster order
(:mod:`.code_prior`), and ``p_flow(x | z)`` an image flow whose context is the
grid of codebook vectors of ``z`` (:mod:`.image_flows`). For every fixed ``z``
the flow is a normalised density in ``x``, so the sum over all ``V ** L``
sequences is an exact density; the encoder only proposes which ``z`` to try.

Scoring. The sum has ``V ** L`` terms, so it is bounded from below by its
``m`` best candidates,

    log p(x) >= log sum_{z in top-m(x)} p(z) p(x | z),

where top-m(x) are the ``m`` sequences closest to the encoder's output under
the additive score ``-sum_l ||e_l(x) - c_{z_l}||^2``. A beam of width ``m``
finds exactly these (the score is additive), with ties broken by a fixed
order, so top-m is a prefix of top-(m + 1): the bound never decreases with
``m``, and with ``m = V ** L`` it is the exact log p(x). Any such figure is a
lower bound on log p(x), an upper bound on bits/dim, and must be labelled so.

Training. One pass per image with its nearest codes ``z*(x)``: the loss is
``-log p(z*) - log p(x | z*) + VQ losses`` (the first two are
``-log p(x, z*) >= -log p(x)``). The codes are discrete, so the prior term
trains the prior alone, on the training images' current codes. The model
declares two training stages: ``"joint"`` trains everything, then ``"prior"``
freezes encoder, codebook and flow and refits the prior on the final codes.
Both select on the top-1 bound of the validation images (one flow pass each).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .base import DensityModel
from .code_prior import CodePrior, CodePriorConfig
from .dequantization import dequantize
from .distributed import in_process_group
from .flow_density import pixel_noise
from .image_flows import ImageFlow, image_chunk_rows
from .quantizer import ConvEncoder, VectorQuantizer

#: Training images whose encodings seed the codebook.
CODEBOOK_INIT_ROWS = 4096


def top_sequences(scores: Tensor, m: int) -> Tensor:
    """The ``m`` highest-scoring sequences under an additive score, best first.

    Parameters
    ----------
    scores : Tensor of shape ``(n, L, V)``
        Score of code ``v`` at position ``l``; a sequence scores the sum.
    m : int
        Number of sequences; clipped to ``V ** L``.

    Returns
    -------
    Tensor of shape ``(n, min(m, V ** L), L)``
        Distinct sequences in order of decreasing score. Ties are broken by a
        fixed order (earlier parent beam, then smaller code), so the result for
        ``m`` is always the first ``m`` rows of the result for any larger ``m``.
    """
    n, length, n_codes = scores.shape
    beams = scores.new_zeros(n, 1, 0, dtype=torch.long)
    beam_scores = scores.new_zeros(n, 1)
    for position in range(length):
        total = (beam_scores.unsqueeze(-1) + scores[:, position].unsqueeze(1)).reshape(n, -1)  # (n, b * V)
        keep = min(m, total.shape[1])
        order = torch.sort(total, dim=1, descending=True, stable=True).indices[:, :keep]
        parents, codes = order // n_codes, order % n_codes
        beams = torch.cat([beams.gather(1, parents.unsqueeze(-1).expand(-1, -1, position)), codes.unsqueeze(-1)], -1)
        beam_scores = total.gather(1, order)
    return beams


class SequenceLatentFlowDensity(DensityModel):
    """Image density with a sequence of discrete codes as its latent variable.

    A :class:`~.base.DensityModel` with rows passed flat,
    ``(n, C * H * W)`` (or as images ``(n, C, H, W)``): ``log_joint`` returns the
    ``(n, m)`` matrix ``log p(z_j) + log p(x | z_j)`` over each image's top-m
    candidates, whose logsumexp is :meth:`log_prob_bound`.

    Parameters
    ----------
    encoder : ConvEncoder
    quantizer : VectorQuantizer
    flow : ImageFlow
        Its ``context_channels`` equal the codebook dimension.
    prior : CodePrior
        Over ``L = grid[0] * grid[1]`` positions and ``V = quantizer.n_codes`` codes.
    grid : (h, w)
        Shape of the code grid the encoder produces.
    top_m : int, default=16
        Candidates per image in ``log_joint`` (``n_states``).
    n_levels : int
        Pixel levels of the data: ``training_loss`` takes grid points
        ``p / n_levels`` and dequantises them with fresh uniform noise.
    """

    def __init__(
        self,
        encoder: ConvEncoder,
        quantizer: VectorQuantizer,
        flow: ImageFlow,
        prior: CodePrior,
        grid: tuple[int, int],
        top_m: int = 16,
        n_levels: int = 256,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.flow = flow
        self.prior = prior
        self.grid = tuple(grid)
        self.n_positions = grid[0] * grid[1]
        self.n_codes = quantizer.n_codes
        self.top_m = top_m
        self.n_levels = n_levels
        self.stage = "joint"

    # ----------------------------------------------------------------- shapes
    @property
    def n_states(self) -> int:
        """Columns of ``log_joint``: ``min(top_m, V ** L)``."""
        return min(self.top_m, self.n_codes**self.n_positions)

    def chunk_rows(self, device_type: str, states_per_row: int | None = None) -> int:
        """Images per chunk: a fixed budget of image-candidate pairs (see :func:`image_chunk_rows`)."""
        states = self.n_states if states_per_row is None else states_per_row
        return max(1, image_chunk_rows(self.flow.event_shape, device_type) // states)

    def _images(self, x: Tensor) -> Tensor:
        return x if x.dim() == 4 else x.reshape(x.shape[0], *self.flow.event_shape)

    # --------------------------------------------------------------- encoding
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest codes ``(n, L)`` and code distances ``(n, L, V)`` of each image."""
        distances = self.quantizer.distances(self.encoder(self._images(x)))
        return distances.argmin(dim=-1), distances

    def candidate_codes(self, x: Tensor, m: int) -> Tensor:
        """The top-m code sequences of each image ``(n, m, L)``, nearest first (see module doc)."""
        return top_sequences(-self.encode(x)[1], m)

    def context(self, codes: Tensor) -> Tensor:
        """The flow's context for a code sequence: its codebook vectors on the grid."""
        return self.quantizer.embed(codes, self.grid)

    # ---------------------------------------------------------------- density
    def log_likelihood(self, x: Tensor, codes: Tensor) -> Tensor:
        """``log p(x | z)`` for images ``x`` and code sequences ``(n, L)``: ``(n,)``."""
        return self.flow(self.context(codes)).log_prob(self._images(x))

    def log_joint_of(self, x: Tensor, candidates: Tensor) -> Tensor:
        """``log p(z_j) + log p(x | z_j)`` for candidates ``(n, m, L)``: ``(n, m)``.

        The ``n * m`` flow passes run in chunks of :func:`image_chunk_rows` images.
        """
        images = self._images(x)
        n, m, length = candidates.shape
        rows = images.repeat_interleave(m, dim=0)
        codes = candidates.reshape(n * m, length)
        chunk = image_chunk_rows(self.flow.event_shape, x.device.type)
        parts = [
            self.prior.log_prob(codes[start : start + chunk])
            + self.log_likelihood(rows[start : start + chunk], codes[start : start + chunk])
            for start in range(0, n * m, chunk)
        ]
        return torch.cat(parts).reshape(n, m)

    def log_joint(self, x: Tensor) -> Tensor:
        """``(n, n_states)``: joint log-densities of each image's top-m candidate sequences."""
        return self.log_joint_of(x, self.candidate_codes(x, self.top_m))

    def log_prob_bound(self, x: Tensor, top_m: int | None = None) -> Tensor:
        """``log sum_{z in top-m} p(z) p(x | z) <= log p(x)``; exact when ``m >= V ** L``."""
        candidates = self.candidate_codes(x, self.top_m if top_m is None else top_m)
        return self.log_joint_of(x, candidates).logsumexp(dim=-1)

    def most_likely_codes(self, x: Tensor, top_m: int | None = None) -> Tensor:
        """``argmax_z p(z | x)`` among the top-m candidates: ``(n, L)`` (exact MAP under enumeration)."""
        candidates = self.candidate_codes(x, self.top_m if top_m is None else top_m)
        best = self.log_joint_of(x, candidates).argmax(dim=-1)
        return candidates[torch.arange(candidates.shape[0], device=best.device), best]

    def density_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of p(x) itself: the encoder only proposes candidates."""
        return (p for name, p in self.named_parameters() if not name.startswith("encoder."))

    # --------------------------------------------------------------- training
    def training_stages(self) -> tuple[str, ...]:
        return ("joint", "prior")

    def set_training_stage(self, stage: str) -> None:
        """``"joint"``: train everything; ``"prior"``: train the prior alone on frozen codes."""
        if stage not in self.training_stages():
            raise ValueError(f"stage must be 'joint' or 'prior', got {stage!r}.")
        self.stage = stage
        for module in (self.encoder, self.quantizer, self.flow):
            module.requires_grad_(stage == "joint")

    def end_training(self) -> None:
        super().end_training()
        self.stage = "joint"

    def validation_passes(self) -> int:
        return 1

    def validation_loss(self, x: Tensor) -> Tensor:
        """Minus the top-1 bound: one flow pass per image, a cheap selection criterion."""
        return -self.log_prob_bound(x, top_m=1)

    def training_inputs(self, rows: Tensor, generator: torch.Generator) -> Tensor:
        """The dequantisation noise: one ``U[0, 1)`` draw per pixel."""
        return pixel_noise(self.flow, rows.shape[0], generator)

    def training_loss(self, x: Tensor, inputs: Tensor | None, progress: Tensor) -> Tensor:
        """Per-image loss: ``-log p(z*) - log p(x | z*) + VQ`` (joint) or ``-log p(z*)`` (prior)."""
        images = self._images(dequantize(x, inputs, self.n_levels))
        if self.stage == "prior":
            with torch.no_grad():
                codes = self.encode(images)[0]
            return -self.prior.log_prob(codes)
        encodings = self.encoder(images)
        codes, quantized, vq_loss = self.quantizer(encodings)
        log_likelihood = self.flow(quantized).log_prob(images)
        loss = -self.prior.log_prob(codes) - log_likelihood + vq_loss
        if not in_process_group():  # replicas would restart different codes and drift apart
            self.quantizer.restart_dead_codes(encodings.detach(), codes)
        return loss

    # --------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Codes from the prior, then pixels from the flow: ``(x (n, C*H*W), codes (n, L))``."""
        codes = self.prior.sample(n, generator)
        x = self.flow(self.context(codes)).sample((), generator)
        return x.flatten(1), codes

    # ---------------------------------------------------------- initialisation
    @torch.no_grad()
    def initialize(self, x: Tensor, weights: Tensor, generator: torch.Generator) -> None:
        """Start the codebook at encodings of random dequantised training images (no dead codes at step 0)."""
        rows = torch.randperm(x.shape[0], generator=generator, device=x.device)[:CODEBOOK_INIT_ROWS]
        noise = torch.rand(x[rows].shape, generator=generator, dtype=x.dtype, device=x.device)
        encodings = self.encoder(self._images(dequantize(x[rows], noise, self.n_levels)))
        self.quantizer.initialize_from_encodings(encodings, generator)


def sequence_latent_flow(
    flow: ImageFlow,
    n_codes: int,
    *,
    n_downsamples: int = 1,
    commitment: float = 0.25,
    encoder_channels: int = 32,
    prior_layers: int = 2,
    prior_heads: int = 4,
    prior_embd: int = 64,
    top_m: int = 16,
    n_levels: int = 256,
) -> SequenceLatentFlowDensity:
    """A :class:`SequenceLatentFlowDensity` around an image flow whose context is the code grid.

    The codebook dimension is the flow's ``context_channels``; the code grid
    is ``(H / 2**n_downsamples, W / 2**n_downsamples)``.
    """
    channels, height, width = flow.event_shape
    factor = 2**n_downsamples
    if height % factor or width % factor:
        raise ValueError(
            f"image_shape={tuple(flow.event_shape)} cannot be downsampled {n_downsamples} times; "
            "use fewer downsamplings (n_downsamples)."
        )
    grid = (height // factor, width // factor)
    code_dim = flow.context_channels
    encoder = ConvEncoder(channels, code_dim, encoder_channels, n_downsamples)
    quantizer = VectorQuantizer(n_codes, code_dim, commitment)
    prior = CodePrior(
        CodePriorConfig(n_codes, grid[0] * grid[1], n_layer=prior_layers, n_head=prior_heads, n_embd=prior_embd)
    )
    return SequenceLatentFlowDensity(encoder, quantizer, flow, prior, grid, top_m=top_m, n_levels=n_levels)
