"""The image estimators on scikit-learn's digits: the API, units, bounds and bad input.

``NFImageDensity`` is an image flow; ``NVFImageDensity`` adds a grid of discrete
codes with a causal transformer prior. Both take rows of integer pixel levels
and score dequantised pixels in pixel-level units.
"""

import copy
import inspect
import math
import pickle

import numpy as np
import pytest
import torch

from nvf_sklearn import NFDensity, NFImageDensity, NVFDensity, NVFImageDensity
from nvf_sklearn._engine.dequantization import logit_transform

from .conftest import TINY_IMAGE

LEVELS, D = 17, 64
CODES = dict(n_downsamples=2, code_dim=4, top_m=4, **TINY_IMAGE)


@pytest.fixture(scope="module")
def fitted_codes(digits):
    return NVFImageDensity(5, **CODES).fit(digits)


@pytest.fixture(scope="module")
def fitted_image_flow(digits):
    return NFImageDensity(**TINY_IMAGE).fit(digits)


def _dequantized(levels, seed=0):
    return levels + np.random.RandomState(seed).uniform(size=levels.shape)


def test_tabular_estimators_have_no_image_parameters():
    for estimator in (NFDensity, NVFDensity):
        names = set(inspect.signature(estimator).parameters)
        assert not names & {"image_shape", "n_levels", "n_scales", "top_m", "latent", "n_downsamples", "code_dim"}


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_codes"])
def test_scores_are_finite_and_subsets_agree_with_the_full_set(which, digits, request):
    estimator = request.getfixturevalue(which)
    X = _dequantized(digits)
    full = estimator.score_samples(X)
    assert full.shape == (len(X),) and np.isfinite(full).all()
    rows = np.array([7, 0, 299, 150])
    np.testing.assert_array_equal(estimator.score_samples(X[rows]), full[rows])


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_codes"])
def test_bits_per_dim_is_minus_the_mean_log_density_in_pixel_units(which, digits, request):
    estimator = request.getfixturevalue(which)
    expected = -estimator.score_samples(_dequantized(digits, seed=3)).mean() / (D * math.log(2))
    assert estimator.bits_per_dim(digits, random_state=3) == pytest.approx(expected, rel=1e-12)
    assert estimator.bits_per_dim(digits) == estimator.bits_per_dim(digits)  # fixed noise by default
    assert np.isfinite(estimator.bits_per_dim(digits)) and estimator.bits_per_dim(digits) > 0


def test_untrained_image_flow_scores_the_logit_gaussian_by_hand(digits):
    """Units: at initialisation the flow is the logit pre-transform followed by N(0, I).

    By the change of variables, log q(x) = log N(s) + log|ds/dy| - D log(n_levels)
    for x = p + u in pixel units, y = x / n_levels, s = logit(alpha + (1 - 2 alpha) y).
    A learning rate of 1e-30 leaves the zero-initialised couplings at the identity.
    """
    estimator = NFImageDensity(**{**TINY_IMAGE, "max_epochs": 1, "learning_rate": 1e-30}).fit(digits)
    X = _dequantized(digits[:20])
    s, log_det = logit_transform(torch.as_tensor(X / LEVELS), 0.05)
    log_normal = (-0.5 * s**2 - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    expected = (log_normal + log_det).numpy() - D * math.log(LEVELS)
    np.testing.assert_allclose(estimator.score_samples(X), expected, rtol=1e-5)


def test_default_shape_is_a_square_image(digits, fitted_image_flow):
    assert fitted_image_flow.module_.flow.event_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="n_scales"):
        NFImageDensity(**TINY_IMAGE).fit(digits[:, :60])  # a 1 x 60 strip cannot be squeezed


def test_code_outputs(fitted_codes, digits):
    n_positions = 4  # an 8x8 image downsampled twice: a 2x2 code grid
    codes = fitted_codes.predict_codes(digits[:10])
    assert codes.shape == (10, n_positions) and codes.min() >= 0 and codes.max() < 5
    X_new, codes_new = fitted_codes.sample(6)
    assert X_new.shape == (6, D) and codes_new.shape == (6, n_positions)
    assert fitted_codes.code_usage_.shape == (5,)
    assert fitted_codes.code_usage_.sum() == pytest.approx(1.0)
    assert 1 <= fitted_codes.n_effective_codes_ <= 5
    # Two stages (joint, then prior), each with its own step budget and at least one check.
    assert 0 < fitted_codes.n_steps_ <= 2 * fitted_codes.max_steps_ and len(fitted_codes.validation_scores_) >= 2


