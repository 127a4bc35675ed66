"""The shared estimator template: the fit ladder and the public methods, written once.

``fit`` climbs four rungs: validate and split the rows, build and initialise
the model, train it, set the fitted attributes. Subclasses supply hooks (the
preprocessor, the engine model, an optional warm start and diagnostics);
they never branch inside the ladder. Every score derives from one primitive,
the ``(n, K)`` matrix ``_log_joint(X) = log pi_k + log p(x | k)`` in the
user's units, as in scikit-learn's ``BaseMixture``: ``score_samples`` is its
logsumexp and subclasses add the posterior methods from the same matrix, so
they can never disagree. The matrix streams in row chunks of bounded memory.
"""

from __future__ import annotations

import io
import math
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state

from ._compat import Interval, StrOptions, _check_sample_weight, _fit_context, check_is_fitted, validate_data
from ._budget import BUDGET_EXTENSIONS, BudgetRule, TrainingBudget, intra_op_threads, resolve_budget
from ._device import resolve_device, torch_dtype
from ._engine import DensityModel, TrainingConfig, TrainingData, TrainingResult, fit_model, initialize_parameters
from ._fit_report import warn_about_training
from ._progress import ProgressDisplay

_SEED_RANGE = 2**31 - 1
#: Rows scored at a time at least: a shorter chunk is padded with copies of its last row. A CPU matrix product
#: of a handful of rows takes another kernel than one of many, and rounds differently (seen below 16 rows);
#: a row's score must not depend on the rows scored with it.
MIN_SCORING_ROWS = 16


@dataclass
class _Split:
    """Rung one's output: validated training and validation rows (positive weights only)."""

    X_train: np.ndarray
    w_train: np.ndarray
    X_validation: np.ndarray
    w_validation: np.ndarray
    rng: np.random.RandomState


