"""Images: bits per dimension on digits
====================================

Test bits/dim of NFImageDensity and NVFImageDensity on scikit-learn's 8x8 digits, and samples next to real digits.

Three densities of the dequantised pixels ``x = p + u`` (p in {0..16}, the 17
levels of ``load_digits``; u ~ U[0, 1); 1x8x8, the true dimensionality):

- ``GaussianMixture`` (full covariance) on the dequantised pixels, its size
  chosen on a validation part of the training images;
- ``NFImageDensity``: a convolutional spline flow;
- ``NVFImageDensity``: the same flow conditioned on a 2x2 grid of discrete
  codes, with a causal transformer prior over the codes. Its figure is an
  upper bound on bits/dim: the sum over code sequences is bounded by its
  ``top_m`` best terms (marked "<=").

Split: a fixed 80/20 train/test split of the 1,797 images (seed 0); every
model selects (early stopping, mixture size) on validation images carved
from the training part; the test images are scored once with one fixed
dequantisation draw. Bits/dim = -log q(x) / (64 log 2) with q in pixel-level
units; lower is better; a uniform density gives log2(17) = 4.09.

Saves ``digits.png``: real test digits, and samples of both flows, each
sample floored to its integer pixel levels.

Run ``python examples/digits.py`` (about two minutes on a laptop CPU) or with
``--quick`` / ``NVF_QUICK=1`` (seconds; its numbers only show that the script
runs). The PNG goes next to this script or into ``$NVF_EXAMPLES_OUT``.
"""

# sphinx_gallery_thumbnail_path = "images/digits.png"
import argparse
import math
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from nvf_sklearn import NFImageDensity, NVFImageDensity  # noqa: E402

# %%
# Settings
# --------
# The pixel levels and image shape of ``load_digits``, the settings both flows
# share, the codes of :class:`~nvf_sklearn.NVFImageDensity`, and the epoch
# budgets of a full and a ``--quick`` run.
N_LEVELS, SHAPE = 17, (8, 8)
D = SHAPE[0] * SHAPE[1]

#: Settings shared by both flows (NVFImageDensity adds its codes on top): two couplings per
#: scale with one residual block each, lr 5e-3 and batch 64 fit on a laptop CPU. These four
#: are also the image estimators' defaults today; they are spelled out so that the script
#: keeps its figures if the defaults move.
FLOW = dict(image_shape=SHAPE, n_levels=N_LEVELS, couplings_per_scale=2, n_blocks=1, learning_rate=5e-3,
            batch_size=64, patience=10, random_state=0)
#: The codes: a 2x2 grid (two downsamplings of 8x8) from a codebook of 16 vectors of dimension 8,
#: a one-block transformer prior of width 32, and scores summed over the top 64 code sequences.
CODES = dict(n_codes=16, n_downsamples=2, code_dim=8, top_m=64, code_prior_layers=1, code_prior_width=32)
FULL = dict(max_epochs=200, nf_hidden=28, nvf_hidden=24)  # early stopping (patience 10) ends both fits
QUICK = dict(max_epochs=2, nf_hidden=8, nvf_hidden=8)


# %%
# Command line and output
# -----------------------
# ``--quick`` (or ``NVF_QUICK=1``) shrinks the data and the epoch budget so
# that CI can check that the script runs; the figure goes next to the script,
# or into the directory named by ``$NVF_EXAMPLES_OUT``.
def is_quick() -> bool:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny epoch budget, for CI")
    return parser.parse_args().quick or os.environ.get("NVF_QUICK") == "1"


def output_path(name: str) -> Path:
    directory = Path(os.environ.get("NVF_EXAMPLES_OUT") or Path(__file__).resolve().parent)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


# %%
# Bits per dimension and the Gaussian mixture baseline
# ----------------------------------------------------
# Bits/dim of log-densities of dequantised pixels, and a full-covariance
# :class:`~sklearn.mixture.GaussianMixture` on the same dequantised pixels,
# its size chosen on a validation part of the training images.
def bits_per_dim(log_density: np.ndarray) -> float:
    """Mean bits/dim of log-densities of dequantised pixels, in pixel-level units."""
    return float(-np.mean(log_density) / (D * math.log(2.0)))


def gaussian_mixture_by_validation(X_train, components, rng):
    """Full-covariance GaussianMixture on dequantised pixels, size chosen on a validation part."""
    fit_part, validation_part = train_test_split(X_train, test_size=0.1, random_state=0)
    fit_part = fit_part + rng.uniform(size=fit_part.shape)
    validation_part = validation_part + rng.uniform(size=validation_part.shape)
    scores = {
        k: GaussianMixture(k, reg_covar=1e-2, random_state=0).fit(fit_part).score(validation_part)
        for k in components
    }
    best = max(scores, key=scores.get)
    return GaussianMixture(best, reg_covar=1e-2, random_state=0).fit(X_train + rng.uniform(size=X_train.shape))


