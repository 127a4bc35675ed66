"""Behaviour on images: on scikit-learn's digits the code-sequence latent beats the plain image flow.

Fixed 80/20 split of the 1,797 digits (1x8x8, 17 levels); each flow stops
early on 10% of its training images; the test images are dequantised once with
a fixed seed and scored once. The settings fit in about 25 s per model on one
CPU thread: two couplings per scale, lr 5e-3, batch 64, 20 epochs. The sequence
model's figure is an upper bound on its bits/dim (top-64 code sequences), so
its win is not an artefact of the bound. Measured margins (flow minus sequence
bound, bits/dim) at these settings: 0.044 and 0.029 on this split with
random_state 0 and 1, 0.043 on another split; the test asks for 0.015.
"""

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

from nvf_sklearn import NFImageDensity, NVFImageDensity

pytestmark = pytest.mark.slow

COMMON = dict(
    n_levels=17, couplings_per_scale=2, n_blocks=1, learning_rate=5e-3, batch_size=64,
    max_epochs=20, patience=10, device="cpu", random_state=0,
)


def gaussian_mixture_bits_per_dim(X_train, X_test_dequantized, rng):
    """Full-covariance GaussianMixture on the same dequantised pixels, K chosen on validation images."""
    fit_part, validation_part = train_test_split(X_train, test_size=0.1, random_state=0)
    fit_part = fit_part + rng.uniform(size=fit_part.shape)
    validation_part = validation_part + rng.uniform(size=validation_part.shape)
    candidates = [GaussianMixture(k, reg_covar=1e-2, random_state=0).fit(fit_part) for k in (1, 2, 5, 10)]
    best = max(candidates, key=lambda gmm: gmm.score(validation_part))
    return -best.score(X_test_dequantized) / (64 * math.log(2))


def test_sequence_latent_beats_the_image_flow_which_beats_a_gaussian_mixture_on_digits():
    X_train, X_test = train_test_split(load_digits().data, test_size=0.2, random_state=0)
    flow = NFImageDensity(hidden_channels=28, **COMMON).fit(X_train)
    latent = NVFImageDensity(
        16, hidden_channels=24, encoder_channels=24, code_dim=8, top_m=64, code_prior_layers=1, code_prior_width=32,
        **COMMON,
    ).fit(X_train)
    assert latent.n_parameters_ == pytest.approx(flow.n_parameters_, rel=0.25)  # a comparable budget

    rng = np.random.RandomState(0)
    gmm_bpd = gaussian_mixture_bits_per_dim(X_train, X_test + rng.uniform(size=X_test.shape), rng)
    flow_bpd, latent_bound = flow.bits_per_dim(X_test), latent.bits_per_dim(X_test)
    assert latent_bound + 0.015 < flow_bpd < gmm_bpd - 0.3, (latent_bound, flow_bpd, gmm_bpd)