@pytest.mark.parametrize("method", ["predict_proba", "predict_cluster", "predict", "fit_predict"])
def test_image_estimators_have_no_state_posterior(fitted_codes, fitted_image_flow, method):
    assert not hasattr(fitted_codes, method) and not hasattr(fitted_image_flow, method)


def test_samples_are_in_pixel_units(fitted_image_flow):
    X_new, _ = fitted_image_flow.sample(50)
    margin = 0.05 / 0.9 * LEVELS  # the logit pre-transform's support, in pixel units
    assert X_new.min() > -margin and X_new.max() < LEVELS + margin


@pytest.mark.slow  # scores the digits at several top_m: the default suite stays under 90 s
def test_the_top_m_bound_tightens_with_m(fitted_codes, digits):
    """score_samples is log sum over the top-m code sequences: non-decreasing in m, exact at V ** L."""
    X = _dequantized(digits[:15])
    module = fitted_codes.module_
    rows = torch.as_tensor(X / LEVELS)
    with torch.no_grad():
        bounds = [module.log_prob_bound(rows, top_m=m).numpy() for m in (1, 4, 32, 5**4)]
    for smaller, larger in zip(bounds, bounds[1:]):
        assert (larger >= smaller - 1e-4).all()
    estimator_bound = fitted_codes.score_samples(X) + D * math.log(LEVELS)
    np.testing.assert_allclose(estimator_bound, bounds[1], rtol=1e-5, atol=1e-4)  # top_m=4


@pytest.mark.parametrize("which", ["fitted_image_flow", "fitted_codes"])
def test_pickle_round_trip_is_exact(which, digits, request):
    estimator = request.getfixturevalue(which)
    X = _dequantized(digits[:30])
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.score_samples(X), estimator.score_samples(X))
    np.testing.assert_array_equal(restored.sample(4, random_state=1)[0], estimator.sample(4, random_state=1)[0])


def test_tabular_models_have_no_bits_per_dim():
    assert not hasattr(NFDensity(), "bits_per_dim") and not hasattr(NVFDensity(), "bits_per_dim")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X: np.where(X < 16, X + 0.5, X), "integer pixel levels"),
        (lambda X: X * 16, "ranges over"),
        (lambda X: X - 1, "Negative values"),
        (lambda X: X[:, :60], "image_shape"),
    ],
    ids=["fractional", "too many levels", "negative", "wrong pixel count"],
)
def test_bad_pixels_are_rejected_and_the_fit_kept(fitted_image_flow, digits, change, message):
    estimator = copy.deepcopy(fitted_image_flow)
    estimator.set_params(image_shape=(8, 8))
    before = estimator.score_samples(digits[:5])
    with pytest.raises(ValueError, match=message):
        estimator.fit(change(digits))
    np.testing.assert_array_equal(estimator.score_samples(digits[:5]), before)


def test_validation_images_are_checked(digits):
    with pytest.raises(ValueError, match="integer pixel levels"):
        NFImageDensity(**TINY_IMAGE).fit(digits, validation_data=np.minimum(digits[:10] + 0.5, 16))


def test_top_m_is_read_when_scoring_so_set_params_after_a_fit_takes_effect(fitted_codes, digits):
    X = digits[:20] + 0.5
    wide = fitted_codes.score_samples(X)
    top_m = fitted_codes.top_m
    narrow = fitted_codes.set_params(top_m=1).score_samples(X)
    fitted_codes.set_params(top_m=top_m)
    assert np.all(narrow <= wide + 1e-9) and np.any(narrow < wide - 1e-6)
    np.testing.assert_array_equal(fitted_codes.score_samples(X), wide)


def test_a_code_prior_width_off_its_heads_names_the_parameter(digits):
    with pytest.raises(ValueError, match="code_prior_width=30 must be a multiple"):
        NVFImageDensity(4, code_prior_width=30, **TINY_IMAGE).fit(digits[:50])