# %%
# Plotting a row of images
# ------------------------
def sample_grid(axes, images, title):
    for ax, image in zip(axes, images):
        ax.imshow(image.reshape(SHAPE), cmap="gray_r", vmin=0, vmax=N_LEVELS - 1)
        ax.set_axis_off()
    axes[0].set_title(title, fontsize=10, loc="left")


# %%
# Fit, score and sample
# ---------------------
# The three models fit the same training images and score the same test
# images with one fixed dequantisation draw; the figure shows real test digits
# above samples of both flows, floored to integer pixel levels.
def main():
    quick = is_quick()
    settings = QUICK if quick else FULL
    if quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 2 epochs cannot converge
    levels = load_digits().data
    X_train, X_test = train_test_split(levels, test_size=0.2, random_state=0)
    rng = np.random.RandomState(0)
    X_test_dequantized = X_test + rng.uniform(size=X_test.shape)  # one fixed draw for every model

    rows = []
    started = time.perf_counter()
    gmm = gaussian_mixture_by_validation(X_train, (1, 2) if quick else (1, 2, 5, 10, 20), rng)
    rows.append((f"GaussianMixture(K={gmm.n_components}), pixels", "",
                 bits_per_dim(gmm.score_samples(X_test_dequantized)), time.perf_counter() - started,
                 gmm._n_parameters()))

    started = time.perf_counter()
    flow = NFImageDensity(hidden_channels=settings["nf_hidden"], max_epochs=settings["max_epochs"], **FLOW)
    flow.fit(X_train)
    rows.append(("NFImageDensity", "", bits_per_dim(flow.score_samples(X_test_dequantized)),
                 time.perf_counter() - started, flow.n_parameters_))

    started = time.perf_counter()
    # The encoder gets the conditioners' width too (it does not count in n_parameters_).
    codes = NVFImageDensity(hidden_channels=settings["nvf_hidden"], encoder_channels=settings["nvf_hidden"],
                            max_epochs=settings["max_epochs"], **CODES, **FLOW)
    codes.fit(X_train)
    rows.append((f"NVFImageDensity({codes.n_codes}), top-{codes.top_m} bound", "<= ",
                 bits_per_dim(codes.score_samples(X_test_dequantized)), time.perf_counter() - started,
                 codes.n_parameters_))

    print(f"digits: {len(X_train)} training / {len(X_test)} test images, 1x8x8, 17 levels; seed 0")
    print(f"{'model':<52} {'test bits/dim':>14} {'fit (s)':>8} {'parameters':>11}")
    for name, prefix, bpd, seconds, n_parameters in rows:
        print(f"{name:<52} {prefix + format(bpd, '.3f'):>14} {seconds:>8.1f} {n_parameters:>11,}")
    print(f"codes used: {codes.n_effective_codes_} of {codes.n_codes}; uniform density: "
          f"{math.log2(N_LEVELS):.3f} bits/dim")
    grids = codes.predict_codes(X_test[:3])  # each test image's most probable 2x2 grid of codes
    print("most probable code grids of the first three test images: "
          + "; ".join(" ".join(str(code) for code in grid) for grid in grids))

    n_show = 12
    figure, axes = plt.subplots(3, n_show, figsize=(n_show * 0.8, 3 * 0.95))
    sample_grid(axes[0], X_test[:n_show], "real test digits")
    for row, (estimator, name) in enumerate(((codes, "NVFImageDensity"), (flow, "NFImageDensity")), 1):
        samples = np.clip(np.floor(estimator.sample(n_show, random_state=0)[0]), 0, N_LEVELS - 1)
        sample_grid(axes[row], samples, f"samples of {name}")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05, hspace=0.35)
    path = output_path("digits.png")
    figure.savefig(path, dpi=110)
    print(f"saved {path}")


# %%
# Results of a full run
# ---------------------
# The output of ``python examples/digits.py`` (seed 0) on two x86 CPU cores,
# the other one busy with tests, and the figure it saved. Another
# machine or library version gives slightly different numbers.
#
# .. code-block:: text
#
#    digits: 1437 training / 360 test images, 1x8x8, 17 levels; seed 0
#    model                                                 test bits/dim  fit (s)  parameters
#    GaussianMixture(K=5), pixels                                  2.743      3.3      10,724
#    NFImageDensity                                                1.884     82.6      68,626
#    NVFImageDensity(16), top-64 bound                          <= 1.815    125.8      76,010
#    codes used: 16 of 16; uniform density: 4.087 bits/dim
#    most probable code grids of the first three test images: 9 14 4 11; 8 2 6 12; 5 12 4 6
#
# .. image:: /images/digits.png
#    :alt: Real test digits above samples of NVFImageDensity and NFImageDensity
if __name__ == "__main__":
    main()
