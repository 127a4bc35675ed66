"""NFImageDensity: a convolutional spline flow over images of integer pixel levels."""

from __future__ import annotations

from ._engine import ImageFlowDensity
from ._image import BaseImageDensity


class NFImageDensity(BaseImageDensity):
    """Density estimation of images with a multi-scale coupling spline flow.

    Rows of X are images of integer pixel levels. They are dequantised with
    uniform noise and modelled by checkerboard and channel spline couplings
    with convolutional conditioners, after a fixed logit pre-transform and
    ``n_scales`` squeezes. ``score_samples`` is the exact log-density of
    dequantised pixels ``p + u`` in pixel-level units; :meth:`bits_per_dim`
    reports test bits per dimension.

    Read more in the :ref:`User Guide <image-flow>`.

    Parameters
    ----------
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of the images in the rows of X. None: one
        channel, square when the number of features is a perfect square
        (784 -> 28 x 28), else a single row of pixels.
    n_levels : int, default=256
        Number of pixel levels: 256 for 8-bit images, 17 for scikit-learn's
        ``load_digits``.
    n_scales : int, default=1
        Squeeze operations; H and W must be divisible by ``2 ** n_scales``.
    couplings_per_scale : int, default=2
        Coupling layers at each scale.
    hidden_channels : int, default=32
        Channels of each conditioner.
    n_blocks : int, default=1
        Residual blocks of each conditioner.
    n_bins : int, default=8
        Bins of each rational-quadratic spline.
    tail_bound : float, default=4.0
        Splines act on ``[-tail_bound, tail_bound]`` in logit space and are
        the identity outside.
    max_epochs : int or "auto", default="auto"
        Training budget: at most this many passes over the training images;
        ``"auto"``: about ``60 * sqrt(n_images)`` steps (at least 1,000),
        with up to two shorter cycles more while validation still improves
        at its end (as in :class:`NFDensity`). The resolved budget is
        ``max_steps_``.
    batch_size : int or "auto", default="auto"
        Images per optimiser step; ``"auto"`` is 64 on a CPU (measured on
        digits: 64 beats 256 per second) and 256 on a GPU (``batch_size_``).
    learning_rate : float, default=5e-3
        Peak Adam learning rate for a batch of 64 images; a batch of ``b``
        uses ``learning_rate * sqrt(b / 64)`` (``learning_rate_``).
    learning_rate_schedule, weight_decay, weight_averaging :
        As in :class:`NFDensity`.
    patience : int, default=10
        As in :class:`NFDensity` (images: more checks, as noisier ones).
    validation_fraction, dtype, device, n_devices, compile, random_state, verbose :
        As in :class:`NFDensity`.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted ``ImageFlowDensity``, in eval mode on ``device_``.
    preprocessor_ : PixelScaler
        The fixed scaling ``y = x / n_levels``.
    device_, n_iter_, n_steps_, best_step_, converged_, batch_size_, learning_rate_, weight_decay_, max_steps_, validation_interval_, n_threads_, loss_curve_, validation_scores_, best_validation_score_, n_parameters_, n_features_in_, feature_names_in_ :
        As in :class:`NFDensity`; validation images are dequantised once.

    See Also
    --------
    NVFImageDensity : The same flow conditioned on a grid of discrete codes.
    NFDensity : A spline flow for tables.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from nvf_sklearn import NFImageDensity
    >>> digits = load_digits().data[:200]          # 8 x 8 images, levels 0..16
    >>> flow = NFImageDensity(n_levels=17, hidden_channels=4, max_epochs=1, random_state=0).fit(digits)
    >>> flow.score_samples(digits[:3] + 0.5).shape  # dequantised pixels, pixel-level units
    (3,)
    >>> images, _ = flow.sample(2)
    >>> images.shape
    (2, 64)
    """

    def __init__(
        self,
        image_shape=None,
        *,
        n_levels=256,
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

    def _build_model(self, n_features: int, n_rows: int) -> ImageFlowDensity:
        return ImageFlowDensity(self._image_flow(n_features), n_levels=self.n_levels)
