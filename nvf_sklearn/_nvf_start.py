"""The warm start of NVFDensity's states: a Gaussian mixture fitted to the standardised rows.

Each state starts as one component (its mean, covariance and weight), so the
model starts as that mixture. The start also answers whether the data support
a full covariance per state: a full state map costs ``K d (d - 1)`` more
parameters than a diagonal one, and at 16 or more features with a few dozen
states those parameters overfit unless the clusters really are correlated.
A full map is then turned to each cluster's independent directions
(:func:`independent_frames`), along which the per-feature tails and splines
act.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lu
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import KMeans
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances_argmin
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from ._preprocessing import inside_outlier_fence
from ._tabular import MANY_FEATURES
from ._t_mixture import fit_student_t_mixture, t_log_density

#: Variance added to every state's covariance at the warm start (standardised units).
START_VARIANCE_FLOOR = 1e-4
#: Rows the warm start is fitted (and its covariance structure judged) on below ``MANY_FEATURES`` features, at most
#: (a random subset): 20,000, or fewer with many states, ``START_ROW_STATES // K`` but at least 5,000 (every EM step
#: costs rows times states).
START_MAX_ROWS, START_MIN_ROWS, START_ROW_STATES = 20_000, 5_000, 240_000
#: EM runs from different k-means starts (and k-means runs for the Student-t start); the most likely is kept.
#: ``START_INITS``, or ``max_inits`` where the EM has at least ``MANY_INITS_ROWS_PER_STATE`` rows per state
#: (``NVFDensity`` allows ``START_MAX_INITS`` from 4,096 training rows up; below, a whole fit takes seconds). One EM
#: run on the public 8-D, 16-D and 32-D clusters reached the best optimum of six to eight runs in one to three of
#: them, and a start in a poor optimum trains to a poorer model: from the best of 3 runs to the best of 10 the rotated
#: 16-D clusters went from 0.467 / 0.346 / 0.350 nats from the truth (three fit seeds) to 0.349 / 0.345 / 0.362, the
#: 8-D clusters from 0.044 / 0.084 to 0.043 / 0.037 (data seeds 0 / 1), the 32-D clusters from 0.303 / 0.247 to
#: 0.277 / 0.248 (922 rows per state). With 234 rows per state (K = 32 on 7,500 rows of 12 clusters) the most likely
#: of 10 runs was the most overfitted: 0.100 -> 0.104 nats over six fits, its start no better on validation. Beyond
#: ``MANY_INITS_MAX_ROW_STATES`` (125,000 rows at K = 32; from 16 features up the EM sees every row) one run costs
#: more than 6 s (32-D clusters: 2.8 to 3.4 s on 29,491 rows, 5.6 to 6.7 s on 100,000), and the start keeps 3.
START_INITS, START_MAX_INITS, MANY_INITS_ROWS_PER_STATE, MANY_INITS_MAX_ROW_STATES = 3, 10, 500, 4_000_000


@dataclass
class MixtureStart:
    """Starting means ``(K, d)``, covariances ``(K, d, d)`` (shrunk), weights ``(K,)`` and hard labels ``(n,)``.

    ``full_covariances_pay`` is True when full covariances beat their
    diagonals by the Bayesian information criterion on the start's rows
    (None when the start was not asked to compare them).
    ``states_per_row`` is :func:`states_holding_mass` on the start's rows
    (None when the start was not asked to measure it).
    ``inliers`` ``(n,)`` marks the rows inside every column's outlier fence
    (:func:`inside_fences`); the ``"gmm"`` start is fitted on those only.
    """

    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    full_covariances_pay: bool | None
    states_per_row: int | None
    inliers: np.ndarray


def fit_start(
    Z: np.ndarray,
    w: np.ndarray,
    n_states: int,
    init_params: str,
    rng: np.random.RandomState,
    compare_covariances: bool = True,
    measure_overlap: bool = True,
    heavy_tailed: bool = False,
    max_inits: int = START_MAX_INITS,
) -> MixtureStart:
    """Fit the warm start (``init_params``: "gmm", "kmeans" or "random") to standardised rows ``Z``.

    ``compare_covariances=False`` skips the BIC comparison of full and
    diagonal covariances, ``measure_overlap=False`` the count of states per
    row (the random stream is drawn from all the same). ``heavy_tailed``: the
    ``"gmm"`` start may be a Student-t mixture (:func:`heavier_tailed_start`),
    whose scale matrices then stand for the covariances, given at least
    :data:`START_TAIL_MIN_ROWS` rows per state. ``max_inits``: EM (and
    k-means) runs where the rows allow more than :data:`START_INITS`.
    """
    inliers = inside_fences(Z, w)
    if init_params == "gmm":
        # A start, not the model, need not cost an EM over every row; gross outliers would take a component.
        rows = start_rows(Z.shape, n_states, rng)
        rows = np.arange(len(Z))[rows][inliers[rows]]
        many = MANY_INITS_ROWS_PER_STATE * n_states <= len(rows) and len(rows) * n_states <= MANY_INITS_MAX_ROW_STATES
        n_inits = max_inits if many else START_INITS
        # GaussianMixture takes no sample weights: the start ignores them (rows of weight zero are gone).
        mixture = GaussianMixture(n_states, covariance_type="full", reg_covar=START_VARIANCE_FLOOR,
                                  n_init=n_inits, random_state=rng).fit(Z[rows])  # fmt: skip
        if heavy_tailed and len(rows) >= START_TAIL_MIN_ROWS * n_states:  # the rows a state's nu needs, as below
            mixture = heavier_tailed_start(Z[rows], mixture, rng, n_inits)
        labels, means, covariances = mixture.predict(Z), mixture.means_, mixture.covariances_
        counts = mixture.weights_ * len(Z)
    else:
        if init_params == "kmeans":
            labels = KMeans(n_states, n_init=3, random_state=rng).fit_predict(Z, sample_weight=w)
        else:
            centres = Z[rng.choice(len(Z), n_states, replace=False)]
            labels = pairwise_distances_argmin(Z, centres)  # chunked: bounded memory
        means, covariances, counts = cluster_moments(Z, w, labels, n_states)
        rows = start_rows(Z.shape, n_states, rng)
    weights = (counts + 1.0) / (counts.sum() + n_states)
    pays = full_covariances_pay(Z[rows], means, covariances, weights) if compare_covariances else None
    shrunk = shrunk_covariances(covariances, counts)
    states = states_holding_mass(Z[rows], means, shrunk, weights) if measure_overlap else None
    return MixtureStart(means, shrunk, weights, labels, pays, states, inliers)


def heavier_tailed_start(Z: np.ndarray, gaussian: GaussianMixture, rng: np.random.RandomState,
                         n_inits: int = START_INITS) -> GaussianMixture | FittedMixture:  # fmt: skip
    """The Gaussian mixture, or a Student-t mixture if the rows ``Z`` prefer one by BIC (same fitted attributes).

    Two t mixtures are fitted by EM (:mod:`._t_mixture`), one from the Gaussian
    mixture's labels and one from k-means' (best of ``n_inits``): on heavy-tailed
    clusters the Gaussian mixture tends to spend a component on the tails and
    merge two clusters, and k-means does not. On 6 skewed Student-t clusters
    (nu = 4) in 8-D the best of three EM runs put 83% and 86% of the rows on
    their own cluster's state (two draws; one held only 5 clusters), the t
    mixture 99.4% (``benchmarks.warm_start``), and it gained about 0.6 nats
    per row. The
    better t mixture is kept when it wins by the Bayesian information
    criterion (twice its gain exceeds its K extra parameters, the degrees of
    freedom, times ``log n``), so Gaussian clusters keep the Gaussian
    mixture. Its scale matrices take the place of the covariances: each
    state's own Student-t tails (:func:`state_tails`) are fitted after its map.
    """
    n_states = gaussian.n_components
    kmeans_labels = KMeans(n_states, n_init=n_inits, random_state=rng).fit_predict(Z)
    candidates = [fit_student_t_mixture(Z, labels, n_states, START_VARIANCE_FLOOR)
                  for labels in (gaussian.predict(Z), kmeans_labels)]  # fmt: skip
    gaussian_log_likelihood = gaussian.score(Z) * len(Z)
    gains = [candidate.log_likelihood(Z) - gaussian_log_likelihood for candidate in candidates]
    best = int(np.argmax(gains))
    if 2.0 * gains[best] <= n_states * np.log(len(Z)):
        return gaussian
    chosen = candidates[best]
    return FittedMixture(chosen.means, chosen.scales, chosen.weights, chosen.predict)


@dataclass
class FittedMixture:
    """The fitted attributes of a mixture as ``GaussianMixture`` names them, and its ``predict``."""

    means_: np.ndarray
    covariances_: np.ndarray
    weights_: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]


def inside_fences(Z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows inside every column's outlier fence (those the standardisation's moments counted)."""
    return np.all(np.column_stack([inside_outlier_fence(column, w) for column in Z.T]), axis=1)


