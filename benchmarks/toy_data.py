"""Multi-modal benchmark data sets, with the true log-density where it is known.

Every generator takes ``(n, rng)`` and returns an ``(n, d)`` array; a data set
whose density is known also provides ``log_density(X)`` so the tables can
print the gap to the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, t as student_t
from sklearn.datasets import make_moons


@dataclass
class ToyDataset:
    name: str
    generate: Callable[[int, np.random.Generator], np.ndarray]
    log_density: Callable[[np.ndarray], np.ndarray] | None = None


def two_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    X, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
    return X


RING_RADIUS, RING_STD, RING_MODES = 4.0, 0.25, 8
_RING_CENTRES = RING_RADIUS * np.c_[
    np.cos(2 * np.pi * np.arange(RING_MODES) / RING_MODES),
    np.sin(2 * np.pi * np.arange(RING_MODES) / RING_MODES),
]


def ring_of_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    modes = rng.integers(RING_MODES, size=n)
    return _RING_CENTRES[modes] + RING_STD * rng.normal(size=(n, 2))


def ring_log_density(X: np.ndarray) -> np.ndarray:
    per_mode = norm.logpdf(X[:, None, :], _RING_CENTRES[None], RING_STD).sum(-1)
    return logsumexp(per_mode, axis=1) - np.log(RING_MODES)


def pinwheel(n: int, rng: np.random.Generator) -> np.ndarray:
    """Five curved arms (Johnson et al., 2016)."""
    arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
    angles = np.linspace(0, 2 * np.pi, arms, endpoint=False)
    features = rng.normal(size=(n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = rng.integers(arms, size=n)
    rotation = angles[labels] + rate * np.exp(features[:, 0])
    cos, sin = np.cos(rotation), np.sin(rotation)
    return 2.0 * np.c_[cos * features[:, 0] - sin * features[:, 1], sin * features[:, 0] + cos * features[:, 1]]


CHECKER_SIZE = 4


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the 8 dark squares of a 4 x 4 board on [-4, 4]^2."""
    x1 = rng.uniform(-CHECKER_SIZE, CHECKER_SIZE, size=n)
    column = np.floor(x1 / 2.0)
    x2 = rng.uniform(-CHECKER_SIZE, CHECKER_SIZE - 2.0, size=n)
    row = np.floor(x2 / 2.0)
    x2 = x2 + 2.0 * ((row + column) % 2 != 0)  # move to the dark square in this column
    return np.c_[x1, x2]


def checkerboard_log_density(X: np.ndarray) -> np.ndarray:
    inside = np.all(np.abs(X) < CHECKER_SIZE, axis=1)
    dark = (np.floor(X[:, 0] / 2.0) + np.floor(X[:, 1] / 2.0)) % 2 == 0
    return np.where(inside & dark, -np.log(32.0), -np.inf)


@dataclass
class SkewedHeavyTailedMixture:
    """A mixture of skewed Student-t clusters in d dimensions, density known exactly.

    Component k: ``z ~ t_nu`` independently per dimension, ``y = sinh((asinh(z)
    + skew) / tail)`` (a sinh-arcsinh warp: skewed, heavy-tailed), then
    ``x = mu_k + R_k (s_k * y)`` with a random rotation ``R_k``.
    """

    dimension: int = 8
    n_components: int = 6
    nu: float = 4.0
    spread: float = 6.0
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        d, k = self.dimension, self.n_components
        self.means = self.spread * rng.normal(size=(k, d))
        self.scales = rng.uniform(0.3, 1.2, size=(k, d))
        self.rotations = np.stack([np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(k)])
        self.skews = rng.uniform(-1.0, 1.0, size=(k, d))
        self.tails = rng.uniform(0.7, 1.0, size=(k, d))
        self.weights = rng.dirichlet(np.full(k, 5.0))

    def generate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(self.n_components, size=n, p=self.weights)
        z = rng.standard_t(self.nu, size=(n, self.dimension))
        y = np.sinh((np.arcsinh(z) + self.skews[labels]) / self.tails[labels])
        return self.means[labels] + np.einsum("nij,nj->ni", self.rotations[labels], self.scales[labels] * y)

    def log_density(self, X: np.ndarray) -> np.ndarray:
        per_component = np.stack([self._component_log_density(X, k) for k in range(self.n_components)], axis=1)
        return logsumexp(per_component + np.log(self.weights), axis=1)

    def _component_log_density(self, X: np.ndarray, k: int) -> np.ndarray:
        y = ((X - self.means[k]) @ self.rotations[k]) / self.scales[k]
        z = np.sinh(self.tails[k] * np.arcsinh(y) - self.skews[k])
        # dz/dy = tail * cosh(tail * asinh(y) - skew) / sqrt(1 + y^2)
        log_dz_dy = (
            np.log(self.tails[k])
            + np.log(np.cosh(self.tails[k] * np.arcsinh(y) - self.skews[k]))
            - 0.5 * np.log1p(y * y)
        )
        return (student_t.logpdf(z, self.nu) + log_dz_dy).sum(axis=1) - np.log(self.scales[k]).sum()


def toy_suite() -> list[ToyDataset]:
    mixture = SkewedHeavyTailedMixture()
    return [
        ToyDataset("two moons", two_moons),
        ToyDataset("8 Gaussians (ring)", ring_of_gaussians, ring_log_density),
        ToyDataset("pinwheel", pinwheel),
        ToyDataset("checkerboard", checkerboard, checkerboard_log_density),
        ToyDataset(f"skewed t mixture (d={mixture.dimension})", mixture.generate, mixture.log_density),
    ]
