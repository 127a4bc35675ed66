"""scikit-learn conformance: ``parametrize_with_checks`` over every estimator, each expected failure justified."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from nvf_sklearn import NFDensity, NFImageDensity, NVFDensity, NVFImageDensity

FAST_CHECK = dict(max_epochs=2, batch_size=64, device="cpu")
TABLE = dict(n_layers=1, hidden_size=8, **FAST_CHECK)
# The checks use 1 to 10 features, so the image becomes a strip of pixels (see resolve_image_shape):
# no squeezes, no downsampling. float64 keeps a row's score independent of the batch it is scored in.
IMAGE = dict(n_scales=0, couplings_per_scale=1, hidden_channels=4, dtype="float64", **FAST_CHECK)

STOCHASTIC_WEIGHTS = (
    "training is stochastic minibatch gradient descent: weighting a row by 2 is "
    "equivalent to repeating it in expectation, not draw for draw"
)


FRACTIONAL_PIXELS = (
    "this check fits uniform noise in [0, 1), which is not whole pixel levels (it does not apply "
    "the categorical input tag that every other check honours); and " + STOCHASTIC_WEIGHTS
)


def expected_failures(estimator):
    # NFDensity passes the weight-equivalence check only because its predict() is
    # constant (one state); models with K > 1 do not.
    if isinstance(estimator, (NFImageDensity, NVFImageDensity)):
        return {"check_sample_weight_equivalence_on_dense_data": FRACTIONAL_PIXELS}
    if isinstance(estimator, NVFDensity) and estimator.n_latent > 1:
        return {"check_sample_weight_equivalence_on_dense_data": STOCHASTIC_WEIGHTS}
    return {}


ESTIMATORS = [
    NFDensity(**TABLE),
    NVFDensity(2, **TABLE),
    NFImageDensity(**IMAGE),
    NVFImageDensity(3, n_downsamples=0, code_dim=2, encoder_channels=4, top_m=2, **IMAGE),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
