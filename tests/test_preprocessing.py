"""The tabular Standardizer: plain weighted mean and standard deviation, with gross outliers left out of the moments."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from nvf_sklearn import NFDensity
from nvf_sklearn._preprocessing import Standardizer

from .conftest import FAST


def _plain_moments(X, weights=None):
    location = np.average(X, axis=0, weights=weights)
    return location, np.sqrt(np.average((X - location) ** 2, axis=0, weights=weights))


@pytest.fixture
def blobs():
    X, _ = make_blobs(1500, n_features=3, centers=3, random_state=0)
    return X


def test_clean_data_gets_the_plain_weighted_mean_and_standard_deviation(rng):
    X = rng.normal([3.0, -200.0, 0.0], [1.0, 40.0, 1e-3], size=(2000, 3))
    weights = rng.uniform(0.1, 3.0, size=len(X))
    for w in (None, weights):
        standardizer = Standardizer().fit(X, w)
        location, scale = _plain_moments(X, w)
        np.testing.assert_allclose(standardizer.location_, location, rtol=1e-12)
        np.testing.assert_allclose(standardizer.scale_, scale, rtol=1e-12)
        np.testing.assert_array_equal(standardizer.n_excluded_, 0)


@pytest.mark.parametrize("offset", [8.0, 30.0])
def test_a_rare_mode_is_not_an_outlier(rng, offset):
    """Two main modes 10 apart and 1% of the rows `offset` spreads above the upper one: every row is in the moments."""
    column = np.r_[rng.normal(0.0, 1.0, 990), rng.normal(10.0, 1.0, 990), rng.normal(10.0 + offset, 0.1, 20)]
    X = np.c_[column, rng.normal(size=len(column))]
    standardizer = Standardizer().fit(X)
    location, scale = _plain_moments(X)
    np.testing.assert_array_equal(standardizer.n_excluded_, [0, 0])
    np.testing.assert_allclose(standardizer.location_, location, rtol=1e-12)
    np.testing.assert_allclose(standardizer.scale_, scale, rtol=1e-12)


def test_one_huge_value_does_not_squeeze_the_clean_rows(blobs):
    corrupted = blobs.copy()
    corrupted[17, 1] = 1e9
    clean = Standardizer().fit(blobs)
    robust = Standardizer().fit(corrupted)
    np.testing.assert_array_equal(robust.n_excluded_, [0, 1, 0])
    assert robust.scale_[1] == pytest.approx(clean.scale_[1], rel=0.02)
    assert abs(robust.location_[1] - clean.location_[1]) < 0.02 * clean.scale_[1]
    np.testing.assert_allclose(robust.location_[[0, 2]], clean.location_[[0, 2]], rtol=1e-12)
    np.testing.assert_allclose(robust.scale_[[0, 2]], clean.scale_[[0, 2]], rtol=1e-12)
    # The row is transformed, not dropped: it is far out, and the clean rows keep unit spread.
    Z = robust.transform(corrupted)
    assert Z[17, 1] > 1e7
    assert np.delete(Z[:, 1], 17).std() == pytest.approx(1.0, rel=0.02)


def test_the_estimator_scale_ignores_the_outlier(blobs):
    corrupted = blobs.copy()
    corrupted[17, 1] = 1e9
    clean = NFDensity(**FAST).fit(blobs)
    robust = NFDensity(**FAST).fit(corrupted)
    np.testing.assert_allclose(robust.scale_, clean.scale_, rtol=0.02)


def test_a_weight_of_two_is_the_row_repeated(blobs, rng):
    X = blobs[:300].copy()
    X[5, 0] = -1e6  # an outlier, so that the fence takes part
    weights = rng.integers(0, 4, size=len(X)).astype(np.float64)
    weights[5] = 1.0
    weighted = Standardizer().fit(X, weights)
    repeated = Standardizer().fit(np.repeat(X, weights.astype(int), axis=0))
    np.testing.assert_allclose(weighted.location_, repeated.location_, rtol=1e-12)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_, rtol=1e-12)
    np.testing.assert_array_equal(weighted.n_excluded_, [1, 0, 0])
    np.testing.assert_array_equal(repeated.n_excluded_, [1, 0, 0])


def test_zero_weight_rows_take_no_part_in_the_fence(rng):
    """10% of the rows at 1e6 with weight zero: unweighted percentiles would reach them and keep the outlier at 1e5."""
    X = np.r_[rng.normal(size=1000), 1e5, np.full(110, 1e6)][:, None]
    weights = np.r_[np.ones(1001), np.zeros(110)]
    weighted = Standardizer().fit(X, weights)
    kept = Standardizer().fit(X[:1001])
    np.testing.assert_array_equal(weighted.n_excluded_, [1])
    np.testing.assert_allclose(weighted.location_, kept.location_, rtol=1e-12)
    np.testing.assert_allclose(weighted.scale_, kept.scale_, rtol=1e-12)
    assert weighted.scale_[0] == pytest.approx(1.0, rel=0.1)


def test_huge_magnitudes_stay_finite_and_round_trip(rng):
    X = np.c_[1e200 * rng.normal(5.0, 1.0, 1000), rng.normal(size=1000)]
    X[3, 0] = 1e300
    X[4, 1], X[5, 1] = -1.7e308, 1.7e308  # the fence and the moments must not overflow
    with np.errstate(all="raise"):
        standardizer = Standardizer().fit(X)
    np.testing.assert_array_equal(standardizer.n_excluded_, [1, 2])
    assert standardizer.scale_[0] == pytest.approx(1e200, rel=0.1)
    assert standardizer.scale_[1] == pytest.approx(1.0, rel=0.1)
    Z = standardizer.transform(X)
    assert np.isfinite(Z).all() and np.isfinite(standardizer.log_det)
    np.testing.assert_allclose(standardizer.inverse_transform(Z), X, rtol=1e-12)


def test_a_spread_near_the_largest_float_is_rejected(rng):
    X = 1.7e308 * rng.uniform(-1.0, 1.0, size=(100, 1))
    with pytest.raises(ValueError, match="spread of .* too close to the largest float64"):
        Standardizer().fit(X)


def test_a_constant_column_gets_scale_one(rng):
    X = np.c_[np.full(50, 7.0), rng.normal(size=50)]
    standardizer = Standardizer().fit(X)
    assert standardizer.scale_[0] == 1.0 and standardizer.location_[0] == 7.0


def test_log_det_is_the_log_jacobian_of_transform(blobs):
    X = blobs * [1.0, 1e-3, 250.0]
    X[17, 1] = 1e9
    standardizer = Standardizer().fit(X)
    assert standardizer.log_det == pytest.approx(-np.log(standardizer.scale_).sum(), rel=1e-15)
    x, steps = X[0], 1e-3 * standardizer.scale_
    jacobian = np.column_stack(
        [
            (standardizer.transform((x + step * unit)[None])[0] - standardizer.transform((x - step * unit)[None])[0])
            / (2 * step)
            for step, unit in zip(steps, np.eye(len(x)))
        ]
    )
    sign, log_abs_det = np.linalg.slogdet(jacobian)
    assert sign == 1.0
    assert log_abs_det == pytest.approx(standardizer.log_det, rel=1e-6)
