"""The Student-t mixture of NVFDensity's warm start: exact density, EM recovery, and when the start uses it."""

import numpy as np
from scipy.stats import multivariate_t
from sklearn.mixture import GaussianMixture

from nvf_sklearn._nvf_start import fit_start, heavier_tailed_start
from nvf_sklearn._t_mixture import StudentTMixture, fit_student_t_mixture

MEANS = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]])
SCALES = np.array([np.eye(3), [[1.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 0.5]]])
WEIGHTS = np.array([0.3, 0.7])


def t_clusters(n: int, dof: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    counts = (n * WEIGHTS).astype(int)
    X = np.vstack([multivariate_t(MEANS[k], SCALES[k], df=dof).rvs(counts[k], random_state=seed + k) for k in range(2)])
    return X, np.repeat([0, 1], counts)


def test_log_joint_is_scipys_multivariate_t():
    mixture = StudentTMixture(MEANS, SCALES, WEIGHTS, np.array([3.0, 50.0]))
    Z = np.random.default_rng(0).normal(size=(7, 3)) * 3.0
    expected = np.column_stack([np.log(WEIGHTS[k]) + multivariate_t(MEANS[k], SCALES[k], df=mixture.dof[k]).logpdf(Z)
                                for k in range(2)])  # fmt: skip
    np.testing.assert_allclose(mixture.log_joint(Z), expected, rtol=0, atol=1e-10)


def test_em_recovers_heavy_tailed_clusters_from_rough_labels():
    X, labels = t_clusters(20_000, dof=3.0)
    rough = (X[:, 0] + X[:, 1] > 6.0).astype(int)  # a linear split: right for most rows, not all
    fitted = fit_student_t_mixture(X, rough, 2, variance_floor=1e-4)
    np.testing.assert_allclose(fitted.means, MEANS, atol=0.05)
    np.testing.assert_allclose(fitted.weights, WEIGHTS, atol=0.01)
    np.testing.assert_allclose(fitted.scales, SCALES, atol=0.2)
    assert np.all((fitted.dof > 2.0) & (fitted.dof < 5.0))
    bayes = StudentTMixture(MEANS, SCALES, WEIGHTS, np.array([3.0, 3.0])).predict(X)  # the best any model can do
    assert np.mean(fitted.predict(X) == bayes) > 0.998 and np.mean(bayes == labels) > 0.99


def test_gaussian_clusters_keep_the_gaussian_mixture():
    X, _ = t_clusters(5_000, dof=1e6)  # effectively Gaussian
    gaussian = GaussianMixture(2, random_state=0).fit(X)
    assert heavier_tailed_start(X, gaussian, np.random.RandomState(0)) is gaussian


def test_heavy_tailed_clusters_get_the_t_mixture_start():
    """Cauchy-like clusters: the t start's scale matrices are the clusters' own; nu is found near the truth."""
    X, _ = t_clusters(8_000, dof=1.5)
    start = fit_start(X, np.ones(len(X)), 2, "gmm", np.random.RandomState(0), measure_overlap=False,
                      heavy_tailed=True)  # fmt: skip
    order = np.argsort(start.means[:, 0])
    bayes = StudentTMixture(MEANS, SCALES, WEIGHTS, np.array([1.5, 1.5])).predict(X)
    assert np.mean(order[bayes] == start.labels) > 0.99
    np.testing.assert_allclose(start.means[order], MEANS, atol=0.1)
    np.testing.assert_allclose(start.covariances[order], SCALES, atol=0.25)  # a Gaussian's would be far wider
