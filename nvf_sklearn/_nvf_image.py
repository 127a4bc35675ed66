"""NVFImageDensity: an image flow conditioned on a grid of discrete codes with a transformer prior."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

from ._compat import Interval
from ._engine import SequenceLatentFlowDensity, sequence_latent_flow
from ._image import BaseImageDensity

#: Attention heads of the code prior (``sequence_latent_flow``'s default): ``code_prior_width`` is split over them.
CODE_PRIOR_HEADS = 4


class NVFImageDensity(BaseImageDensity):
    """Normalizing Variational Flow for images: a spline flow conditioned on a sequence of codes.

    An encoder maps each image to a grid of ``L`` discrete codes from a
    codebook of ``n_codes`` vectors (vector quantisation); the image flow of
    :class:`NFImageDensity` is conditioned on the codebook vectors of the
    grid, and a small causal transformer is the prior ``p(z)`` over the code
    sequence. The model ``p(x) = sum_z p(z) p(x | z)`` sums over
    ``n_codes ** L`` sequences, so :meth:`score_samples` is a **lower bound**
    on ``log p(x)`` over each image's ``top_m`` most likely code sequences
    (exact when ``top_m >= n_codes ** L``), and :meth:`bits_per_dim` an upper
    bound on bits per dimension. Training runs in two stages: everything
    jointly on each image's nearest codes, then the prior alone on the final,
    frozen codes.

    Read more in the :ref:`User Guide <code-latent>`.

    Parameters
    ----------
    n_codes : int, default=16
        Codebook size V.
    image_shape, n_levels, n_scales, couplings_per_scale, hidden_channels, n_blocks, n_bins, tail_bound :
        The image and its flow, as in :class:`NFImageDensity`.
    n_downsamples : int, default=2
        Halvings of the image side by the encoder: the code grid is
        ``H / 2**n_downsamples`` by ``W / 2**n_downsamples``.
    code_dim : int, default=8
        Dimension of the codebook vectors.
    encoder_channels : int, default=32
        Channels of the convolutional encoder.
    code_prior_layers : int, default=1
        Transformer blocks of the code prior.
    code_prior_width : int, default=32
        Embedding width of the code prior, a multiple of its 4 heads.
    top_m : int, default=64
        Code sequences per image summed in :meth:`score_samples`; larger is
        tighter and slower.
    max_epochs, batch_size, learning_rate, learning_rate_schedule, weight_decay, weight_averaging, validation_fraction, patience, dtype, device, n_devices, compile, random_state, verbose :
        As in :class:`NFImageDensity`. The step budget, ``patience`` and the
        learning-rate schedule apply to each of the two training stages, so
        ``n_steps_`` can reach ``2 * max_steps_``.

    Attributes
    ----------
    code_usage_ : ndarray of shape (n_codes,)
        Fraction of the training images' code positions that take each code.
    n_effective_codes_ : int
        Codes used by the training images.
    module_ : torch.nn.Module
        The fitted ``SequenceLatentFlowDensity``, in eval mode on ``device_``.
    validation_scores_ : list of float
        Top-1 lower bound on the mean validation log-likelihood per check
        (nats, pixel units), joint stage first, then the prior stage.
    device_, preprocessor_, n_iter_, n_steps_, best_step_, converged_, batch_size_, learning_rate_, weight_decay_, max_steps_, validation_interval_, n_threads_, loss_curve_, best_validation_score_, n_parameters_, n_features_in_, feature_names_in_ :
        As in :class:`NFImageDensity`.

    See Also
    --------
    NFImageDensity : The same image flow without codes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from nvf_sklearn import NVFImageDensity
    >>> digits = load_digits().data[:200]
    >>> codes = NVFImageDensity(4, n_levels=17, hidden_channels=4, top_m=4, max_epochs=1, random_state=0).fit(digits)
    >>> codes.predict_codes(digits[:3]).shape      # a 2 x 2 code grid per 8 x 8 image
    (3, 4)
    >>> images, image_codes = codes.sample(2)
    >>> images.shape, image_codes.shape
    ((2, 64), (2, 4))
    """

    _parameter_constraints: dict = {
        **BaseImageDensity._parameter_constraints,
        "n_codes": [Interval(Integral, 1, None, closed="left")],
        "n_downsamples": [Interval(Integral, 0, None, closed="left")],
        "code_dim": [Interval(Integral, 1, None, closed="left")],
        "encoder_channels": [Interval(Integral, 1, None, closed="left")],
        "code_prior_layers": [Interval(Integral, 1, None, closed="left")],
        "code_prior_width": [Interval(Integral, 4, None, closed="left")],
        "top_m": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_codes=16,
        *,
        image_shape=None,
        n_levels=256,
        n_downsamples=2,
        code_dim=8,
        encoder_channels=32,
        code_prior_layers=1,
        code_prior_width=32,
        top_m=64,
        n_scales=1,
        couplings_per_scale=2,
        hidden_channels=32,
        n_blocks=1,
        n_bins=8,
        tail_bound=4.0,
        max_epochs="auto",
        batch_size="auto",
        learning_rate=5e-3,
        learning_rate_schedule="cosine",
        weight_decay=0.0,
        weight_averaging=1.5,
        validation_fraction=0.1,
        patience=10,
        dtype="float32",
        device="auto",
        n_devices=1,
        compile="auto",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            image_shape=image_shape,
            n_levels=n_levels,
            n_scales=n_scales,
            couplings_per_scale=couplings_per_scale,
            hidden_channels=hidden_channels,
            n_blocks=n_blocks,
            n_bins=n_bins,
            tail_bound=tail_bound,
            max_epochs=max_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_schedule=learning_rate_schedule,
            weight_decay=weight_decay,
            weight_averaging=weight_averaging,
            validation_fraction=validation_fraction,
            patience=patience,
            dtype=dtype,
            device=device,
            n_devices=n_devices,
            compile=compile,
            random_state=random_state,
            verbose=verbose,
        )
        self.n_codes = n_codes
        self.n_downsamples = n_downsamples
        self.code_dim = code_dim
        self.encoder_channels = encoder_channels
        self.code_prior_layers = code_prior_layers
        self.code_prior_width = code_prior_width
        self.top_m = top_m

    def _build_model(self, n_features: int, n_rows: int) -> SequenceLatentFlowDensity:
        if self.code_prior_width % CODE_PRIOR_HEADS:
            raise ValueError(
                f"code_prior_width={self.code_prior_width} must be a multiple of the code prior's "
                f"{CODE_PRIOR_HEADS} attention heads; use e.g. {CODE_PRIOR_HEADS * max(1, self.code_prior_width // CODE_PRIOR_HEADS)}."
            )
        return sequence_latent_flow(
            self._image_flow(n_features, context_channels=self.code_dim),
            self.n_codes,
            n_downsamples=self.n_downsamples,
            encoder_channels=self.encoder_channels,
            prior_layers=self.code_prior_layers,
            prior_heads=CODE_PRIOR_HEADS,
            prior_embd=self.code_prior_width,
            top_m=self.top_m,
            n_levels=self.n_levels,
        )

    def _iter_model_rows(self, X: np.ndarray):
        # top_m is read when scoring, so set_params(top_m=...) after a fit takes effect.
        self.module_.top_m = self.top_m
        return super()._iter_model_rows(X)

    def _set_diagnostics(self, X_train: np.ndarray) -> None:
        counts = np.zeros(self.n_codes)
        with torch.no_grad():
            for rows in self._iter_model_rows(X_train + 0.5):  # bin centres
                codes = self.module_.encode(rows)[0].cpu().numpy()
                counts += np.bincount(codes.ravel(), minlength=self.n_codes)
        self.code_usage_ = counts / counts.sum()
        self.n_effective_codes_ = int(np.count_nonzero(counts))

    def score_samples(self, X):
        """Lower bound on the log-density of each image over its ``top_m`` best code sequences.

        ``log sum_{z in top-m(x)} p(z) p(x | z) <= log p(x)``, in nats, for
        dequantised pixels in pixel-level units; exact when
        ``top_m >= n_codes ** L``. The bound never decreases as ``top_m``
        grows.

        Parameters
        ----------
        X : array-like of shape (n_samples, C * H * W)
            Dequantised pixels ``p + u`` (pixel-level units).

        Returns
        -------
        log_density_bound : ndarray of shape (n_samples,)
            Lower bounds on ``log p(x)``; finite, or ``-inf`` outside the
            support (a pixel far outside ``[0, n_levels)``).

        Examples
        --------
        >>> bound = codes.score_samples(digits[:3] + 0.5)  # codes, digits: see the class example
        >>> bound.shape
        (3,)
        """
        return super().score_samples(X)

    def predict_codes(self, X):
        """Most probable code sequence of each image among its ``top_m`` candidates.

        ``argmax_z p(z) p(x | z)`` over the candidates (the exact MAP when
        ``top_m >= n_codes ** L``), in raster order over the code grid.

        Parameters
        ----------
        X : array-like of shape (n_samples, C * H * W)
            Images (pixel levels or dequantised pixels).

        Returns
        -------
        codes : ndarray of shape (n_samples, L)
            Code indices in ``{0, ..., n_codes - 1}``.

        Examples
        --------
        >>> codes.predict_codes(digits[:2]).shape  # codes, digits: see the class example
        (2, 4)
        """
        X = self._validated(X)
        with torch.no_grad():
            chunks = [self.module_.most_likely_codes(rows).cpu().numpy() for rows in self._iter_model_rows(X)]
        return np.concatenate(chunks)
