"""NVFDensity: a neural spline flow conditioned on a learned K-state latent variable (tables)."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch

from ._budget import BudgetRule
from ._compat import Interval, StrOptions
from ._engine import LatentFlowDensity, TrainingData, TrainingResult
from ._engine.tails import INITIAL_DOF
from ._engine.training import validation_loss
from ._nvf_start import (
    START_INITS,
    START_MAX_INITS,
    MixtureStart,
    diagonal_part,
    fit_start,
    independent_frames,
    state_tails,
)
from ._tabular import MANY_FEATURES, TabularFlowDensity, posterior

#: ``state_affine="auto"``: a full matrix per state at most up to this many features (it costs K d^2 parameters).
FULL_AFFINE_MAX_FEATURES = 64
#: Full state maps are turned to each cluster's independent axes from this many features up: on 2-D two moons
#: (curved clusters, which the shared couplings straighten better in the Cholesky frame) turning cost 0.013 nats.
FRAME_MIN_FEATURES = 3
#: Fewer training rows than this make a small table: ``n_layers="auto"`` builds ``SMALL_TABLE_LAYERS`` coupling layers
#: instead of ``LAYERS``, and below ``MANY_FEATURES`` features they train 9 sqrt(n) steps instead of 6 sqrt(n), for
#: about the same arithmetic. Two moons, 2,000 rows, data seeds 0 / 1 / 2: with K = 2 -0.333 -> -0.324 nats per row
#: in the same time (2.6 / 2.5 s), K = 4 to 16 within 0.002; iris, wine, diabetes and breast cancer within their
#: seed-to-seed noise (``python -m benchmarks.small_tables``, ``benchmarks/results/nvf_small.md``).
SMALL_TABLE_ROWS = 4_096
LAYERS, SMALL_TABLE_LAYERS = 5, 3
#: ``learning_rate="auto"`` per 256 rows, except from ``MANY_FEATURES`` features up with full state maps, where the
#: template's 3e-3 stays (``NVFDensity._budget_rule_for``).
FAST_LEARNING_RATE = 4.5e-3
#: ``state_splines="auto"``: below ``MANY_FEATURES`` features each state gets its own splines where there are at least
#: this many training rows per state (from 16 features up always: without them the 32-D clusters with K = 32 and 922
#: rows per state ended 0.420 nats from the truth instead of 0.383). 8-D skewed clusters (K = 32, 14,746 / 29,491 rows, 461 / 922 per state): 0.124 / 0.127 and 0.060 nats from
#: the truth with them, 0.112 / 0.103 and 0.051 without; K = 12 on 14,746 rows (1,229 per state): 0.075 / 0.077 with
#: them, 0.075 / 0.081 without (``benchmarks/results/nvf_batch.md``).
STATE_SPLINE_MIN_ROWS = 1_000
#: ``training_states="auto"``: the states a row needs under the warm start plus one explored, within these bounds.
AUTO_TRAINING_STATES = (2, 4)
#: ``dropout="auto"`` drops this fraction of the conditioners' hidden units from ``MANY_FEATURES`` features up, where
#: the per-state parameters overfit (measured, see the user guide), none below.
AUTO_DROPOUT = 0.1
#: Feature counts where weight decay spares the warm start's own parameters (state locations, maps, weights, tails)
#: and ``weight_decay="auto"`` pulls the networks harder towards the identity, i.e. towards that start: 3 to 15.
#: From 16 up decay of the per-state parameters is what keeps them from overfitting; in 2-D the couplings' networks
#: carry the whole shape (curved clusters), and strong decay cost the README's two-moons search (measured).
START_SPARED_FEATURES = range(3, MANY_FEATURES)
#: ``weight_decay="auto"``: the strong decay within ``START_SPARED_FEATURES``, the mild one outside.
STRONG_WEIGHT_DECAY, MILD_WEIGHT_DECAY = 2.0, 0.5


class NVFDensity(TabularFlowDensity):
    """Normalizing Variational Flow: a mixture of K conditional spline flows.

    The density is ``p(x) = sum_k pi_k p_flow(x | k)``: one neural spline flow
    shared by all states and conditioned on the state k, so each state only
    has to transport one mode of the data. Training uses either the exact
    marginal likelihood (K passes per point, batched) or the ELBO with an
    amortised encoder q(k | x) sampled by straight-through Gumbel-softmax
    (one flow pass per point). Scoring is always exact: ``score_samples`` is
    the log-sum-exp over all K states, ``predict_proba`` the exact posterior
    p(k | x), not the encoder's guess. For images use :class:`NVFImageDensity`.

    Read more in the :ref:`User Guide <nvf-model>`.

    Parameters
    ----------
    n_latent : int, default=8
        Number of latent states K. ``n_latent=1`` is a plain flow.
    objective : {"exact", "elbo"}, default="exact"
        Training objective: the exact log-likelihood, or the single-sample
        ELBO of the NVF paper (cheaper per step for large K).
    mixture_weights : {"learned", "uniform"}, default="learned"
        Whether the state weights pi are learned or fixed at 1/K.
    init_params : {"gmm", "kmeans", "random"}, default="gmm"
        Warm start of the states: ``"gmm"`` starts each state as one
        component of a full-covariance ``GaussianMixture`` (below 16 features
        fitted on at most 20,000 rows; the best of 10 EM runs from 4,096
        training rows and 500 per state up to 4 million row-states, else of
        3), so the model starts as that mixture, or with
        ``tails="student_t"`` of a mixture of multivariate Student-t
        distributions where it wins by BIC (heavy-tailed clusters); ``"kmeans"`` as one
        k-means cluster's Gaussian; ``"random"`` at randomly chosen training
        rows. The encoder, if any, is pre-fitted to the starting assignments.
    state_affine : {"auto", "diagonal", "full"}, default="auto"
        Each state's first layer is an affine map with a diagonal or a full
        invertible (LU-factorised) matrix, starting at the whitening transform
        of the state's starting component (a full one turned to the
        component's independent axes where they are found, see the user
        guide); a full one can learn any orientation and costs ``K * d**2``
        parameters. ``"auto"``: full when
        the warm start's full covariances beat their diagonals by BIC (the
        clusters are correlated) and there are at most 64 features, else
        diagonal; ``state_affine_`` says which. On uncorrelated clusters the
        extra ``K * d * (d - 1)`` parameters only overfit (measured at 16 and
        32 features, see the user guide). Where BIC chooses the diagonal map,
        the full-covariance mixture itself stays a candidate of model
        selection: the fit keeps it, untrained, if it scores better on
        validation than every trained checkpoint (on few rows BIC's penalty
        can turn down correlations that are really there).
    state_splines : bool or "auto", default="auto"
        After the state's affine map, give every state its own element-wise
        spline per feature (the skew and tails of its marginals), for
        ``K * d * (3 * n_bins - 1)`` parameters. ``"auto"``: from 16
        features up, and below where there are at least 1,000 training rows
        per state; with fewer they overfit (8-D clusters with K = 32: 0.125
        nats from the truth with them on 14,746 rows, 0.108 without), but a
        32-D state needs them (0.383 with, 0.420 without, K = 32 on 29,491
        rows; see the user guide). ``state_splines_`` says which.
    training_states : int, "auto" or None, default="auto"
        With the exact objective, train each row on this many of the states
        only: the ones most responsible for it (re-ranked at every step) and
        ``max(1, training_states // 4)`` random others, for
        ``training_states`` rather than K flow passes per row. ``"auto"``:
        the states a row needs to hold 99% of its posterior under the warm
        start (for 90% of the rows), plus one random, from 2 to 4: 2 for
        well-separated clusters, more where states overlap (low dimensions,
        or more states than clusters); ``training_states_`` says which.
        None (or at least K): all K states. Validation, early stopping and
        every score stay exact over all K.
    encoder_hidden_sizes : tuple of int, default=(256, 256, 256)
        Hidden layers of the encoder MLP q(k | x); only ``objective="elbo"``
        builds and trains an encoder (set with ``"exact"``, it warns).
    temperature_start, temperature_end : float, default=1.0, 1.0
        Gumbel-softmax temperature of the ELBO, annealed geometrically from
        start to end over the step budget; the default is the original fixed
        tau = 1, which measured better than annealing (see the user guide).
        Only ``objective="elbo"`` uses them.
    n_layers : int or "auto", default="auto"
        Number of coupling layers. ``"auto"``: 3 for fewer than 4,096
        training rows, else 5; a small table trains its shallower flow for
        more steps (two moons, 1,800 rows, K = 2: -0.324 nats per row instead
        of -0.333 in the same time; see the user guide). ``n_layers_`` says
        which.
    hidden_size : int, default=64
        Width of each conditioner MLP.
    n_hidden_layers : int, default=2
        Hidden layers per conditioner MLP.
    n_bins : int, default=8
        Bins of each rational-quadratic spline.
    tail_bound : float, default=5.0
        Splines act on ``[-tail_bound, tail_bound]`` (standardised units) and
        are the identity outside.
    lu_linear : bool, default=True
        Insert a learned LU-factorised linear layer before each coupling layer.
    tails : {"gaussian", "student_t"}, default="student_t"
        Each state's base distribution: independent Student-t features with
        degrees of freedom learned per state and feature, started by maximum
        likelihood on the state's starting component (a Gaussian cluster
        starts at 300, within 0.0002 nats per feature of a normal), so each
        cluster can have power-law tails and one extreme row cannot dominate
        the gradient; or a standard normal (see the user guide).
    dropout : float or "auto", default="auto"
        Fraction of the conditioners' hidden units dropped in training.
        ``"auto"``: 0.1 from 16 features up, none below (measured on skewed
        clusters: see the user guide); ``dropout_`` says which.
    weight_decay : float or "auto", default="auto"
        Decoupled (AdamW) weight decay per unit of learning rate. It pulls
        the flow's networks towards the identity, that is, the model towards
        its warm start. From 3 to 15 features the parameters the warm start
        sets (state locations and maps, state weights, tails) are spared;
        with 2 features or 16 and more they decay too, which keeps them from
        overfitting at 16 features and more. ``"auto"``: 2.0 from 3 to 15
        features, else 0.5 (measured: see the user guide);
        ``weight_decay_`` says which.
    learning_rate : float or "auto", default="auto"
        Peak learning rate for batches of 256 rows; a batch of ``b`` rows
        uses ``learning_rate * sqrt(b / 256)`` (``learning_rate_``).
        ``"auto"``: 4.5e-3, but 3e-3 from 16 features up where the states
        have full maps: there weight decay acts on the maps too, and a faster
        rate decays the rotations they hold (measured: see the user guide).
    max_epochs, batch_size, learning_rate_schedule, weight_averaging, validation_fraction, patience, dtype, device, n_devices, compile, verbose :
        As in :class:`NFDensity`.
    random_state : int, RandomState instance or None, default=None
        Controls the warm start, initialisation, the split, batches, Gumbel
        noise and the sampling stream; the global generators are untouched.

    Attributes
    ----------
    weights_ : ndarray of shape (n_latent,)
        State weights pi.
    state_usage_ : ndarray of shape (n_latent,)
        Mean exact posterior p(k | x) over the training rows (not set when a
        fit is interrupted while it is computed).
    n_effective_latent_ : int
        States that carry at least one training row's worth of posterior mass.
    n_layers_ : int
        Coupling layers built (what ``n_layers="auto"`` chose).
    state_splines_ : bool
        Whether each state has its own splines (what ``state_splines="auto"``
        chose).
    state_affine_ : {"diagonal", "full"}
        The state map the fit used (what ``state_affine="auto"`` chose).
    training_states_ : int or None
        States trained per row (what ``training_states`` resolved to; K when
        all are trained; None with ``objective="elbo"``).
    module_ : torch.nn.Module
        The fitted ``LatentFlowDensity``, in eval mode on ``device_``.
    device_, preprocessor_, n_iter_, n_steps_, best_step_, converged_, batch_size_, learning_rate_, weight_decay_, max_steps_, validation_interval_, n_threads_, n_parameters_, n_features_in_, feature_names_in_ :
        As in :class:`NFDensity`.
    loss_curve_ : list of float
        Training objective over the steps before each check (negative
        log-likelihood, or negative ELBO, nats per sample in the units of X).
    validation_scores_ : list of float
        Exact mean validation log-likelihood at each check (nats, units of X).
    best_validation_score_ : float or None
        Best of ``start_validation_score_`` and ``validation_scores_``: the
        score of the model kept.
    start_validation_score_ : float or None
        Exact mean validation log-likelihood of the warm start (the starting
        mixture; the better of the diagonal and the full one where
        ``state_affine="auto"`` held both), the first candidate of model
        selection: a fit never ends below it on validation, and
        ``best_step_ == 0`` says the warm start itself was kept (as on data
        that are a Gaussian mixture).

    See Also
    --------
    NFDensity : The same flow without a latent state.
    NVFImageDensity : The latent-state flow for images: a grid of discrete codes.
    sklearn.mixture.GaussianMixture : Gaussian mixture density.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from nvf_sklearn import NVFDensity
    >>> X, y = make_blobs(600, centers=3, random_state=0)
    >>> est = NVFDensity(n_latent=3, max_epochs=5, random_state=0).fit(X)
    >>> est.predict_proba(X[:2]).shape
    (2, 3)
    >>> X_new, k_new = est.sample(4)
    >>> X_new.shape, k_new.shape
    ((4, 2), (4,))
    """

    _parameter_constraints: dict = {
        **TabularFlowDensity._parameter_constraints,
        "n_latent": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "objective": [StrOptions({"exact", "elbo"})],
        "mixture_weights": [StrOptions({"learned", "uniform"})],
        "init_params": [StrOptions({"kmeans", "gmm", "random"})],
        "state_affine": [StrOptions({"auto", "diagonal", "full"})],
        "state_splines": ["boolean", StrOptions({"auto"})],
        "training_states": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"}), None],
        "encoder_hidden_sizes": [tuple, list],
        "temperature_start": [Interval(Real, 0, None, closed="neither")],
        "temperature_end": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "weight_decay": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        n_latent=8,
        *,
        objective="exact",
        mixture_weights="learned",
        init_params="gmm",
        state_affine="auto",
        state_splines="auto",
        training_states="auto",
        encoder_hidden_sizes=(256, 256, 256),
        temperature_start=1.0,
        temperature_end=1.0,
        n_layers="auto",
        hidden_size=64,
        n_hidden_layers=2,
        n_bins=8,
        tail_bound=5.0,
        lu_linear=True,
        tails="student_t",
        dropout="auto",
        max_epochs="auto",
        batch_size="auto",
        learning_rate="auto",
        learning_rate_schedule="cosine",
        weight_decay="auto",
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
        self.n_latent = n_latent
        self.objective = objective
        self.mixture_weights = mixture_weights
        self.init_params = init_params
        self.state_affine = state_affine
        self.state_splines = state_splines
        self.training_states = training_states
        self.encoder_hidden_sizes = encoder_hidden_sizes
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end

    _fitted_start = True  # a Gaussian mixture: on Gaussian clusters it is rightly kept

    #: Below ``MANY_FEATURES`` features: batches of a 64th of the rows within [256, 1024] (a step trains 2 to 4 states
    #: per row, so 256 rows are already 512 to 1,024 row-passes) for 6 sqrt(n) steps. 8-D skewed clusters, K = 12: on
    #: 14,746 rows, batches of 1,024 for 2.5 sqrt(n) steps stopped 0.087 / 0.092 nats from the truth, these 0.072 /
    #: 0.077 (data seeds 0 / 1); on 29,491 rows 0.047 -> 0.042 (seed 0). From 16 features up the template's larger
    #: batches stay: there weight decay acts on the states' full maps too, and the longer budget decayed the rotated
    #: 16-D clusters' maps from 0.369 to 0.593 nats (``benchmarks/results/nvf_batch.md``). ``learning_rate="auto"``
    #: is 4.5e-3 here: 8-D clusters on 14,746 rows 0.076 -> 0.070 nats (K = 12) and
    #: 0.108 -> 0.099 (K = 32), the rotated t clusters 0.118 / 0.054 / 0.039 -> 0.112 / 0.046 / 0.035 (2,000 / 8,000 /
    #: 16,000 rows), the rest within 0.007 (``benchmarks/results/nvf_learning_rate.md``).
    _budget_rule = dataclasses.replace(TabularFlowDensity._budget_rule, min_batch=256, batch_rows_fraction=1 / 64,
                                       steps_per_sqrt_row=6.0, learning_rate=FAST_LEARNING_RATE)  # fmt: skip
    #: Small narrow tables (fewer than ``SMALL_TABLE_ROWS`` rows) train their shallower flow for longer.
    _small_table_budget_rule = dataclasses.replace(_budget_rule, steps_per_sqrt_row=9.0)
    #: From 16 features up the template's budget, at 4.5e-3 where the states' maps are diagonal: 16-D clusters 0.148 /
    #: 0.146 -> 0.104 / 0.107 nats, 32-D 0.383 / 0.353 -> 0.280 / 0.249 (0.107 / 0.106 and 0.303 / 0.247 with the
    #: start on every row, ``_nvf_start.start_rows``). Full maps keep 3e-3: weight decay (rate times
    #: decay per step) acts on them there, and 4.5e-3 took the rotated 16-D clusters from 0.369 to 0.551 (sparing the
    #: maps from decay did not help: 0.494; ``benchmarks/results/nvf_learning_rate.md``).
    _wide_diagonal_budget_rule = dataclasses.replace(TabularFlowDensity._wide_budget_rule,
                                                     learning_rate=FAST_LEARNING_RATE)  # fmt: skip

    def _budget_rule_for(self, n_features: int, n_rows: int) -> BudgetRule:
        """The narrow, small-table or wide budget; a wide table's depends on the state map its start chose."""
        if n_features < MANY_FEATURES:
            return self._small_table_budget_rule if n_rows < SMALL_TABLE_ROWS else self._budget_rule
        return self._wide_budget_rule if self.state_affine_ == "full" else self._wide_diagonal_budget_rule

    def _check_training_rows(self, n_train: int) -> None:
        if self.n_latent > n_train:
            raise ValueError(
                f"n_latent={self.n_latent} exceeds the {n_train} training rows; decrease n_latent or pass more data."
            )

    def _weight_decay(self) -> float:
        if self.weight_decay == "auto":
            spared = self.n_features_in_ in START_SPARED_FEATURES
            return STRONG_WEIGHT_DECAY if spared else MILD_WEIGHT_DECAY
        return self.weight_decay

    def _build_model(self, n_features: int, n_rows: int) -> LatentFlowDensity:
        self._warn_about_unused_parameters()
        self.state_splines_ = self._state_splines(n_features, n_rows)
        self.n_layers_ = self._n_layers(n_rows)
        return LatentFlowDensity(
            self._spline_flow(
                n_features,
                self.n_layers_,
                context_size=self.n_latent,
                state_affine=self._state_affine(n_features),
                state_splines=self.state_splines_,
            ),
            self.n_latent,
            encoder_hidden_sizes=tuple(self.encoder_hidden_sizes),
            objective=self.objective,
            learn_weights=self.mixture_weights == "learned",
            temperature_start=self.temperature_start,
            temperature_end=self.temperature_end,
            training_states=self._training_states(),
            spare_start=n_features in START_SPARED_FEATURES,
        )

    def _warn_about_unused_parameters(self) -> None:
        """Warn once per fit about each parameter set away from its default that the chosen objective ignores."""
        defaults = type(self)().get_params()
        unused = {"exact": ("encoder_hidden_sizes", "temperature_start", "temperature_end"),
                  "elbo": ("training_states",)}[self.objective]  # fmt: skip
        for name in unused:
            value = getattr(self, name)
            if value != defaults[name] and not (name == "encoder_hidden_sizes" and tuple(value) == defaults[name]):
                other = "elbo" if self.objective == "exact" else "exact"
                warnings.warn(
                    f"{name}={value!r} has no effect with objective={self.objective!r}; it is used only with "
                    f"objective={other!r}.",
                    UserWarning,
                    stacklevel=5,
                )

    def _training_states(self) -> int | None:
        """The states trained per row, as built (``"auto"`` builds the most it may choose; the start decides)."""
        return AUTO_TRAINING_STATES[1] if self.training_states == "auto" else self.training_states

    def _dropout(self, n_features: int) -> float:
        if self.dropout == "auto":
            return AUTO_DROPOUT if n_features >= MANY_FEATURES else 0.0
        return self.dropout

    def _n_layers(self, n_rows: int) -> int:
        if self.n_layers == "auto":
            return SMALL_TABLE_LAYERS if n_rows < SMALL_TABLE_ROWS else LAYERS
        return self.n_layers

    def _state_splines(self, n_features: int, n_rows: int) -> bool:
        if self.state_splines == "auto":
            return n_features >= MANY_FEATURES or n_rows >= STATE_SPLINE_MIN_ROWS * self.n_latent
        return bool(self.state_splines)

    def _state_affine(self, n_features: int) -> str:
        if self.state_affine == "auto":
            return "full" if n_features <= FULL_AFFINE_MAX_FEATURES else "diagonal"
        return self.state_affine

    def _initialize_model(self, model, z_train, w_train, generator, rng) -> None:
        """Start each state at one component of a mixture fitted to the standardised rows."""
        Z, w = z_train.cpu().numpy().astype(np.float64), w_train.cpu().numpy().astype(np.float64)
        self.state_affine_ = self._state_affine(Z.shape[1])
        undecided = self.state_affine == "auto" and self.state_affine_ == "full"  # the data decide
        auto_states = self.training_states == "auto" and self.objective == "exact"
        # A small table's whole fit takes seconds: more EM runs would cost a large share of it.
        max_inits = START_INITS if len(Z) < SMALL_TABLE_ROWS else START_MAX_INITS
        start = fit_start(Z, w, self.n_latent, self.init_params, rng, compare_covariances=undecided,
                          measure_overlap=auto_states, heavy_tailed=self.tails == "student_t",
                          max_inits=max_inits)  # fmt: skip
        if undecided and not start.full_covariances_pay:
            # BIC's penalty is harsh on few rows: the full mixture itself stays a candidate of model selection.
            self._full_start = copy.deepcopy(model)
            self._start_states(self._full_start, Z, start, "full", copy.deepcopy(rng), turn_frames=False)
            self.state_affine_ = "diagonal"
            model.flow.layers[0].restrict_to_diagonal()
        self._start_states(model, Z, start, self.state_affine_, rng, turn_frames=True)
        if auto_states:  # the start's overlap decides
            low, high = AUTO_TRAINING_STATES
            chosen = min(max(start.states_per_row + 1, low), high)
            model.training_states = chosen if chosen < self.n_latent else None
        exact = self.objective == "exact"
        self.training_states_ = (model.training_states or self.n_latent) if exact else None
        model.fit_encoder(z_train, torch.as_tensor(start.labels, dtype=torch.long, device=z_train.device), generator)

    def _start_states(self, model: LatentFlowDensity, Z: np.ndarray, start: MixtureStart, affine: str,
                      rng: np.random.RandomState, turn_frames: bool) -> None:  # fmt: skip
        """Set ``model``'s states (locations, maps, weights, tails) to the start's mixture, with ``affine`` maps.

        ``turn_frames``: a full map is turned to each cluster's independent
        axes (from ``FRAME_MIN_FEATURES`` features up), along which the
        per-feature tails and splines act; unturned, the maps are the
        covariances' Cholesky factors, the same mixture.
        """
        full = affine == "full"
        covariances = start.covariances if full else diagonal_part(start.covariances)
        maps = np.linalg.inv(np.linalg.cholesky(covariances))
        # Frames and tails from the rows inside the outlier fence: an outlier's residual would pull its state's nu down.
        Z_inside, labels_inside = Z[start.inliers], start.labels[start.inliers]
        if full and turn_frames and Z.shape[1] >= FRAME_MIN_FEATURES:  # per-feature layers: each cluster's axes
            maps = independent_frames(Z_inside, labels_inside, start.means, maps, rng)
        parameter = next(model.parameters())

        def tensor(array):
            return torch.as_tensor(array, dtype=parameter.dtype, device=parameter.device)

        if self.tails == "student_t":  # each state's t per feature, by maximum likelihood on its rows
            dof, scale = state_tails(Z_inside, labels_inside, start.means, maps, INITIAL_DOF)
            maps = maps / scale[:, :, None]
            model.flow.base.start_at(tensor(dof))
        model.initialize_states(tensor(start.means), tensor(maps), tensor(start.weights))

    def _keep_best_start(self, model: LatentFlowDensity, result: TrainingResult,
                         data: TrainingData) -> LatentFlowDensity:  # fmt: skip
        """The trained model, or the full-covariance start where BIC turned it down but validation prefers it."""
        candidate = self.__dict__.pop("_full_start", None)
        if candidate is None or not (data.has_validation and math.isfinite(result.best_loss)):
            return model  # nothing to compare: no validation rows, or a fit interrupted before its first check
        candidate.training_states = model.training_states
        candidate.eval()
        loss = validation_loss(candidate, data.x_validation, data.weights_validation)
        if not loss < result.best_loss:
            return model
        result.start_loss = min(result.start_loss, loss)
        result.best_loss, result.best_step = loss, 0
        self.state_affine_ = "full"
        return candidate

    def _set_diagnostics(self, X_train: np.ndarray) -> None:
        # Cheap first: an interrupt in the scoring pass below leaves weights_ set.
        self.weights_ = self.module_.log_weights().exp().detach().cpu().numpy().astype(np.float64)
        self.state_usage_ = np.concatenate([posterior(chunk) for chunk in self._iter_log_joint(X_train)]).mean(axis=0)
        self.n_effective_latent_ = int(np.sum(self.state_usage_ * len(X_train) >= 1.0))

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the most probable state of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``argmax_k p(k | x)`` under the fitted model.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> sorted(set(est.fit_predict(X).tolist())) in ([0], [1], [0, 1])
        True
        """
        return self.fit(X, sample_weight=sample_weight).predict_cluster(X)
