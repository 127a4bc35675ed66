"""NVFDensity in a Pipeline after PCA
==================================

``make_pipeline(PCA(10), NVFDensity(n_latent=10))`` on scikit-learn's dequantised 8x8 digits.

``make_pipeline(PCA(10), NVFDensity(...))`` is an ordinary scikit-learn
estimator: ``fit``, ``score`` and ``score_samples`` pass through PCA first.
Two honest caveats, both printed:

- The pixels are integers 0..16. A continuous density on discrete values can
  grow without bound, so uniform noise in [0, 1) is added to every pixel
  (dequantisation) before anything is fitted or scored.
- The pipeline's log-likelihood is the density of the 10 PCA coordinates, in
  nats per sample in PCA space. It is **not** a density of the 64 pixels
  (PCA drops 54 dimensions and has no Jacobian to add back), so compare it
  only with other models of the same PCA coordinates.

Compared on a held-out test split: GaussianMixture (K chosen from 1..16 on a
validation split of the training rows), NFDensity and NVFDensity, each
after the same PCA.

Saves ``pipeline_pca.png``: digits sampled from the NVFDensity pipeline (the
final step's ``sample`` mapped back through ``PCA.inverse_transform``), one
row per latent state.

Run ``python examples/pipeline_pca.py`` (about a minute on a laptop CPU) or
with ``--quick`` / ``NVF_QUICK=1`` (a few seconds; its numbers only show that
the script runs). The PNG goes next to this script or into
``$NVF_EXAMPLES_OUT``.
"""

# sphinx_gallery_thumbnail_path = "images/pipeline_pca.png"
import argparse
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from nvf_sklearn import NFDensity, NVFDensity  # noqa: E402

# %%
# Settings
# --------
# The number of PCA coordinates every pipeline models.
N_COMPONENTS = 10


# %%
# Command line and output
# -----------------------
# ``--quick`` (or ``NVF_QUICK=1``) shrinks the data and the epoch budget so
# that CI can check that the script runs; the figure goes next to the script,
# or into the directory named by ``$NVF_EXAMPLES_OUT``.
def is_quick() -> bool:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and epoch budget, for CI")
    return parser.parse_args().quick or os.environ.get("NVF_QUICK") == "1"


def output_path(name: str) -> Path:
    directory = Path(os.environ.get("NVF_EXAMPLES_OUT") or Path(__file__).resolve().parent)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


# %%
# The Gaussian mixture pipeline
# -----------------------------
# PCA, then a :class:`~sklearn.mixture.GaussianMixture` whose number of
# components is chosen on a validation split of the training rows.
def gaussian_mixture_pipeline(X, max_components, random_state):
    """PCA + GaussianMixture with K in 1..max_components chosen on a validation split of X."""
    X_fit, X_val = train_test_split(X, test_size=0.25, random_state=random_state)
    scores = [
        make_pipeline(PCA(N_COMPONENTS, random_state=0), GaussianMixture(k, random_state=random_state))
        .fit(X_fit)
        .score(X_val)
        for k in range(1, max_components + 1)
    ]
    best = GaussianMixture(int(np.argmax(scores)) + 1, random_state=random_state)
    return make_pipeline(PCA(N_COMPONENTS, random_state=0), best).fit(X)


# %%
# Fit and score the three pipelines
# ---------------------------------
# Each pipeline is an ordinary scikit-learn estimator: ``fit``, ``score`` and
# ``score_samples`` pass through PCA first, so the scores are densities of the
# 10 PCA coordinates, not of the 64 pixels.
def main():
    quick = is_quick()
    max_epochs = 5 if quick else 100
    if quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 5 epochs cannot converge

    digits = load_digits()
    rng = np.random.RandomState(0)
    X = digits.data + rng.uniform(0.0, 1.0, size=digits.data.shape)  # dequantise the 0..16 pixels
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    if quick:
        X_train = X_train[:400]

    flow_settings = dict(max_epochs=max_epochs, learning_rate=3e-3, random_state=0)
    builders = {
        "PCA + GaussianMixture": lambda: gaussian_mixture_pipeline(X_train, 16, random_state=0),
        "PCA + NFDensity": lambda: make_pipeline(PCA(N_COMPONENTS, random_state=0), NFDensity(**flow_settings)).fit(X_train),
        "PCA + NVFDensity(10)": lambda: make_pipeline(
            PCA(N_COMPONENTS, random_state=0), NVFDensity(n_latent=10, **flow_settings)
        ).fit(X_train),
    }
    fitted = {}
    print(f"digits, dequantised: {len(X_train)} training rows, {len(X_test)} test rows; seed 0")
    print(f"{'pipeline':<24} {'test log-lik (nats/sample, 10-d PCA space)':>43} {'fit (s)':>8}")
    for name, build in builders.items():
        started = time.perf_counter()
        fitted[name] = build()
        seconds = time.perf_counter() - started
        print(f"{name:<24} {fitted[name].score(X_test):>43.3f} {seconds:>8.1f}")
    print("these are densities of the 10 PCA coordinates, not of the 64 pixels; the")
    print("GaussianMixture time includes choosing K in 1..16 on a validation split")

    plot_samples_by_state(fitted["PCA + NVFDensity(10)"], output_path("pipeline_pca.png"))


# %%
# Samples, one row per latent state
# ---------------------------------
# The final step's :meth:`~nvf_sklearn.NVFDensity.sample` returns the state of
# each draw; ``PCA.inverse_transform`` maps the draws back to pixels.
def plot_samples_by_state(pipeline, path, per_state=10):
    pca, density = pipeline[0], pipeline[-1]
    Z, states = density.sample(4000, random_state=0)  # an int seed: the same figure every run
    images = np.clip(pca.inverse_transform(Z), 0, 17).reshape(-1, 8, 8)
    figure, axes = plt.subplots(density.n_latent, per_state, figsize=(per_state * 0.8, density.n_latent * 0.85))
    for k in range(density.n_latent):
        rows = np.flatnonzero(states == k)[:per_state]
        for column in range(per_state):
            axis = axes[k, column]
            axis.set_axis_off()
            if column < len(rows):
                axis.imshow(images[rows[column]], cmap="gray_r", vmin=0, vmax=17)
        axes[k, 0].text(-1.0, 3.5, f"k={k}\npi={density.weights_[k]:.2f}", ha="right", va="center", fontsize=7)
    figure.subplots_adjust(top=0.95, wspace=0.05, hspace=0.1)
    figure.suptitle("samples from PCA(10) + NVFDensity(n_latent=10), one row per latent state", fontsize=9)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"saved {path}")


# %%
# Results of a full run
# ---------------------
# The output of ``python examples/pipeline_pca.py`` with version 0.2 of the package (its
# epoch-counted training loop; this version trains on a step budget) (seed 0) on two x86 CPU
# cores shared with other jobs, one torch thread, and the figure it saved.
# Another machine or library version gives slightly different numbers.
#
# .. code-block:: text
#
#    digits, dequantised: 1257 training rows, 540 test rows; seed 0
#    pipeline                  test log-lik (nats/sample, 10-d PCA space)  fit (s)
#    PCA + GaussianMixture                                        -32.409      0.3
#    PCA + NFDensity                                              -32.716      3.7
#    PCA + NVFDensity(10)                                         -32.399      7.8
#    these are densities of the 10 PCA coordinates, not of the 64 pixels; the
#    GaussianMixture time includes choosing K in 1..16 on a validation split
#
# .. image:: /images/pipeline_pca.png
#    :alt: Digits sampled from PCA followed by NVFDensity, one row per latent state
if __name__ == "__main__":
    main()
