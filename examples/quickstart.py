"""Quickstart: three density estimators on a checkerboard
======================================================

Eight square modes with sharp edges, where one smooth map cannot do well.

The data is a checkerboard: uniform on the 8 dark squares of a 4 x 4 board,
a density known exactly. Three estimators fit the same 3,000 training rows:
a GaussianMixture (K chosen from 1..32 on a validation split carved from the
training rows), NFDensity (one neural spline flow) and NVFDensity(n_latent=8)
(the same flow conditioned on 8 learned states). Each is scored on 20,000
fresh test rows; the table gives the test log-likelihood (nats per sample,
higher is better), the gap to the true density (lower is better) and the fit
time.

Saves ``quickstart.png``: the true density and each model's density, the
clusters NVFDensity recovers (its most probable state for each test point)
and samples from it, coloured by state.

Run::

    python examples/quickstart.py            # about 20 s on a laptop CPU
    python examples/quickstart.py --quick    # a few seconds, for CI

The PNG goes next to this script, or into ``$NVF_EXAMPLES_OUT`` if set.
``--quick`` (or ``NVF_QUICK=1``) shrinks the data and the epoch budget: its
numbers only show that the script runs.
"""

# sphinx_gallery_thumbnail_path = "images/quickstart.png"
import argparse
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from nvf_sklearn import NFDensity, NVFDensity  # noqa: E402

# %%
# The data
# --------
# A checkerboard: uniform on the 8 dark squares of a 4 x 4 board. Its density
# is known, so every model's gap to the truth can be measured.
HALF_WIDTH = 4.0  # the board covers [-4, 4]^2 in squares of side 2


def checkerboard(n, rng):
    """Uniform on the 8 dark squares: a square at random, then a uniform point in it."""
    dark = np.array([(c, r) for c in range(-2, 2) for r in range(-2, 2) if (c + r) % 2 == 0])
    return 2.0 * (dark[rng.integers(len(dark), size=n)] + rng.uniform(size=(n, 2)))


def checkerboard_log_density(X):
    inside = np.all(np.abs(X) < HALF_WIDTH, axis=1)
    dark = (np.floor(X[:, 0] / 2.0) + np.floor(X[:, 1] / 2.0)) % 2 == 0
    return np.where(inside & dark, -np.log(32.0), -np.inf)  # 8 squares of area 4


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
# The baseline
# ------------
# A :class:`~sklearn.mixture.GaussianMixture` whose number of components is
# chosen on a validation split carved from the training rows.
def gaussian_mixture_by_validation(X, max_components, random_state):
    """GaussianMixture with K in 1..max_components chosen on a validation split of X."""
    X_fit, X_val = train_test_split(X, test_size=0.2, random_state=random_state)
    scores = [GaussianMixture(k, random_state=random_state).fit(X_fit).score(X_val) for k in range(1, max_components + 1)]
    return GaussianMixture(int(np.argmax(scores)) + 1, random_state=random_state).fit(X)