class BaseFlowDensity(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Template for flow density estimators; not for direct use."""

    #: How ``"auto"`` sizes the training of this family (``_budget.py``).
    _budget_rule = BudgetRule(min_batch=512, max_batch=1024, batch_rows_fraction=1 / 16, gpu_batch=4096,
                              reference_batch=256, steps_per_sqrt_row=2.5, min_steps=250, max_steps=20_000)  # fmt: skip

    _parameter_constraints: dict = {
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "learning_rate_schedule": [StrOptions({"plateau", "cosine"})],
        "weight_averaging": [Interval(Real, 0, None, closed="neither"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str, torch.device],
        "n_devices": [Interval(Integral, 1, None, closed="left")],
        "compile": ["boolean", StrOptions({"auto"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self, *, max_epochs, batch_size, learning_rate, learning_rate_schedule, weight_decay, weight_averaging,
        validation_fraction, patience, dtype, device, n_devices, compile, random_state, verbose,
    ):  # fmt: skip
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_decay = weight_decay
        self.weight_averaging = weight_averaging
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.device = device
        self.n_devices = n_devices
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _make_preprocessor(self):
        """An unfitted preprocessor (``fit``, ``transform``, ``inverse_transform``, ``log_det``)."""

    @abstractmethod
    def _build_model(self, n_features: int, n_rows: int) -> DensityModel:
        """The untrained engine model."""

    def _check_training_rows(self, n_train: int) -> None:
        """Raise a ValueError naming the remedy if ``n_train`` rows cannot fit this model."""

    def _prepare_validation(self, Z_validation: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Validation rows in the model's space as the model scores them (images: dequantised once)."""
        return Z_validation

    #: Whether training starts from a model fitted to the data (a warm start that may rightly be kept as it is).
    _fitted_start = False

    def _initialize_model(self, model, z_train, w_train, generator, rng) -> None:
        """Data-dependent warm start from the preprocessed training rows (tensors on the model's device)."""
        model.initialize(z_train, w_train, generator)

    def _keep_best_start(self, model: DensityModel, result: TrainingResult, data: TrainingData) -> DensityModel:
        """The model a fit keeps: the trained one, or another start a family held back that validation prefers."""
        return model

    def _set_diagnostics(self, X_train: np.ndarray) -> None:
        """Model-specific fitted attributes computed from the training rows (optional)."""

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, validation_data=None):
        """Fit the density model to X by maximum likelihood with early stopping.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. A fraction ``validation_fraction`` of the rows is
            held out for early stopping and model selection, unless
            ``validation_data`` is given.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the likelihood. Rows of weight
            zero are left out entirely (of the split, the preprocessing and
            training); at least two rows must carry weight.
        validation_data : array-like of shape (n_validation, n_features), default=None
            Rows held out for early stopping and model selection instead of a
            random ``validation_fraction`` of X (for a fixed published split);
            all of X is then trained on. Each validation row has weight one.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        saved_state = dict(self.__dict__)
        try:
            split = self._validate_and_split(X, sample_weight, validation_data)
            model, data, preprocessor, seeds = self._build_and_initialize(split)
        except BaseException:
            # Bad input or a failed start leaves a previously fitted model intact.
            self.__dict__.clear()
            self.__dict__.update(saved_state)
            raise
        # From here on a Ctrl-C keeps what was trained (skorch's rule), with a warning.
        budget = self._resolve_budget(model, data)
        with intra_op_threads(budget.n_threads):
            result = self._train(model, data, preprocessor, budget, seeds[0])
        model = self._keep_best_start(model, result, data)
        self._set_fitted_attributes(model, result, preprocessor, data, budget, seeds[1])
        try:
            self._set_diagnostics(split.X_train)
        except KeyboardInterrupt:
            result.stop_reason = "interrupted"
        warn_about_training(type(self).__name__, result, self.max_epochs, budget.max_steps, stacklevel=4,
                            fitted_start=self._fitted_start)  # fmt: skip
        return self

    def _validate_and_split(self, X, sample_weight, validation_data) -> _Split:
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        weighted = np.flatnonzero(sample_weight > 0)
        if weighted.size < 2:
            raise ValueError(
                f"Only {weighted.size} row(s) of X have positive sample_weight; at least 2 are needed "
                "(rows of weight zero are left out). Give more rows positive sample weights."
            )
        rng = check_random_state(self.random_state)
        if validation_data is None:
            n_validation = min(int(math.floor(self.validation_fraction * weighted.size)), weighted.size - 1)
            order = weighted[rng.permutation(weighted.size)]
            train_rows, validation_rows = np.sort(order[n_validation:]), np.sort(order[:n_validation])
            X_validation, w_validation = X[validation_rows], sample_weight[validation_rows]
        else:
            train_rows = weighted
            X_validation = validate_data(self, validation_data, reset=False, dtype=X.dtype)
            w_validation = np.ones(len(X_validation))
        self._check_training_rows(train_rows.size)
        return _Split(X[train_rows], sample_weight[train_rows], X_validation, w_validation, rng)

    def _build_and_initialize(self, split: _Split):
        device, dtype = resolve_device(self.device, self.n_devices), torch_dtype(self.dtype)
        preprocessor = self._make_preprocessor().fit(split.X_train, split.w_train)
        scale = split.w_train.mean()

        def tensor(array):
            return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        with torch.random.fork_rng(devices=[]):  # layer constructors draw from torch's global generator
            model = self._build_model(split.X_train.shape[1], split.X_train.shape[0]).to(dtype)
        rng = split.rng
        initialize_parameters(model, torch.Generator().manual_seed(int(rng.randint(_SEED_RANGE))))
        model.to(device)
        generator = torch.Generator(device=device).manual_seed(int(rng.randint(_SEED_RANGE)))
        data = TrainingData(tensor(preprocessor.transform(split.X_train)), tensor(split.w_train / scale))
        self._initialize_model(model, data.x, data.weights, generator, rng)
        if len(split.X_validation):
            Z_validation = self._prepare_validation(preprocessor.transform(split.X_validation), rng)
            data.x_validation, data.weights_validation = tensor(Z_validation), tensor(split.w_validation / scale)
        seeds = int(rng.randint(_SEED_RANGE)), int(rng.randint(_SEED_RANGE))
        return model, data, preprocessor, seeds

    def _resolve_budget(self, model: DensityModel, data: TrainingData) -> TrainingBudget:
        return resolve_budget(
            self._budget_rule_for(data.x.shape[1], data.x.shape[0]),
            n_train=data.x.shape[0],
            n_validation=data.x_validation.shape[0] if data.has_validation else 0,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            weight_averaging=self.weight_averaging,
            training_passes=model.training_passes(),
            validation_passes=model.validation_passes(),
            device=data.x.device,
            n_processes=self.n_devices,
        )

    def _budget_rule_for(self, n_features: int, n_rows: int) -> BudgetRule:
        """How this family sizes the training of a fit to ``n_rows`` training rows of ``n_features`` features."""
        return self._budget_rule

    def _weight_decay(self) -> float:
        """The weight decay this fit uses (a family may resolve an ``"auto"``; recorded as ``weight_decay_``)."""
        return self.weight_decay

    def _compile(self, device: torch.device) -> bool:
        """``compile="auto"``: capture the step on CUDA only (on a CPU compiling costs more than it saves)."""
        return device.type == "cuda" if self.compile == "auto" else bool(self.compile)

    def _training_config(self, budget: TrainingBudget, device: torch.device) -> TrainingConfig:
        return TrainingConfig(
            max_steps=budget.max_steps,
            batch_size=budget.batch_size,
            learning_rate=budget.learning_rate,
            patience=self.patience,
            min_stalled_steps=budget.min_stalled_steps,
            validation_interval=budget.validation_interval,
            schedule=self.learning_rate_schedule,
            warmup_steps=budget.warmup_steps,
            weight_decay=self._weight_decay(),
            weight_averaging=budget.averaging_steps,
            budget_extensions=BUDGET_EXTENSIONS if self.max_epochs == "auto" else 0,
            compile=self._compile(device),
        )

    def _train(self, model, data: TrainingData, preprocessor, budget: TrainingBudget, seed: int) -> TrainingResult:
        config = self._training_config(budget, data.x.device)
        progress = ProgressDisplay(type(self).__name__, int(self.verbose), preprocessor.log_det) if self.verbose else None
        try:
            return fit_model(model, data, config, seed, self.n_devices, progress)
        except KeyboardInterrupt:  # outside the check loop (which catches its own): keep the model as it is
            model.end_training()
            model.eval()
            return TrainingResult(stop_reason="interrupted")
        finally:
            if progress is not None:
                progress.close()

    def _set_fitted_attributes(self, model, result: TrainingResult, preprocessor, data, budget, seed) -> None:
        log_det, has_validation = preprocessor.log_det, data.has_validation
        self.module_ = model
        self.device_ = str(next(model.parameters()).device)
        self.compile_ = self._compile(next(model.parameters()).device) and result.compile_error is None
        self.preprocessor_ = preprocessor
        self._sampling_random_state = np.random.RandomState(seed)
        self.batch_size_ = budget.batch_size
        self.learning_rate_ = budget.learning_rate
        self.weight_decay_ = self._weight_decay()
        self.max_steps_ = budget.max_steps
        self.validation_interval_ = budget.validation_interval
        self.n_threads_ = budget.n_threads
        self.n_steps_ = result.n_steps
        self.best_step_ = result.best_step
        rows_per_step = budget.batch_size * self.n_devices
        self.n_iter_ = round(result.n_steps * rows_per_step / data.x.shape[0])
        self.converged_ = result.stop_reason == "early_stopping"
        self.loss_curve_ = [loss - log_det for loss in result.train_loss]
        self.validation_scores_ = [log_det - loss for loss in result.validation_loss] if has_validation else []
        self.best_validation_score_ = log_det - result.best_loss if has_validation and result.best_loss < math.inf else None
        self.start_validation_score_ = log_det - result.start_loss if has_validation and result.start_loss < math.inf else None

    # --------------------------------------------------------------- scoring
    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _iter_model_rows(self, X: np.ndarray) -> Iterator[torch.Tensor]:
        """Validated X in the model's space, as tensors on its device, in scoring chunks (eval mode)."""
        model = self.module_
        model.eval()
        reference = next(model.parameters())
        chunk = model.chunk_rows(reference.device.type)
        for start in range(0, X.shape[0], chunk):
            Z = self.preprocessor_.transform(X[start : start + chunk])
            yield torch.as_tensor(Z, dtype=reference.dtype, device=reference.device)

    @torch.no_grad()
    def _iter_log_joint(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """``log pi_k + log p(x | k)`` in X's units, in chunks of rows.

        A value that overflowed to NaN or ``+inf`` (a point so far from the
        data that its density underflows) is ``-inf``: never NaN.
        """
        for rows in self._iter_model_rows(X):
            n_rows = rows.shape[0]
            if n_rows < MIN_SCORING_ROWS:
                rows = torch.cat([rows, rows[-1:].expand(MIN_SCORING_ROWS - n_rows, *rows.shape[1:])])
            log_joint = self.module_.log_joint(rows)[:n_rows].cpu().numpy().astype(np.float64)
            log_joint = log_joint + self.preprocessor_.log_det
            yield np.where(np.isnan(log_joint) | (log_joint == np.inf), -np.inf, log_joint)

    def _log_joint(self, X) -> np.ndarray:
        """The (n_samples, n_states) matrix every public score derives from."""
        return np.concatenate(list(self._iter_log_joint(self._validated(X))))

    def score_samples(self, X):
        """Log-density of each sample, in nats, in the units of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log p(x)``, including the log-Jacobian of the internal
            preprocessing; finite, or ``-inf`` where the density underflows.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0).fit(X)  # doctest: +SKIP
        >>> est.score_samples(X[:3]).shape
        (3,)
        """
        return self._log_density(self._validated(X))

    def _log_density(self, X: np.ndarray) -> np.ndarray:
        """``score_samples`` of already validated rows."""
        with np.errstate(divide="ignore"):
            return np.concatenate([logsumexp(chunk, axis=1) for chunk in self._iter_log_joint(X)])

    def score(self, X, y=None):
        """Mean log-likelihood of X (nats per sample): what ``GridSearchCV`` maximises.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        mean_log_likelihood : float
            The mean, not the sum, of ``score_samples(X)``.

        Examples
        --------
        >>> bool(np.isclose(est.score(X), est.score_samples(X).mean()))  # est, X: see score_samples
        True
        """
        return float(np.mean(self.score_samples(X)))

    def bic(self, X):
        """Bayesian information criterion on X; lower is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data the criterion is computed on (usually the training data).

        Returns
        -------
        bic : float
            ``-2 * sum log p(x) + n_parameters_ * log(n_samples)``.

        Examples
        --------
        >>> isinstance(est.bic(X), float)  # est, X: see score_samples
        True
        """
        log_likelihood = self.score_samples(X)
        return float(-2.0 * log_likelihood.sum() + self.n_parameters_ * np.log(len(log_likelihood)))

    def aic(self, X):
        """Akaike information criterion on X; lower is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data the criterion is computed on (usually the training data).

        Returns
        -------
        aic : float
            ``-2 * sum log p(x) + 2 * n_parameters_``.

        Examples
        --------
        >>> isinstance(est.aic(X), float)  # est, X: see score_samples
        True
        """
        return float(-2.0 * self.score_samples(X).sum() + 2.0 * self.n_parameters_)

    @property
    def n_parameters_(self) -> int:
        """Number of trainable parameters of the density (inference networks excluded)."""
        check_is_fitted(self)
        return int(sum(p.numel() for p in self.module_.density_parameters() if p.requires_grad))

    # -------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed for this call. ``None`` draws from the estimator's own
            sampling stream, seeded once from ``random_state`` at fit time and
            advanced on every call: repeated calls give new samples, and the
            sequence is reproducible.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples in the units of the training data, in random order.
        y : ndarray of shape (n_samples,) or (n_samples, L)
            Latent state of each sample (for code-sequence models, its codes).

        Examples
        --------
        >>> X_new, y_new = est.sample(5)  # est: see score_samples
        >>> len(X_new), len(y_new)
        (5, 5)
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        stream = self._sampling_random_state if random_state is None else check_random_state(random_state)
        model = self.module_
        model.eval()
        reference = next(model.parameters())
        generator = torch.Generator(device=reference.device).manual_seed(int(stream.randint(_SEED_RANGE)))
        chunk = model.chunk_rows(reference.device.type, states_per_row=1)
        samples, states = [], []
        for start in range(0, n_samples, chunk):
            x, k = model.sample(min(chunk, n_samples - start), generator)
            samples.append(self.preprocessor_.inverse_transform(x.cpu().numpy().astype(np.float64)))
            states.append(k.cpu().numpy())
        return np.concatenate(samples), np.concatenate(states)

    # ------------------------------------------------------------- pickling
    def __getstate__(self):
        # object.__getstate__ may return the instance's own __dict__: copy it.
        state = dict(super().__getstate__())
        if "module_" in state:
            buffer = io.BytesIO()
            torch.save(state["module_"], buffer)
            state["module_"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("module_"), bytes):
            device = state["device_"]
            if device.startswith("cuda") and not torch.cuda.is_available():
                warnings.warn(
                    f"{type(self).__name__} was fitted on {device!r}, which this machine lacks; "
                    "it is loaded on the CPU.",
                    UserWarning,
                    stacklevel=2,
                )
                device = state["device_"] = "cpu"
            state["module_"] = torch.load(io.BytesIO(state["module_"]), map_location=device, weights_only=False)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
