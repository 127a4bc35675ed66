"""NFDensity: a neural spline flow density estimator (the K = 1 case of the engine)."""

from __future__ import annotations

from ._base import BaseFlowDensity
from ._engine.density import FlowDensity
from ._engine.flows import spline_flow
from ._engine.image_flow import ImageFlow, ImageFlowDensity


class NFDensity(BaseFlowDensity):
    """Density estimation with a coupling neural spline flow.

    A chain of rational-quadratic spline coupling layers (Durkan et al., 2019)
    maps standardised data to a standard normal; ``score_samples`` is the
    exact log-density by the change of variables, in the units of X.
    It is the one-state case of :class:`NVFDensity`, with the same methods, so
    the two swap freely in pipelines: ``predict_cluster`` returns zeros and
    ``predict_proba`` a column of ones.

    With ``image_shape`` the model is an image flow instead: rows of X are
    images of integer pixel levels, modelled after uniform dequantisation by
    checkerboard and channel spline couplings with convolutional conditioners
    (see the user guide, "Images").

    Parameters
    ----------
    n_layers : int, default=5
        Number of coupling layers (per scale, for images).
    hidden_size : int, default=64
        Width of each conditioner MLP (channels of each conditioner, for
        images).
    n_hidden_layers : int, default=2
        Hidden layers per conditioner MLP (residual blocks, for images).
    n_bins : int, default=8
        Bins of each rational-quadratic spline.
    tail_bound : float, default=5.0
        Splines act on ``[-tail_bound, tail_bound]`` in standardised units and
        are the identity outside, so far-away points get finite densities.
    lu_linear : bool, default=True
        Insert a learned LU-factorised linear layer before each coupling layer
        (tables only).
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)``: treat each row of X as an image of that
        shape, of integer pixel levels in ``{0, ..., n_levels - 1}``. Scores
        are then densities of the dequantised pixels ``p + u`` in pixel-level
        units (one quantisation bin has volume one), and
        :meth:`bits_per_dim` is available.
    n_levels : int, default=256
        Number of pixel levels (images only): 256 for 8-bit images, 17 for
        scikit-learn's ``load_digits``.
    n_scales : int, default=1
        Squeeze operations of the image flow (images only); H and W must be
        divisible by ``2 ** n_scales``.
    max_epochs : int, default=200
        Largest number of passes over the training data.
    batch_size : int, default=256
        Rows per gradient step.
    learning_rate : float, default=1e-3
        Initial Adam learning rate; it follows a cosine decay over
        ``max_epochs``.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping and best-model
        selection. With 0, the training loss is monitored instead.
    patience : int, default=20
        Epochs without validation improvement before training stops.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the model and its computations.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``. Outputs are always NumPy arrays.
    n_devices : int, default=1
        Data-parallel processes for ``fit`` (``torch.distributed``): one per
        GPU ``cuda:0 .. cuda:{n_devices - 1}`` with NCCL when ``device`` is
        CUDA, else CPU processes with gloo that share the cores. Each process
        trains on its shard of every epoch, so the global batch is
        ``n_devices * batch_size`` rows. Under ``torchrun`` keep 1: a fit
        inside an initialised process group trains data-parallel on it.
    random_state : int, RandomState instance or None, default=None
        Controls initialisation, the validation split, batch order and the
        sampling stream. No global seed is touched.
    verbose : int, default=0
        Print one line per epoch when positive.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted flow (``FlowDensity``), in eval mode on ``device_``.
    device_ : str
        Device the model lives on.
    location_, scale_ : ndarray of shape (`n_features_in_`,)
        Standardisation fitted on the training rows.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial model).
    converged_ : bool
        True when early stopping ended training.
    loss_curve_ : list of float
        Mean training negative log-likelihood per epoch (nats, units of X).
    validation_scores_ : list of float
        Mean validation log-likelihood per epoch (nats, units of X); empty
        when ``validation_fraction=0``.
    best_validation_score_ : float or None
        Best entry of ``validation_scores_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    NVFDensity : The same flow conditioned on a learned discrete latent state.
    sklearn.mixture.GaussianMixture : Gaussian mixture density.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from nvf_sklearn import NFDensity
    >>> X, _ = make_moons(500, noise=0.05, random_state=0)
    >>> est = NFDensity(max_epochs=5, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> X_new, y_new = est.sample(4)
    >>> X_new.shape
    (4, 2)
    """

    def __init__(
        self,
        n_layers=5,
        *,
        hidden_size=64,
        n_hidden_layers=2,
        n_bins=8,
        tail_bound=5.0,
        lu_linear=True,
        image_shape=None,
        n_levels=256,
        n_scales=1,
        max_epochs=200,
        batch_size=256,
        learning_rate=1e-3,
        validation_fraction=0.1,
        patience=20,
        dtype="float32",
        device="auto",
        n_devices=1,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_layers=n_layers,
            hidden_size=hidden_size,
            n_hidden_layers=n_hidden_layers,
            n_bins=n_bins,
            tail_bound=tail_bound,
            lu_linear=lu_linear,
            image_shape=image_shape,
            n_levels=n_levels,
            n_scales=n_scales,
            max_epochs=max_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_fraction=validation_fraction,
            patience=patience,
            dtype=dtype,
            device=device,
            n_devices=n_devices,
            random_state=random_state,
            verbose=verbose,
        )

    def _build_module(self, n_features: int) -> FlowDensity | ImageFlowDensity:
        if self._is_image_model():
            flow = ImageFlow(self._image_shape(n_features), **self._image_flow_settings())
            return ImageFlowDensity(flow, n_levels=self.n_levels)
        return FlowDensity(
            spline_flow(
                n_features,
                n_layers=self.n_layers,
                hidden_size=self.hidden_size,
                n_hidden_layers=self.n_hidden_layers,
                n_bins=self.n_bins,
                tail_bound=self.tail_bound,
                lu_linear=self.lu_linear,
            )
        )
