"""NVFDensity: a neural spline flow conditioned on a learned K-state latent variable."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin

from ._base import BaseFlowDensity
from ._compat import Interval, StrOptions
from ._engine.bits import add_dequantization_noise
from ._engine.flows import spline_flow
from ._engine.latent import LatentFlowDensity
from ._engine.sequence import SequenceLatentFlowDensity, sequence_latent_flow
from ._engine.training import TrainingResult, chain_results

#: Training images whose encodings seed the codebook of the sequence latent.
CODEBOOK_INIT_ROWS = 4096


class NVFDensity(BaseFlowDensity):
    """Normalizing Variational Flow: a mixture of K conditional spline flows.

    The density is ``p(x) = sum_k pi_k p_flow(x | k)``: one neural spline flow
    shared by all states and conditioned on the state k, so each state only
    has to transport one mode of the data. Training uses either the ELBO with
    an amortised encoder q(k | x) sampled by straight-through Gumbel-softmax
    (one flow pass per point), or the exact marginal likelihood (K passes per
    point, batched). Scoring is always exact: ``score_samples`` is the
    log-sum-exp over all K states, ``predict_proba`` the exact posterior
    p(k | x), not the encoder's guess.

    Parameters
    ----------
    n_latent : int, default=8
        Number of latent states K. ``n_latent=1`` is a plain flow. With
        ``latent="sequence"``: the codebook size V.
    latent : {"categorical", "sequence"}, default="categorical"
        ``"categorical"``: one of K states per row (tables). ``"sequence"``:
        for images (requires ``image_shape``), a grid of discrete codes, one
        per patch, with a causal transformer prior over the code sequence;
        ``score_samples`` is then a lower bound on log p(x) over each image's
        ``top_m`` most likely code sequences (see the user guide, "Images").
        The parameters ``objective``, ``prior``, ``init_params``,
        ``encoder_hidden_sizes`` and the temperatures apply to the
        categorical latent only.
    objective : {"exact", "elbo"}, default="exact"
        Training objective: the exact log-likelihood, or the single-sample
        ELBO of the NVF paper (cheaper per step for large K).
    prior : {"learned", "uniform"}, default="learned"
        Whether the state weights pi are learned or fixed at 1/K.
    init_params : {"kmeans", "random"}, default="kmeans"
        Warm start: with ``"kmeans"`` each state starts as one k-means
        cluster's diagonal Gaussian (the model starts as a diagonal Gaussian
        mixture) and the encoder, if any, is pre-fitted to the labels; with
        ``"random"`` the states start at randomly chosen training rows.
    encoder_hidden_sizes : tuple of int, default=(256, 256, 256)
        Hidden layers of the encoder MLP q(k | x); only ``objective="elbo"``
        builds and trains an encoder.
    temperature_start, temperature_end : float, default=1.0, 1.0
        Gumbel-softmax temperature of the ELBO, annealed geometrically from
        start to end over ``max_epochs``. The default is the original fixed
        tau = 1: annealing to 0.1 was measured worse (checkerboard, K = 8: gap
        to the true density 0.155 vs 0.097 nats; equal on the ring;
        ``benchmarks/nvf_ablation.py``).
    n_layers : int, default=5
        Number of coupling layers.
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
        Insert a learned LU-factorised linear layer before each coupling layer
        (tables only).
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of the images in the rows of X (integer
        pixel levels); requires ``latent="sequence"``. ``n_layers``,
        ``hidden_size`` and ``n_hidden_layers`` then size the image flow's
        couplings per scale, conditioner channels and residual blocks.
    n_levels : int, default=256
        Number of pixel levels (images only).
    n_scales : int, default=1
        Squeeze operations of the image flow (images only).
    top_m : int, default=16
        Code sequences per image summed in ``score_samples`` (sequence latent
        only); larger is tighter and slower, ``n_latent ** L`` is exact.
    n_downsamples : int, default=2
        Halvings of the image side by the encoder: the code grid is
        ``H / 2**n_downsamples`` by ``W / 2**n_downsamples`` (sequence latent).
    code_dim : int, default=8
        Dimension of the codebook vectors (sequence latent).
    prior_layers : int, default=2
        Transformer blocks of the code prior (sequence latent).
    prior_hidden_size : int, default=64
        Embedding width of the code prior, a multiple of its 4 heads
        (sequence latent).
    max_epochs : int, default=200
        Largest number of passes over the training data.
    batch_size : int, default=256
        Rows per gradient step.
    learning_rate : float, default=1e-3
        Initial Adam learning rate, with cosine decay over ``max_epochs``.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping and model selection.
    patience : int, default=20
        Epochs without validation improvement before training stops.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the model.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    n_devices : int, default=1
        Data-parallel processes for ``fit`` (``torch.distributed``): one per
        GPU ``cuda:0 .. cuda:{n_devices - 1}`` with NCCL when ``device`` is
        CUDA, else CPU processes with gloo that share the cores. Each process
        trains on its shard of every epoch, so the global batch is
        ``n_devices * batch_size`` rows. Under ``torchrun`` keep 1: a fit
        inside an initialised process group trains data-parallel on it.
    random_state : int, RandomState instance or None, default=None
        Controls k-means, initialisation, the split, batches, Gumbel noise
        and the sampling stream; no global seed is touched.
    verbose : int, default=0
        Print one line per epoch when positive.

    Attributes
    ----------
    weights_ : ndarray of shape (n_latent,)
        State weights pi (categorical latent).
    state_usage_ : ndarray of shape (n_latent,)
        Mean exact posterior p(k | x) over the training rows (categorical
        latent).
    code_usage_ : ndarray of shape (n_latent,)
        Fraction of the training images' code positions that take each code
        (sequence latent).
    n_effective_latent_ : int
        States that carry at least one training row's worth of posterior
        mass; for the sequence latent, codes used by the training images.
    module_ : torch.nn.Module
        The fitted ``LatentFlowDensity``, in eval mode on ``device_``.
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
        Training objective per epoch (negative log-likelihood, or negative
        ELBO, nats per sample in the units of X).
    validation_scores_ : list of float
        Exact mean validation log-likelihood per epoch (nats, units of X);
        for the sequence latent, its top-1 lower bound, joint stage first,
        then the prior stage.
    best_validation_score_ : float or None
        Best entry of ``validation_scores_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    NFDensity : The same flow without a latent state.
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
        **BaseFlowDensity._parameter_constraints,
        "n_latent": [Interval(Integral, 1, None, closed="left")],
        "latent": [StrOptions({"categorical", "sequence"})],
        "top_m": [Interval(Integral, 1, None, closed="left")],
        "n_downsamples": [Interval(Integral, 0, None, closed="left")],
        "code_dim": [Interval(Integral, 1, None, closed="left")],
        "prior_layers": [Interval(Integral, 1, None, closed="left")],
        "prior_hidden_size": [Interval(Integral, 1, None, closed="left")],
        "objective": [StrOptions({"exact", "elbo"})],
        "prior": [StrOptions({"learned", "uniform"})],
        "init_params": [StrOptions({"kmeans", "random"})],
        "encoder_hidden_sizes": [tuple, list],
        "temperature_start": [Interval(Real, 0, None, closed="neither")],
        "temperature_end": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_latent=8,
        *,
        latent="categorical",
        objective="exact",
        prior="learned",
        init_params="kmeans",
        encoder_hidden_sizes=(256, 256, 256),
        temperature_start=1.0,
        temperature_end=1.0,
        n_layers=5,
        hidden_size=64,
        n_hidden_layers=2,
        n_bins=8,
        tail_bound=5.0,
        lu_linear=True,
        image_shape=None,
        n_levels=256,
        n_scales=1,
        top_m=16,
        n_downsamples=2,
        code_dim=8,
        prior_layers=2,
        prior_hidden_size=64,
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
        self.n_latent = n_latent
        self.latent = latent
        self.top_m = top_m
        self.n_downsamples = n_downsamples
        self.code_dim = code_dim
        self.prior_layers = prior_layers
        self.prior_hidden_size = prior_hidden_size
        self.objective = objective
        self.prior = prior
        self.init_params = init_params
        self.encoder_hidden_sizes = encoder_hidden_sizes
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end

    def _is_sequence_latent(self) -> bool:
        return self.latent == "sequence"

    def _check_training_rows(self, n_train: int) -> None:
        if self._is_sequence_latent() != self._is_image_model():
            raise ValueError(
                "latent='sequence' and image_shape go together: the sequence latent is a grid of "
                "codes over an image, and images take the sequence latent. Got "
                f"latent={self.latent!r}, image_shape={self.image_shape!r}."
            )
        if not self._is_sequence_latent() and self.n_latent > n_train:
            raise ValueError(
                f"n_latent={self.n_latent} exceeds the {n_train} training rows; "
                "decrease n_latent or pass more data."
            )

    def _build_module(self, n_features: int) -> LatentFlowDensity | SequenceLatentFlowDensity:
        if self._is_sequence_latent():
            return sequence_latent_flow(
                self._image_shape(n_features),
                self.n_latent,
                n_downsamples=self.n_downsamples,
                code_dim=self.code_dim,
                encoder_channels=self.hidden_size,
                prior_layers=self.prior_layers,
                prior_embd=self.prior_hidden_size,
                top_m=self.top_m,
                n_levels=self.n_levels,
                **self._image_flow_settings(),
            )
        flow = spline_flow(
            n_features,
            context_size=self.n_latent,
            n_layers=self.n_layers,
            hidden_size=self.hidden_size,
            n_hidden_layers=self.n_hidden_layers,
            n_bins=self.n_bins,
            tail_bound=self.tail_bound,
            lu_linear=self.lu_linear,
            context_affine=True,
        )
        return LatentFlowDensity(
            flow,
            self.n_latent,
            encoder_hidden_sizes=tuple(self.encoder_hidden_sizes),
            objective=self.objective,
            learn_prior=self.prior == "learned",
            temperature_start=self.temperature_start,
            temperature_end=self.temperature_end,
        )

    def _initialize_module(self, module, Z, sample_weight, generator, rng) -> None:
        if self._is_sequence_latent():
            rows = torch.randperm(Z.shape[0], generator=generator, device=Z.device)[:CODEBOOK_INIT_ROWS]
            module.initialize_codebook(add_dequantization_noise(Z[rows], self.n_levels, generator), generator)
            return
        Z_numpy = Z.cpu().numpy().astype(np.float64)
        if self.init_params == "kmeans":
            labels = KMeans(self.n_latent, n_init=3, random_state=rng).fit_predict(
                Z_numpy, sample_weight=sample_weight
            )
        else:
            centres = Z_numpy[rng.choice(len(Z_numpy), self.n_latent, replace=False)]
            labels = pairwise_distances_argmin(Z_numpy, centres)  # chunked: bounded memory
        labels = torch.as_tensor(labels, dtype=torch.long, device=Z.device)
        module.initialize_from_assignments(Z, labels, generator)

    def _train(self, module, data, seed: int) -> TrainingResult:
        """The sequence latent trains in two stages: all of it jointly, then the prior alone.

        Both stages select on the top-1 bound of the validation images (one
        flow pass each); the second refits the prior on the final, frozen codes.
        """
        if not self._is_sequence_latent():
            return super()._train(module, data, seed)
        module.top_m = 1
        result = super()._train(module, data, seed)
        if result.stop_reason != "interrupted":
            module.set_training_stage("prior")
            result = chain_results(result, super()._train(module, data, seed + 1))
            module.set_training_stage("joint")
        module.top_m = self.top_m
        return result

    def _set_fitted_attributes(self, X_train: np.ndarray) -> None:
        if self._is_sequence_latent():
            self._set_code_usage(X_train)
            return
        self.weights_ = self.module_.log_prior().exp().detach().cpu().numpy().astype(np.float64)
        self.state_usage_ = self.predict_proba(X_train).mean(axis=0)
        self.n_effective_latent_ = int(np.sum(self.state_usage_ * len(X_train) >= 1.0))
        if self.n_effective_latent_ < self.n_latent:
            warnings.warn(
                f"NVFDensity: only {self.n_effective_latent_} of n_latent={self.n_latent} states "
                "explain at least one training row; a smaller n_latent fits as well.",
                UserWarning,
                stacklevel=5,
            )

    def _set_code_usage(self, X_train: np.ndarray) -> None:
        counts = np.zeros(self.n_latent)
        with torch.no_grad():
            for rows in self._iter_model_rows(X_train + 0.5):  # bin centres
                codes = self.module_.encode(rows)[0].cpu().numpy()
                counts += np.bincount(codes.ravel(), minlength=self.n_latent)
        self.code_usage_ = counts / counts.sum()
        self.n_effective_latent_ = int(np.count_nonzero(counts))

    def _has_state_posterior(self) -> bool:
        return not self._is_sequence_latent()

    def predict_cluster(self, X):
        """Most probable latent state of each sample under the exact posterior.

        With ``latent="sequence"`` the state is a whole code sequence: the
        most probable of each image's ``top_m`` candidates under
        ``p(z) p(x | z)`` (exact when ``top_m >= n_latent ** L``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,) or (n_samples, L)
            ``argmax_k p(k | x)``; for the sequence latent, each image's codes
            in raster order over the code grid.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> X, _ = make_blobs(300, centers=2, random_state=0)
        >>> est = NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0)
        >>> est.fit(X).predict_cluster(X[:4]).shape
        (4,)
        """
        if not self._is_sequence_latent():
            return super().predict_cluster(X)
        with torch.no_grad():
            codes = [self.module_.most_likely_codes(rows).cpu().numpy() for rows in self._iter_model_rows(X)]
        return np.concatenate(codes)

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