def start_rows(shape: tuple[int, int], n_states: int, rng: np.random.RandomState) -> np.ndarray | slice:
    """The rows of a table of ``shape`` the start is fitted on: all of them, or a random subset.

    Below ``MANY_FEATURES`` features at most 20,000 rows: 20,000 up to 12
    states, 10,000 at 24 and 7,500 at 32. On 20,000 rows the start with
    K = 32 on 8-D clusters took 15 s of a 108 s fit (6 s on 7,500). From 16
    features up every row: a full covariance there has at least 136
    parameters per state, and on 24 rotated clusters in 16-D (29,491 rows)
    the start on 10,000 rows left the trained model 0.538 / 0.400 / 0.397
    nats from the truth (three fit seeds), the start on every row 0.467 /
    0.346 / 0.350, for 2.6 s more (13.5 s more at 32-D with K = 32).
    """
    n_rows, n_features = shape
    if n_features >= MANY_FEATURES:
        return slice(None)
    size = min(max(START_ROW_STATES // n_states, START_MIN_ROWS), START_MAX_ROWS)
    return rng.choice(n_rows, size, replace=False) if n_rows > size else slice(None)


def cluster_moments(Z: np.ndarray, weights: np.ndarray, labels: np.ndarray, n_clusters: int):
    """Weighted means ``(K, d)``, covariances ``(K, d, d)`` and row counts ``(K,)`` of hard clusters.

    Every covariance gets ``START_VARIANCE_FLOOR`` on its diagonal; a cluster
    of fewer than two rows (or weight zero) gets the identity. Counts are the
    clusters' weights scaled to sum to the number of rows.
    """
    d = Z.shape[1]
    means, covariances = np.zeros((n_clusters, d)), np.tile(np.eye(d), (n_clusters, 1, 1))
    counts = np.bincount(labels, minlength=n_clusters)
    mass = np.bincount(labels, weights=weights, minlength=n_clusters)
    for k in range(n_clusters):
        rows = labels == k
        if mass[k] <= 0:
            continue
        means[k] = np.average(Z[rows], axis=0, weights=weights[rows])
        if counts[k] > 1:
            centred = Z[rows] - means[k]
            covariances[k] = (centred * weights[rows, None]).T @ centred / mass[k]
            covariances[k] += START_VARIANCE_FLOOR * np.eye(d)
    return means, covariances, mass / mass.sum() * len(Z)


def shrunk_covariances(covariances: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each covariance pulled towards the pooled within-state shape, at its own size, by ``d + 1`` pseudo-rows.

    A state with thousands of rows keeps its own covariance; one with about
    ``d`` rows (many states, few rows, many features) starts half-way to the
    pooled shape instead of nearly singular, which would make it start far
    too peaked. The pooled covariance is rescaled to each state's own
    determinant: shrinking a small, rare cluster towards the pooled
    covariance itself would inflate it by the ratio of the clusters' scales
    (on clusters whose scales span 13x this cost the start 0.04 nats).
    """
    d = covariances.shape[-1]
    pooled = np.einsum("k,kij->ij", counts, covariances) / counts.sum()
    own_size = np.exp((np.linalg.slogdet(covariances)[1] - np.linalg.slogdet(pooled)[1]) / d)
    prior = d + 1
    target = own_size[:, None, None] * pooled
    return (counts[:, None, None] * covariances + prior * target) / (counts + prior)[:, None, None]


def diagonal_part(covariances: np.ndarray) -> np.ndarray:
    """The covariances ``(K, d, d)`` with their off-diagonal entries set to zero."""
    return np.einsum("kii->ki", covariances)[:, :, None] * np.eye(covariances.shape[-1])


def mixture_log_joint(Z: np.ndarray, means: np.ndarray, covariances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(n, K)``: ``log pi_k + log N(z; mu_k, Sigma_k)`` of every row under every component."""
    per_state = np.column_stack(
        [multivariate_normal(mean, covariance).logpdf(Z).reshape(len(Z)) for mean, covariance in zip(means, covariances)]
    )
    return per_state + np.log(weights)


def mixture_log_likelihood(Z: np.ndarray, means: np.ndarray, covariances: np.ndarray, weights: np.ndarray) -> float:
    """Total log-likelihood of the rows ``Z`` under a Gaussian mixture."""
    return float(logsumexp(mixture_log_joint(Z, means, covariances, weights), axis=1).sum())


def states_holding_mass(Z: np.ndarray, means: np.ndarray, covariances: np.ndarray, weights: np.ndarray,
                        mass: float = 0.99, quantile: float = 0.9) -> int:
    """States a row needs to hold ``mass`` of its posterior under the mixture, at the ``quantile`` of rows.

    One where the components are well apart; more where they overlap (a
    low-dimensional table, or more states than clusters, which split them).
    """
    log_joint = mixture_log_joint(Z, means, covariances, weights)
    posterior = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    ranked = np.cumsum(-np.sort(-posterior, axis=1), axis=1)
    needed = 1 + np.sum(ranked < mass, axis=1)
    return int(np.ceil(np.quantile(needed, quantile)))


def full_covariances_pay(Z: np.ndarray, means: np.ndarray, covariances: np.ndarray, weights: np.ndarray) -> bool:
    """Whether full covariances beat their diagonals (same means and weights) by BIC on ``Z``.

    The full mixture has ``K d (d - 1) / 2`` more free parameters; it is
    preferred when twice its gain in log-likelihood exceeds that count times
    ``log(n)``. Uncorrelated clusters gain only sampling noise and keep the
    diagonal; rotated or correlated clusters gain far more. The Akaike
    criterion (gain > count) was measured and rejected: it chose the full map
    for 32 states on 8-D clusters (0.016 to 0.035 nats further from the truth
    after training), for close 8-D clusters (+0.013) and for one seed of the
    16-D case, where a local optimum of the mixture gains 0.46 nats per row;
    it won only on 2,000 rows of 8 mildly rotated clusters in 6-D (0.073
    against 0.156), where the Bayesian threshold is 0.23 nats per row.
    """
    n, d = Z.shape
    diagonals = diagonal_part(covariances)
    gain = mixture_log_likelihood(Z, means, covariances, weights) - mixture_log_likelihood(Z, means, diagonals, weights)
    extra_parameters = len(means) * d * (d - 1) / 2
    return bool(2.0 * gain > extra_parameters * np.log(n))


#: Degrees of freedom the Student-t start chooses from (a normal is within 0.0002 nats per feature of nu = 300).
START_DOF_GRID = np.geomspace(1.5, 300.0, 24)
#: Rows of a state the t start looks at, at most; a state with fewer than the minimum keeps ``INITIAL_DOF``.
START_TAIL_ROWS, START_TAIL_MIN_ROWS = 5_000, 30


def student_t_marginals(residuals: np.ndarray, n_iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``residuals`` ``(n, d)`` (centred), the maximum-likelihood Student-t ``(nu, scale)``.

    ``nu`` from :data:`START_DOF_GRID`; for each ``nu`` the scale by the EM
    fixed point ``s^2 = mean(u r^2)``, ``u = (nu + 1) / (nu + r^2 / s^2)``.
    """
    n = len(residuals)
    nu = START_DOF_GRID[:, None, None]  # (G, 1, 1) against (G, d, n)
    squared = (residuals**2).T  # (d, n)
    scale2 = np.broadcast_to(squared.mean(axis=1), (len(START_DOF_GRID), residuals.shape[1])).copy()  # (G, d)
    for _ in range(n_iterations):
        weights = (nu + 1.0) / (nu + squared / scale2[:, :, None])
        scale2 = np.maximum(np.einsum("gdn,dn->gd", weights, squared) / n, 1e-12)
    # Summed over the rows (scipy.stats' logpdf, with its checks per call, cost 35% of this function).
    variance = scale2[:, :, None]  # (G, d, 1) against the rows
    log_likelihood = t_log_density(np.log(variance), squared / variance, nu, 1).sum(axis=2)  # (G, d)
    best = np.argmax(log_likelihood, axis=0)
    columns = np.arange(residuals.shape[1])
    return START_DOF_GRID[best], np.sqrt(scale2[best, columns])


def state_tails(Z: np.ndarray, labels: np.ndarray, means: np.ndarray, maps: np.ndarray,
                initial_dof: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each state's Student-t ``(nu, scale)`` per feature of its rows mapped by its start, ``(K, d)`` each.

    State k's rows (hard labels) mapped by ``maps[k] (z - means[k])`` have unit
    variance; a t of unit scale with ``nu`` degrees of freedom has variance
    ``nu / (nu - 2)``, so the scale is fitted with ``nu``, and dividing the
    map's rows by it makes the start the maximum-likelihood t per state.
    """
    n_states, d = means.shape
    dof, scale = np.full((n_states, d), initial_dof), np.ones((n_states, d))
    for k in range(n_states):
        rows = Z[labels == k][:START_TAIL_ROWS]
        if len(rows) >= START_TAIL_MIN_ROWS:
            dof[k], scale[k] = student_t_marginals((rows - means[k]) @ maps[k].T)
    return dof, scale


def skew_contrast(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FastICA's contrast for skewed sources: ``G(u) = u^3 / 3``, so ``g(u) = u^2`` and ``g'(u) = 2u`` (averaged)."""
    return u * u, 2.0 * u.mean(axis=-1)


#: FastICA contrasts tried for each state's frame: tails (logcosh), kurtosis (cube), skew. On the rotated skewed
#: clusters skew found the frame best, on Student-t clusters logcosh; the marginal entropy picks per state.
ICA_CONTRASTS = ("logcosh", "cube", skew_contrast)
#: FastICA iterations per contrast at most (6 to 25 sufficed on the public cases; logcosh may not converge at 32-D).
ICA_ITERATIONS = 50


def marginal_entropy(Y: np.ndarray) -> float:
    """Sum over the columns of ``Y`` of each column's differential entropy (m-spacing estimate, ``m = sqrt(n)``)."""
    n = len(Y)
    m = max(1, int(round(np.sqrt(n))))
    ordered = np.sort(Y, axis=0)
    spacings = np.maximum(ordered[m:] - ordered[:-m], 1e-12)
    return float(np.mean(np.log(n / m * spacings), axis=0).sum())


def independent_frames(Z: np.ndarray, labels: np.ndarray, means: np.ndarray, maps: np.ndarray,
                       rng: np.random.RandomState) -> np.ndarray:  # fmt: skip
    """Each state's whitening map turned to its rows' independent directions (ICA), ``(K, d, d)``.

    Any rotation ``Q`` of a whitening map ``M`` whitens as well, so the start
    is the same Gaussian mixture; but the per-feature layers that follow (a
    Student-t and a spline per state and feature) act along the map's output
    axes, and a skewed or heavy-tailed cluster is a product of independent
    marginals only in its own frame. FastICA with each of
    :data:`ICA_CONTRASTS` proposes a frame for the state's whitened rows; the
    best is the one whose columns have the smallest sum of marginal
    entropies, which is the maximum-likelihood frame for a product of free
    marginals (a rotation has a unit Jacobian). It replaces the map when it
    wins by the Bayesian information criterion: its gain in log-likelihood
    over the map's own frame, ``n`` times the entropy difference, exceeds
    ``d (d - 1) / 4 * log n`` (half the rotation's angles times ``log n``); on
    a Gaussian cluster every frame is as good and a frame chosen on its rows
    fits only their noise (on 8 rotated Gaussian clusters of 32 to 3,200 rows
    in 6-D this cost 0.012 to 0.019 nats without the test). The rows of
    ``Q M`` are then put in the order (and signs) an LU factorisation without
    row exchanges needs. States with fewer than :data:`START_TAIL_MIN_ROWS`
    rows (or ``2 d``) keep their map.
    """
    turned = maps.copy()
    with threadpool_limits(1):  # small products: BLAS threads only contend (7x slower beside a busy torch)
        for k in range(len(means)):
            turned[k] = _independent_frame(Z[labels == k][:START_TAIL_ROWS], means[k], maps[k], rng)
    return turned


def _independent_frame(rows: np.ndarray, mean: np.ndarray, whitening: np.ndarray,
                       rng: np.random.RandomState) -> np.ndarray:  # fmt: skip
    d = len(mean)
    if len(rows) < max(START_TAIL_MIN_ROWS, 2 * d):
        return whitening
    white = (rows - mean) @ whitening.T
    frames = ica_frames(white, rng)
    entropies = [marginal_entropy(white @ frame.T) for frame in frames]
    best = int(np.argmin(entropies))
    # BIC for the rotation's d (d - 1) / 2 angles: a frame chosen on a few rows of a Gaussian cluster only fits noise.
    if len(rows) * (marginal_entropy(white) - entropies[best]) <= d * (d - 1) / 4 * np.log(len(rows)):
        return whitening
    return pivot_free(frames[best] @ whitening)


def ica_frames(white: np.ndarray, rng: np.random.RandomState) -> list[np.ndarray]:
    """The orthogonal unmixing matrix FastICA finds for whitened rows with each of :data:`ICA_CONTRASTS`."""
    frames = []
    for contrast in ICA_CONTRASTS:
        ica = FastICA(whiten=False, fun=contrast, max_iter=ICA_ITERATIONS, random_state=rng.randint(2**31 - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a partly turned frame is still a whitening map
            frames.append(ica.fit(white).components_)
    return frames


def pivot_free(matrix: np.ndarray) -> np.ndarray:
    """``matrix``'s rows reordered and signed so that it factors as ``L U`` without row exchanges, ``diag(U) > 0``."""
    permutation, _, upper = lu(matrix)  # matrix = P L U, so P^T matrix = L U
    signs = np.sign(np.diag(upper))
    signs[signs == 0] = 1.0
    return signs[:, None] * (permutation.T @ matrix)
