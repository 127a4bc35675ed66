"""NFDensity: a neural spline flow density estimator for tables (the K = 1 case of the engine)."""

from __future__ import annotations

import dataclasses

from ._engine import FlowDensity
from ._tabular import TabularFlowDensity


class NFDensity(TabularFlowDensity):
    """Density estimation with a coupling neural spline flow.

    A chain of rational-quadratic spline coupling layers (Durkan et al., 2019)
    maps standardised data to a standard normal; ``score_samples`` is the
    exact log-density by the change of variables, in the units of X.
    It is the one-state case of :class:`NVFDensity`, with the same methods, so
    the two swap freely in pipelines: ``predict_cluster`` returns zeros and
    ``predict_proba`` a column of ones. For images of pixel levels use
    :class:`NFImageDensity`.

    Parameters
    ----------
    n_layers : int, default=5
        Number of coupling layers.
    hidden_size : int, default=64
        Width of each conditioner MLP.
    n_hidden_layers : int, default=2
        Hidden layers per conditioner MLP.
    n_bins : int, default=8
        Bins of each rational-quadratic spline.
    tail_bound : float, default=5.0
        Splines act on ``[-tail_bound, tail_bound]`` in standardised units and
        are the identity outside, so far-away points get finite densities.
    lu_linear : bool, default=True
        Insert a learned LU-factorised linear layer before each coupling layer.
    dropout : float, default=0.0
        Fraction of the conditioners' hidden units dropped in training
        (measured: it helps NVFDensity on 10,000 rows, not on 32,768, and
        slows NFDensity's convergence; see the user guide).
    max_epochs : int, default=200
        Largest number of passes over the training data.
    batch_size : int or "auto", default="auto"
        Rows per gradient step; ``"auto"`` is 256.
    learning_rate : float, default=1e-3
        Adam learning rate. It warms up linearly over the first 3 epochs.
    learning_rate_schedule : {"plateau", "cosine"}, default="plateau"
        ``"plateau"``: halve the learning rate after every ``patience // 4``
        epochs without a validation improvement, so its decay follows the
        epochs actually run; ``"cosine"``: decay it to 1% over ``max_epochs``.
    weight_decay : float, default=0.0
        Decoupled (AdamW) weight decay of every trained parameter.
    weight_averaging : float or None, default=1.5
        Keep an exponential moving average of the weights over about this
        many epochs; validation, early stopping and the kept model use it.
        None: the raw weights.
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
    compile : bool or "auto", default="auto"
        Capture the training step as one compiled graph (``torch.compile``;
        CUDA graphs on a GPU). ``"auto"``: on for CUDA, off for the CPU, where
        compiling costs minutes for little gain. A capture that fails falls
        back to eager training with a warning.
    random_state : int, RandomState instance or None, default=None
        Controls initialisation, the validation split, batch order and the
        sampling stream. The global NumPy and torch generators are left
        untouched when it is set.
    verbose : int, default=0
        1: one progress line, updated in place (epoch, validation score, time
        left); 2: one line per epoch; 0: silent, as scikit-learn estimators are.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted flow (``FlowDensity``), in eval mode on ``device_``.
    device_ : str
        Device the model lives on.
    preprocessor_ : object
        The fitted standardisation; ``location_`` and ``scale_`` are its
        per-feature location and scale, each of shape (`n_features_in_`,).
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
    n_parameters_ : int
        Trainable parameters of the density (what :meth:`bic` counts).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    NVFDensity : The same flow conditioned on a learned discrete latent state.
    NFImageDensity : A convolutional spline flow for images.
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
        dropout=0.0,
        max_epochs="auto",
        batch_size="auto",
        learning_rate=3e-3,
        learning_rate_schedule="cosine",
        weight_decay=0.0,
        weight_averaging=1.5,
        validation_fraction=0.1,
        patience=6,
        dtype="float32",
        device="auto",
        n_devices=1,
        compile="auto",
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
            dropout=dropout,
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

    #: A flow from the identity needs more steps than NVF's warm-started states (measured, see the user guide).
    _budget_rule = dataclasses.replace(TabularFlowDensity._budget_rule, steps_per_sqrt_row=4.0)

    def _build_model(self, n_features: int) -> FlowDensity:
        return FlowDensity(self._spline_flow(n_features))
