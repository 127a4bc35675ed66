"""The shared estimator template: every public method, written once.

Subclasses only build their torch module (``_build_module``) and may warm-start
it (``_initialize_module``). Everything else derives from one primitive, the
``(n, K)`` matrix ``_log_joint(X) = log pi_k + log p(x | k)`` in the user's
units, as in scikit-learn's ``BaseMixture``: ``score_samples`` is its
logsumexp, ``predict_proba`` its softmax, ``predict_cluster`` its argmax, so
they can never disagree. The matrix is produced in row chunks
(``_iter_log_joint``) so that scoring streams in bounded memory.
"""

from __future__ import annotations

import io
import math
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if

from ._compat import Interval, StrOptions, _check_sample_weight, _fit_context, check_is_fitted, validate_data
from ._device import resolve_device, torch_dtype
from ._engine.bits import bits_per_dim
from ._engine.density import score_chunk_rows
from ._engine.distributed import train_data_parallel, train_replica
from ._engine.initialization import initialize_parameters
from ._engine.training import TrainingConfig, train
from ._images import check_pixel_levels, pixel_scaling, resolve_image_shape
from ._standardization import location_scale

_SEED_RANGE = 2**31 - 1

#: Images go through a fixed logit pre-transform with this squeeze (its log-Jacobian is exact).
LOGIT_ALPHA = 0.05