# %%
# Fit, score and compare
# ----------------------
# The three models fit the same training rows and score the same fresh test
# rows; the gap to the truth is ``E[log p_true - log q]`` over the test rows.
# :class:`~nvf_sklearn.NVFDensity` gets one latent state per square.
def main():
    quick = is_quick()
    rng = np.random.default_rng(0)
    X_train, X_test = checkerboard(600 if quick else 3000, rng), checkerboard(2000 if quick else 20000, rng)
    truth = checkerboard_log_density(X_test).mean()
    if quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a 5-epoch budget cannot converge
    flow_settings = dict(max_epochs=5, random_state=0) if quick else dict(random_state=0)
    models = {
        "GaussianMixture": lambda X: gaussian_mixture_by_validation(X, 32, random_state=0),
        "NFDensity": lambda X: NFDensity(**flow_settings).fit(X),
        "NVFDensity(n_latent=8)": lambda X: NVFDensity(n_latent=8, **flow_settings).fit(X),
    }
    fitted, rows = {}, []
    for name, fit in models.items():
        started = time.perf_counter()
        estimator = fit(X_train)
        seconds = time.perf_counter() - started
        if isinstance(estimator, GaussianMixture):
            name = f"GaussianMixture(K={estimator.n_components})"
        fitted[name] = estimator
        score = estimator.score(X_test)
        rows.append((name, score, truth - score, seconds))

    print(f"checkerboard: {len(X_train)} training rows, {len(X_test)} fresh test rows, seed 0")
    print(f"{'model':<26} {'test log-lik':>13} {'gap to truth':>13} {'fit (s)':>8}")
    print(f"{'true density':<26} {truth:>13.3f} {0.0:>13.3f} {'':>8}")
    for name, score, gap, seconds in rows:
        print(f"{name:<26} {score:>13.3f} {gap:>13.3f} {seconds:>8.1f}")
    print("Nats per sample; the gap is E[log p_true - log q] on the test rows (lower is better).")
    plot(fitted, X_test, output_path("quickstart.png"))


# %%
# The figure
# ----------
# Each model's density on a grid, the most probable state
# (:meth:`~nvf_sklearn.NVFDensity.predict_cluster`) of each test point, and
# :meth:`~nvf_sklearn.NVFDensity.sample` draws coloured by their state.
def plot(fitted, X_test, path):
    axis = np.linspace(-5.0, 5.0, 200)
    xx, yy = np.meshgrid(axis, axis)
    grid = np.c_[xx.ravel(), yy.ravel()]
    densities = {"true density": np.exp(checkerboard_log_density(grid))}
    densities.update({name: np.exp(estimator.score_samples(grid)) for name, estimator in fitted.items()})
    figure, axes = plt.subplots(2, 3, figsize=(11, 7.4), sharex=True, sharey=True)
    for ax, (name, density) in zip(axes.ravel()[:4], densities.items()):
        ax.imshow(density.reshape(xx.shape), origin="lower", extent=(-5, 5, -5, 5), cmap="viridis", vmin=0, vmax=1 / 16)
        ax.set_title(name, fontsize=10)
    nvf = fitted["NVFDensity(n_latent=8)"]
    shown = X_test[:3000]
    axes[1, 1].scatter(*shown.T, s=2, c=nvf.predict_cluster(shown), cmap="tab10", vmin=0, vmax=9)
    axes[1, 1].set_title("NVFDensity: most probable state\nof each test point", fontsize=10)
    samples, states = nvf.sample(3000)
    axes[1, 2].scatter(*samples.T, s=2, c=states, cmap="tab10", vmin=0, vmax=9)
    axes[1, 2].set_title("NVFDensity: 3000 samples,\ncoloured by their state", fontsize=10)
    for ax in axes.ravel():
        ax.set_xlim(-5, 5)
        ax.set_ylim(-5, 5)
        ax.set_aspect("equal")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"saved {path}")


# %%
# Results of a full run
# ---------------------
# The output of ``python examples/quickstart.py`` (seed 0) on two quiet x86
# CPU cores, and the figure it saved.
# Another machine or library version gives slightly different numbers.
#
# .. code-block:: text
#
#    checkerboard: 3000 training rows, 20000 fresh test rows, seed 0
#    model                       test log-lik  gap to truth  fit (s)
#    true density                      -3.466         0.000
#    GaussianMixture(K=25)             -3.697         0.232      1.7
#    NFDensity                         -3.655         0.189      7.8
#    NVFDensity(n_latent=8)            -3.544         0.079      2.3
#    Nats per sample; the gap is E[log p_true - log q] on the test rows (lower is better).
#
# .. image:: /images/quickstart.png
#    :alt: The checkerboard's true density beside each model's density, NVFDensity's clusters and its samples
if __name__ == "__main__":
    main()
