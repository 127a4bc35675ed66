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

    Read more in the :ref:`User Guide <flows>`.

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
    tails : {"gaussian", "student_t"}, default="gaussian"
        The flow's base distribution: a standard normal, or independent
        Student-t features whose degrees of freedom are learned (from 30,
        close to a normal). The splines are the identity beyond
        ``tail_bound``, so the base sets how fast the density decays there:
        ``"student_t"`` fits power-law tails (see the user guide).
    dropout : float, default=0.0
        Fraction of the conditioners' hidden units dropped in training.
        :class:`NVFDensity`'s ``"auto"`` adds 0.1 from 16 features up, where
        its per-state parameters overfit; a plain flow was not measured to
        gain from it, so it has none by default (see the user guide).
    max_epochs : int or "auto", default="auto"
        Training budget. An int allows at most that many passes over the
        training rows (``max_epochs * n_rows / batch_size_`` optimiser
        steps); ``"auto"`` sizes the budget by the data: about
        ``8 * sqrt(n_rows)`` steps (at least 250), so 1,600 rows train for
        about 300 steps and 100,000 rows for about 2,500; from 16 features
        up twice as many steps of smaller batches (see ``batch_size``)
        at a faster rate (see ``learning_rate``), which a flow from the
        identity needs there
        (:class:`NVFDensity`, which starts from a Gaussian mixture, trains
        ``6 * sqrt(n_rows)`` steps of smaller batches below 16 features, see
        ``batch_size``, ``9 * sqrt(n_rows)`` steps of its 3-layer flow below
        4,096 rows, and ``2.5 * sqrt(n_rows)`` from 16 up). The resolved
        budget is ``max_steps_``; the learning-rate schedule decays over it
        and early stopping may end it sooner. With ``"auto"``, a fit whose
        best validation check falls in the last tenth of its budget, after a
        last quarter that gained more than 0.01 nats per row on validation,
        is still improving and gets up to two more cycles from its best
        state, each over half the previous budget at half the previous peak
        rate (so ``n_steps_`` can reach ``1.75 * max_steps_``); an int budget
        is never extended.
    batch_size : int or "auto", default="auto"
        Rows per optimiser step. ``"auto"``: on a CPU, a sixteenth of the
        training rows as a power of two between 512 and 1,024 (a CPU step of
        this network costs nearly the same for 256 rows as for 1,024), and
        256 from 16 features up (on 16-D clusters batches of 1,024 stopped
        0.05 to 0.1 nats further from the truth); on a GPU, 4,096 (at most
        the training rows). :class:`NVFDensity` on a CPU below 16 features:
        a 64th of the rows within 256 and 1,024 (each row trains 2 to 4
        states). The value used is ``batch_size_``.
    learning_rate : float or "auto", default="auto"
        Peak Adam learning rate for a batch of 256 rows; a batch of ``b``
        rows uses ``learning_rate * sqrt(b / 256)`` (``learning_rate_``).
        It warms up linearly over the first few steps. ``"auto"``: 3e-3, and
        1e-2 from 16 features up, where the flow's batches of 256 rows
        converge too slowly at 3e-3 for its budget (on the 16-D and 32-D
        clusters the faster rate stopped 0.13 to 0.25 nats closer to the
        truth in 0.8 of the time; see the user guide).
    learning_rate_schedule : {"cosine", "plateau"}, default="cosine"
        ``"cosine"``: decay to 1% over the step budget ``max_steps_``;
        ``"plateau"``: constant, halved after every 5 validation checks
        without improvement.
    weight_decay : float, default=0.0
        Decoupled (AdamW) weight decay of every trained parameter, per unit
        of learning rate (``weight_decay_`` records it). :class:`NVFDensity`
        decays by default, towards its warm start; this flow has no start to
        hold it to.
    weight_averaging : float or None, default=1.5
        Keep an exponential moving average of the weights over about this
        many epochs (between 4% and 10% of the step budget); validation,
        early stopping and the kept model use it. None: the raw weights.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping and best-model
        selection. With 0, the training loss is monitored instead.
    patience : int, default=6
        Validation checks without improvement before training stops; it
        stops only once an eighth of the step budget has also passed since
        the best check. Checks come every ``validation_interval_`` steps:
        about fifty per budget, but never so often that scoring the
        validation rows (exactly, every state) costs more than a fifth of
        the training between checks.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the model and its computations.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``. Outputs are always NumPy arrays. With
        several GPUs, ``"auto"`` in a joblib worker (``GridSearchCV(n_jobs=N)``)
        takes the GPU ``process id % n_gpus``, so parallel fits spread over
        the devices.
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
        back to eager training with a warning; ``compile_`` says whether the
        step ran captured.
    random_state : int, RandomState instance or None, default=None
        Controls initialisation, the validation split, batch order and the
        sampling stream. The global NumPy and torch generators are left
        untouched when it is set.
    verbose : int, default=0
        1: one progress line, updated in place (step, validation score, time
        left); 2: one line per validation check; 0: silent, as scikit-learn
        estimators are.

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
        Passes over the training rows run (``n_steps_`` in epochs, rounded).
    n_steps_ : int
        Optimiser steps run.
    best_step_ : int
        Step whose weights were kept (0: the initial model).
    converged_ : bool
        True when early stopping ended training.
    batch_size_, learning_rate_, max_steps_, validation_interval_ : int, float, int, int
        What ``batch_size``, ``learning_rate`` and ``max_epochs`` resolved to
        for this fit: rows per step, peak learning rate, step budget, and the
        steps between validation checks.
    dropout_ : float
        The dropout the conditioners trained with.
    weight_decay_ : float
        The weight decay of the fit.
    compile_ : bool
        Whether the training step ran captured (``compile`` resolved, and
        the capture succeeded).
    n_threads_ : int
        CPU threads the fit ran on: the cores this process was given
        (``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS`` and
        joblib's workers), or one where a step is too small to share.
    loss_curve_ : list of float
        Mean training negative log-likelihood over the steps before each
        validation check (nats, units of X).
    validation_scores_ : list of float
        Mean validation log-likelihood at each check (nats, units of X);
        empty when ``validation_fraction=0``.
    best_validation_score_ : float or None
        Best of ``start_validation_score_`` and ``validation_scores_``: the
        score of the model kept.
    start_validation_score_ : float or None
        Mean validation log-likelihood of the model training started from
        (the first candidate of model selection; ``best_step_ == 0`` when it
        is the one kept).
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
        tails="gaussian",
        dropout=0.0,
        max_epochs="auto",
        batch_size="auto",
        learning_rate="auto",
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
            tails=tails,
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
    _budget_rule = dataclasses.replace(TabularFlowDensity._budget_rule, steps_per_sqrt_row=8.0)
    #: From ``MANY_FEATURES`` features up: batches of 256 rows for twice the steps, at a faster rate. On 29,491 rows of
    #: the 16-D skewed clusters (data seeds 0 / 1) batches of 1,024 at 3e-3 (1,148 / 1,176 steps) stopped 0.726 / 0.639
    #: nats from the truth, batches of 256 for 24 sqrt(n) steps 0.619 / 0.597. At 1e-2 for 16 sqrt(n) steps (seeds
    #: 0 / 1 / 2) 0.494 / 0.465 / 0.469 against 0.637 / 0.591 / 0.601, in 0.8 of the time; the 32-D clusters 1.629 /
    #: 1.475 -> 1.377 / 1.295, the rotated 16-D clusters 1.665 / 1.632 -> 1.641 / 1.618. 2e-2 was better still on the
    #: skewed clusters but 0.17 nats worse on the rotated ones (``benchmarks/results/nf_wide_rate.md``).
    _wide_budget_rule = dataclasses.replace(_budget_rule, min_batch=256, max_batch=256, steps_per_sqrt_row=16.0,
                                            learning_rate=1e-2)  # fmt: skip

    def _build_model(self, n_features: int, n_rows: int) -> FlowDensity:
        return FlowDensity(self._spline_flow(n_features, self.n_layers))