class BaseFlowDensity(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Template for flow density estimators; not for direct use."""

    _parameter_constraints: dict = {
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_hidden_layers": [Interval(Integral, 1, None, closed="left")],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "tail_bound": [Interval(Real, 0, None, closed="neither")],
        "lu_linear": ["boolean"],
        "image_shape": [tuple, list, None],
        "n_levels": [Interval(Integral, 2, None, closed="left")],
        "n_scales": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str, torch.device],
        "n_devices": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_layers,
        hidden_size,
        n_hidden_layers,
        n_bins,
        tail_bound,
        lu_linear,
        image_shape,
        n_levels,
        n_scales,
        max_epochs,
        batch_size,
        learning_rate,
        validation_fraction,
        patience,
        dtype,
        device,
        n_devices,
        random_state,
        verbose,
    ):
        self.n_layers = n_layers
        self.hidden_size = hidden_size
        self.n_hidden_layers = n_hidden_layers
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.lu_linear = lu_linear
        self.image_shape = image_shape
        self.n_levels = n_levels
        self.n_scales = n_scales
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.device = device
        self.n_devices = n_devices
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _build_module(self, n_features: int) -> torch.nn.Module:
        """Return the untrained density model (the protocol of ``_engine.density``)."""

    def _check_training_rows(self, n_train: int) -> None:
        """Raise a ValueError naming the remedy if ``n_train`` rows cannot fit this model."""

    def _initialize_module(self, module, Z, sample_weight, generator, rng) -> None:
        """Warm-start ``module`` from the standardised training rows ``Z`` (a tensor on
        the model's device), their weights, a torch generator and a NumPy RandomState."""

    def _set_fitted_attributes(self, X_train: np.ndarray) -> None:
        """Store model-specific fitted attributes once the model is trained (optional)."""

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
            Non-negative weights of the rows in the likelihood.
        validation_data : array-like of shape (n_validation, n_features), default=None
            Rows held out for early stopping and model selection instead of a
            random ``validation_fraction`` of X (for a fixed published split);
            all of X is then trained on. Each validation row has weight one.

        Returns
        -------
        self : object
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est.fit(X).n_features_in_
        2
        """
        saved_state = dict(self.__dict__)
        try:
            return self._fit(X, sample_weight, validation_data)
        except BaseException:
            # Bad input or a failed fit leaves a previously fitted model intact.
            self.__dict__.clear()
            self.__dict__.update(saved_state)
            raise

    def _fit(self, X, sample_weight, validation_data):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        rng = check_random_state(self.random_state)
        if validation_data is None:
            train_rows, validation_rows = self._split_rows(X.shape[0], rng)
        else:
            # The held-out rows go after X, so everything below sees one array and two row sets.
            X_validation = validate_data(self, validation_data, reset=False, dtype=X.dtype)
            train_rows, validation_rows = np.arange(len(X)), np.arange(len(X), len(X) + len(X_validation))
            X = np.concatenate([X, X_validation])
            sample_weight = np.concatenate([sample_weight, np.ones(len(X_validation))])
        if self._is_image_model():
            resolve_image_shape(self.image_shape, X.shape[1])
            check_pixel_levels(X, self.n_levels, type(self).__name__)
        device = resolve_device(self.device, self.n_devices)
        dtype = torch_dtype(self.dtype)

        self._check_training_rows(train_rows.size)
        location, scale = self._standardization(X[train_rows])
        Z = (X - location) / scale
        if self._is_image_model():
            # One fixed dequantisation of the validation images; training rows get fresh noise per epoch.
            Z[validation_rows] += rng.uniform(size=(validation_rows.size, X.shape[1])) / self.n_levels

        def tensor(array):
            return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        module = self._build_module(X.shape[1]).to(dtype)
        initialize_parameters(module, torch.Generator().manual_seed(int(rng.randint(_SEED_RANGE))))
        module.to(device)
        init_generator = torch.Generator(device=device).manual_seed(int(rng.randint(_SEED_RANGE)))
        z_train = tensor(Z[train_rows])
        self._initialize_module(module, z_train, sample_weight[train_rows], init_generator, rng)

        weights = sample_weight / sample_weight[train_rows].mean()
        has_validation = validation_rows.size > 0
        data = (
            z_train,
            tensor(weights[train_rows]),
            tensor(Z[validation_rows]) if has_validation else None,
            tensor(weights[validation_rows]) if has_validation else None,
        )
        result = self._train(module, data, int(rng.randint(_SEED_RANGE)))

        self.module_ = module
        self.device_ = str(device)
        self.location_ = location
        self.scale_ = scale
        self._log_det_standardization = -float(np.log(scale).sum())
        self._sampling_random_state = np.random.RandomState(rng.randint(_SEED_RANGE))
        self.n_iter_ = result.n_epochs
        self.best_epoch_ = result.best_epoch
        self.converged_ = result.stop_reason == "early_stopping"
        self.loss_curve_ = [loss - self._log_det_standardization for loss in result.train_loss]
        self.validation_scores_ = (
            [self._log_det_standardization - loss for loss in result.validation_loss]
            if has_validation
            else []
        )
        self.best_validation_score_ = (
            self._log_det_standardization - result.best_loss if has_validation else None
        )
        self._set_fitted_attributes(X[train_rows])
        self._warn_about_training(result)
        return self

    def _is_image_model(self) -> bool:
        return self.image_shape is not None

    def _image_shape(self, n_features: int) -> tuple[int, int, int]:
        return resolve_image_shape(self.image_shape, n_features)

    def _image_flow_settings(self) -> dict:
        """The estimator's flow parameters in the image flow's terms (``ImageFlow`` keywords)."""
        return dict(
            n_scales=self.n_scales,
            n_layers_per_scale=self.n_layers,
            hidden_channels=self.hidden_size,
            n_blocks=self.n_hidden_layers,
            n_bins=self.n_bins,
            tail_bound=self.tail_bound,
            logit_alpha=LOGIT_ALPHA,
        )

    def _standardization(self, X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature z-scores for tables; ``x / n_levels`` for pixels (see ``_images.py``)."""
        if self._is_image_model():
            return pixel_scaling(X_train.shape[1], self.n_levels)
        return location_scale(X_train)

    def _split_rows(self, n_samples: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        n_validation = min(int(math.floor(self.validation_fraction * n_samples)), n_samples - 1)
        order = rng.permutation(n_samples)
        return np.sort(order[n_validation:]), np.sort(order[:n_validation])

    def _train(self, module, data, seed: int):
        """Single-process, spawned data-parallel, or (under torchrun) replica training."""
        config = self._training_config()
        if self.n_devices > 1:
            return train_data_parallel(module, *data, config, seed, self.n_devices)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return train_replica(module, *data, config, seed)
        generator = torch.Generator(device=data[0].device).manual_seed(seed)
        return train(module, *data, config, generator)

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            verbose=self.verbose,
        )

    def _warn_about_training(self, result) -> None:
        name = type(self).__name__
        if result.stop_reason == "diverged":
            warnings.warn(
                f"{name}: training diverged (non-finite loss) {result.n_recoveries} times and was "
                f"stopped; the model from epoch {result.best_epoch} is kept. Lower learning_rate, "
                "increase tail_bound, or remove extreme outliers from X.",
                ConvergenceWarning,
                stacklevel=5,
            )
        elif result.stop_reason == "interrupted":
            warnings.warn(
                f"{name}: fit interrupted; the best model so far (epoch {result.best_epoch}) is kept.",
                UserWarning,
                stacklevel=5,
            )
        elif result.stop_reason == "max_epochs":
            warnings.warn(
                f"{name}: training used all max_epochs={self.max_epochs} epochs before early "
                "stopping; increase max_epochs or learning_rate for a better fit.",
                ConvergenceWarning,
                stacklevel=5,
            )
        if result.n_recoveries and result.stop_reason != "diverged":
            warnings.warn(
                f"{name}: {result.n_recoveries} epoch(s) gave a non-finite loss and were rolled "
                "back with a halved learning rate; consider a lower learning_rate.",
                RuntimeWarning,
                stacklevel=5,
            )

    # --------------------------------------------------------------- scoring
    def _iter_model_rows(self, X) -> Iterator[torch.Tensor]:
        """Validated X, standardised, as tensors on the model's device in scoring chunks.

        Each chunk holds at most ``score_chunk_rows(module_)`` rows (a fixed
        budget of rows times states, ``_engine.density``), so scoring any
        number of rows needs a bounded amount of working memory. The model is
        put in eval mode.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        module = self.module_
        module.eval()
        reference = next(module.parameters())
        chunk = score_chunk_rows(module)
        for start in range(0, X.shape[0], chunk):
            Z = (X[start : start + chunk] - self.location_) / self.scale_
            yield torch.as_tensor(Z, dtype=reference.dtype, device=reference.device)

    @torch.no_grad()
    def _iter_log_joint(self, X) -> Iterator[np.ndarray]:
        """``log pi_k + log p(x | k)`` in X's units, in chunks of (rows, n_latent)."""
        for rows in self._iter_model_rows(X):
            log_joint = self.module_.log_joint(rows).cpu().numpy().astype(np.float64)
            yield log_joint + self._log_det_standardization

    def _log_joint(self, X) -> np.ndarray:
        """The (n_samples, n_latent) matrix every public method derives from."""
        return np.concatenate(list(self._iter_log_joint(X)))

    def score_samples(self, X):
        """Exact log-density of each sample, in nats, in the units of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log p(x)``, including the log-Jacobian of the internal
            standardisation.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est.fit(X).score_samples(X[:3]).shape
        (3,)
        """
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
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est = est.fit(X)
        >>> bool(np.isclose(est.score(X), est.score_samples(X).mean()))
        True
        """
        return float(np.mean(self.score_samples(X)))

    @available_if(_is_image_model)
    def bits_per_dim(self, X, random_state=0):
        """Mean bits per dimension of images of integer pixel levels (image models only).

        Each image's levels ``p`` are dequantised once, ``x = p + u`` with
        ``u ~ U[0, 1)`` drawn from ``random_state``, and scored:
        ``bpd = -log q(x) / (D log 2)`` with ``q`` the density of ``x`` in
        pixel-level units (equivalently, of ``y = x / n_levels`` in the unit
        cube, ``bpd = (-log q(y) + D log n_levels) / (D log 2)``). Lower is
        better; a uniform density gives ``log2(n_levels)``. By Jensen's
        inequality the expectation over ``u`` bounds the discrete model's
        code length from above. For ``NVFDensity(latent="sequence")``,
        ``score_samples`` is itself a lower bound on ``log q(x)``, so the
        figure is an upper bound on the model's bits per dimension.

        Parameters
        ----------
        X : array-like of shape (n_samples, C * H * W)
            Integer pixel levels in ``{0, ..., n_levels - 1}``.
        random_state : int, RandomState instance or None, default=0
            Seed of the dequantisation noise (fixed by default, so repeated
            calls agree).

        Returns
        -------
        bpd : float
            Mean bits per dimension over the rows of X.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from nvf_sklearn import NFDensity
        >>> X = load_digits().data[:200]
        >>> est = NFDensity(1, image_shape=(8, 8), n_levels=17, hidden_size=4, max_epochs=1, random_state=0)
        >>> bool(0 < est.fit(X).bits_per_dim(X) < 10)
        True
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        check_pixel_levels(X, self.n_levels, type(self).__name__)
        noise = check_random_state(random_state).uniform(size=X.shape)
        log_q = self.score_samples(X + noise)
        log_q_unit_cube = log_q + X.shape[1] * np.log(self.n_levels)
        return float(np.mean(bits_per_dim(log_q_unit_cube, X.shape[1], self.n_levels)))

    def _has_state_posterior(self) -> bool:
        """Whether the latent states are a fixed set of columns (``predict_proba``)."""
        return True

    @available_if(lambda self: self._has_state_posterior())  # a subclass may override the hook
    def predict_proba(self, X):
        """Exact posterior probability of each latent state given each sample.

        Not available with ``NVFDensity(latent="sequence")``, whose
        ``n_latent ** L`` code sequences have no fixed set of columns; use
        :meth:`predict_cluster` there.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_latent)
            ``p(k | x)``; rows sum to one.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> proba = est.fit(X).predict_proba(X[:4])
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((4, 2), True)
        """
        log_joint = self._log_joint(X)
        return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def predict_cluster(self, X):
        """Most probable latent state of each sample under the exact posterior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``argmax_k p(k | x)``.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est.fit(X).predict_cluster(X[:4]).shape
        (4,)
        """
        return np.concatenate([np.argmax(chunk, axis=1) for chunk in self._iter_log_joint(X)])

    def predict(self, X):
        """Alias of :meth:`predict_cluster`, for scikit-learn compatibility.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``argmax_k p(k | x)``.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est = est.fit(X)
        >>> bool((est.predict(X) == est.predict_cluster(X)).all())
        True
        """
        return self.predict_cluster(X)

    def bic(self, X):
        """Bayesian information criterion on X; lower is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data the criterion is computed on (usually the training data).

        Returns
        -------
        bic : float
            ``-2 * sum log p(x) + n_parameters * log(n_samples)``.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> isinstance(est.fit(X).bic(X), float)
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
            ``-2 * sum log p(x) + 2 * n_parameters``.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> isinstance(est.fit(X).aic(X), float)
        True
        """
        return float(-2.0 * self.score_samples(X).sum() + 2.0 * self.n_parameters_)

    @property
    def n_parameters_(self) -> int:
        """Number of trainable parameters of the density (inference networks excluded)."""
        check_is_fitted(self)
        parameters = getattr(self.module_, "density_parameters", self.module_.parameters)()
        return int(sum(p.numel() for p in parameters if p.requires_grad))

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
        y : ndarray of shape (n_samples,)
            Latent state of each sample.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from nvf_sklearn import NVFDensity
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> X_new, k_new = est.fit(X).sample(5)
        >>> X_new.shape, k_new.shape
        ((5, 2), (5,))
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        stream = self._sampling_random_state if random_state is None else check_random_state(random_state)
        reference = next(self.module_.parameters())
        generator = torch.Generator(device=reference.device).manual_seed(int(stream.randint(_SEED_RANGE)))
        self.module_.eval()
        chunk = score_chunk_rows(self.module_, states_per_row=1)
        samples, states = [], []
        for start in range(0, n_samples, chunk):
            x, k = self.module_.sample(min(chunk, n_samples - start), generator)
            samples.append(x.cpu().numpy().astype(np.float64))
            states.append(k.cpu().numpy())
        X = np.concatenate(samples) * self.scale_ + self.location_
        return X, np.concatenate(states)

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
            state["module_"] = torch.load(
                io.BytesIO(state["module_"]), map_location=device, weights_only=False
            )
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
