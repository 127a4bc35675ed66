"""A mixture of multivariate Student-t distributions fitted by EM: the heavy-tailed candidate of NVF's warm start.

A Gaussian mixture with K components fitted to K heavy-tailed clusters tends
to spend a component on the tails of several clusters and merge two others:
wide Gaussians pay for outlying rows that a t component explains at no cost.
The t mixture (McLachlan and Peel, 2000, chapter 7) down-weights each row in
each component by ``u = (nu + d) / (nu + delta)``, ``delta`` its squared
Mahalanobis distance, so a component follows its cluster's core; on Gaussian
clusters ``nu`` grows large and it is the Gaussian mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

#: Degrees of freedom each component chooses from at every M-step (a normal is nu = 300 within a rounding).
DOF_GRID = np.geomspace(1.5, 300.0, 12)


@dataclass
class StudentTMixture:
    """Means ``(K, d)``, scale matrices ``(K, d, d)``, weights ``(K,)`` and degrees of freedom ``(K,)``."""

    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    dof: np.ndarray

    def log_joint(self, Z: np.ndarray) -> np.ndarray:
        """``(n, K)``: ``log pi_k + log t(z; mu_k, S_k, nu_k)``."""
        return np.column_stack([
            np.log(self.weights[k]) + t_log_density(*_mahalanobis(Z, self.means[k], self.scales[k]), self.dof[k], Z.shape[1])
            for k in range(len(self.weights))
        ])  # fmt: skip

    def log_likelihood(self, Z: np.ndarray) -> float:
        """Total log-likelihood of the rows ``Z``."""
        return float(logsumexp(self.log_joint(Z), axis=1).sum())

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """The most probable component of each row."""
        return np.argmax(self.log_joint(Z), axis=1)


def fit_student_t_mixture(Z: np.ndarray, labels: np.ndarray, n_components: int, variance_floor: float,
                          max_iterations: int = 30, tolerance: float = 1e-4) -> StudentTMixture:  # fmt: skip
    """EM from hard ``labels``, until the mean log-likelihood gains less than ``tolerance`` per row.

    Each iteration sets every component's weight, mean and scale matrix
    (``variance_floor`` added to its diagonal) from the responsibility- and
    ``u``-weighted rows, then its ``nu`` to the best of :data:`DOF_GRID` for
    its responsible rows at the new mean and scale (an ECM step), and then
    the responsibilities and ``u``.
    """
    n, d = Z.shape
    responsibilities = np.eye(n_components)[labels]
    pulls = np.ones((n, n_components))
    mixture, previous = None, -np.inf
    for _ in range(max_iterations):
        mass = responsibilities.sum(axis=0) + 1e-10
        means, scales, dof = np.empty((n_components, d)), np.empty((n_components, d, d)), np.empty(n_components)
        log_joint = np.empty((n, n_components))
        for k in range(n_components):
            pull = responsibilities[:, k] * pulls[:, k]
            means[k] = pull @ Z / max(pull.sum(), 1e-10)
            centred = Z - means[k]
            scales[k] = (centred * pull[:, None]).T @ centred / mass[k] + variance_floor * np.eye(d)
            log_det, delta = _mahalanobis(Z, means[k], scales[k])
            log_densities = [t_log_density(log_det, delta, nu, d) for nu in DOF_GRID]
            best = int(np.argmax([responsibilities[:, k] @ log_density for log_density in log_densities]))
            dof[k] = DOF_GRID[best]
            log_joint[:, k] = np.log(mass[k] / mass.sum()) + log_densities[best]
            pulls[:, k] = (dof[k] + d) / (dof[k] + delta)
        mixture = StudentTMixture(means, scales, mass / mass.sum(), dof)
        row_likelihood = logsumexp(log_joint, axis=1, keepdims=True)
        responsibilities = np.exp(log_joint - row_likelihood)
        current = float(row_likelihood.mean())
        if current - previous < tolerance:
            break
        previous = current
    return mixture


def _mahalanobis(Z: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> tuple[float, np.ndarray]:
    """``(log det S, delta)`` with ``delta`` the squared Mahalanobis distance of every row."""
    cholesky = np.linalg.cholesky(scale)
    whitened = (Z - mean) @ np.linalg.inv(cholesky).T  # a product, far cheaper than a solve per row
    return 2.0 * float(np.log(np.diag(cholesky)).sum()), np.einsum("ij,ij->i", whitened, whitened)


def t_log_density(log_det, delta: np.ndarray, nu, d: int) -> np.ndarray:
    """Log-density of the d-variate t (scale matrix of log-determinant ``log_det``) at squared distances ``delta``.

    ``log_det`` and ``nu`` may be arrays that broadcast against ``delta`` (a grid of fits at once).
    """
    normaliser = gammaln((nu + d) / 2.0) - gammaln(nu / 2.0) - 0.5 * d * np.log(nu * np.pi) - 0.5 * log_det
    return normaliser - 0.5 * (nu + d) * np.log1p(delta / nu)
