"""Image estimators on scikit-learn's digits: the API, units, bounds and bad input.

``NFDensity(image_shape=...)`` is an image flow; ``NVFDensity(latent="sequence")``
adds a grid of discrete codes with a causal transformer prior. Both take rows of
integer pixel levels and score dequantised pixels in pixel-level units.
"""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nvf_sklearn import NFDensity, NVFDensity
from nvf_sklearn._engine.bits import logit_transform

LEVELS, SHAPE, D = 17, (8, 8), 64
TINY = dict(
    image_shape=SHAPE, n_levels=LEVELS, n_layers=2, hidden_size=8, n_hidden_layers=1,
    max_epochs=2, batch_size=64, device="cpu", random_state=0,
    # float64: float32 conv kernels block the batch differently by its size, so a
    # row's float32 score can move by ~1e-7 relative between a subset and the full set.
    dtype="float64",
)
SEQUENCE = dict(latent="sequence", n_downsamples=2, code_dim=4, top_m=4, **TINY)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300]


@pytest.fixture(scope="module")
def fitted_sequence(digits):
    return NVFDensity(5, **SEQUENCE).fit(digits)


@pytest.fixture(scope="module")
def fitted_image_flow(digits):
    return NFDensity(**TINY).fit(digits)


def _dequantized(levels, seed=0):
    return levels + np.random.RandomState(seed).uniform(size=levels.shape)


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_sequence"])
def test_scores_are_finite_and_subsets_agree_with_the_full_set(which, digits, request):
    estimator = request.getfixturevalue(which)
    X = _dequantized(digits)
    full = estimator.score_samples(X)
    assert full.shape == (len(X),) and np.isfinite(full).all()
    rows = np.array([7, 0, 299, 150])
    np.testing.assert_array_equal(estimator.score_samples(X[rows]), full[rows])


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_sequence"])
def test_bits_per_dim_is_minus_the_mean_log_density_in_pixel_units(which, digits, request):
    estimator = request.getfixturevalue(which)
    expected = -estimator.score_samples(_dequantized(digits, seed=3)).mean() / (D * math.log(2))
    assert estimator.bits_per_dim(digits, random_state=3) == pytest.approx(expected, rel=1e-12)
    assert estimator.bits_per_dim(digits) == estimator.bits_per_dim(digits)  # fixed noise by default


def test_untrained_image_flow_scores_the_logit_gaussian_by_hand(digits):
    """Units: at initialisation the flow is the logit pre-transform followed by N(0, I).

    By the change of variables, log q(x) = log N(s) + log|ds/dy| - D log(n_levels)
    for x = p + u in pixel units, y = x / n_levels, s = logit(alpha + (1 - 2 alpha) y).
    A learning rate of 1e-30 leaves the zero-initialised couplings at the identity.
    """
    estimator = NFDensity(**{**TINY, "max_epochs": 1, "learning_rate": 1e-30}).fit(digits)
    X = _dequantized(digits[:20])
    s, log_det = logit_transform(torch.as_tensor(X / LEVELS), 0.05)
    log_normal = (-0.5 * s**2 - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    expected = (log_normal + log_det).numpy() - D * math.log(LEVELS)
    np.testing.assert_allclose(estimator.score_samples(X), expected, rtol=1e-5)


def test_sequence_latent_outputs(fitted_sequence, digits):
    n_positions = 4  # an 8x8 image downsampled twice: a 2x2 code grid
    codes = fitted_sequence.predict_cluster(digits[:10])
    assert codes.shape == (10, n_positions) and codes.min() >= 0 and codes.max() < 5
    np.testing.assert_array_equal(fitted_sequence.predict(digits[:10]), codes)
    X_new, codes_new = fitted_sequence.sample(6)
    assert X_new.shape == (6, D) and codes_new.shape == (6, n_positions)
    assert fitted_sequence.code_usage_.shape == (5,)
    assert fitted_sequence.code_usage_.sum() == pytest.approx(1.0)
    assert 1 <= fitted_sequence.n_effective_latent_ <= 5
    assert not hasattr(fitted_sequence, "predict_proba")
    assert fitted_sequence.n_iter_ == len(fitted_sequence.validation_scores_)


def test_samples_are_in_pixel_units(fitted_image_flow):
    X_new, _ = fitted_image_flow.sample(50)
    margin = 0.05 / 0.9 * LEVELS  # the logit pre-transform's support, in pixel units
    assert X_new.min() > -margin and X_new.max() < LEVELS + margin


def test_the_top_m_bound_tightens_with_m(fitted_sequence, digits):
    """score_samples is log sum over the top-m code sequences: non-decreasing in m, exact at V ** L."""
    X = _dequantized(digits[:15])
    module = fitted_sequence.module_
    rows = torch.as_tensor(X / LEVELS)
    with torch.no_grad():
        bounds = [module.log_prob_bound(rows, top_m=m).numpy() for m in (1, 4, 32, 5**4)]
    for smaller, larger in zip(bounds, bounds[1:]):
        assert (larger >= smaller - 1e-4).all()
    estimator_bound = fitted_sequence.score_samples(X) + D * math.log(LEVELS)
    np.testing.assert_allclose(estimator_bound, bounds[1], rtol=1e-5, atol=1e-4)  # top_m=4


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_sequence"])
def test_pickle_round_trip_is_exact(which, digits, request):
    estimator = request.getfixturevalue(which)
    X = _dequantized(digits[:30])
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.score_samples(X), estimator.score_samples(X))
    np.testing.assert_array_equal(restored.sample(4, random_state=1)[0], estimator.sample(4, random_state=1)[0])


def test_tabular_models_have_no_bits_per_dim(digits):
    assert not hasattr(NFDensity(), "bits_per_dim")
    assert hasattr(NFDensity(image_shape=SHAPE), "bits_per_dim")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X: np.where(X < 16, X + 0.5, X), "integer pixel levels"),
        (lambda X: X * 16, "ranges over"),
        (lambda X: X - 1, "ranges over"),
        (lambda X: X[:, :60], "image_shape"),
    ],
    ids=["fractional", "too many levels", "negative", "wrong pixel count"],
)
def test_bad_pixels_are_rejected_and_the_fit_kept(fitted_image_flow, digits, change, message):
    estimator = copy.deepcopy(fitted_image_flow)
    before = estimator.score_samples(digits[:5])
    with pytest.raises(ValueError, match=message):
        estimator.fit(change(digits))
    np.testing.assert_array_equal(estimator.score_samples(digits[:5]), before)


@pytest.mark.parametrize(
    "params",
    [dict(latent="sequence"), dict(image_shape=SHAPE, n_levels=LEVELS)],
    ids=["sequence without image_shape", "image_shape without sequence"],
)
def test_latent_and_image_shape_go_together(digits, params):
    with pytest.raises(ValueError, match="latent='sequence' and image_shape go together"):
        NVFDensity(2, max_epochs=1, **params).fit(digits)
