"""Quickstart: NFDensity, NVFDensity and GaussianMixture on two moons.

Fits three density estimators to the same training set, scores them on a
fresh test set drawn from the same distribution, and prints a table of the
test mean log-likelihood (nats per sample, higher is better) and the fit
time. The number of Gaussian mixture components K is chosen from 1..32 by
held-out log-likelihood on a validation split carved from the training data
(never from the test set); its fit time includes that search.

Saves ``quickstart.png``: each model's density (top row) and samples drawn
from it over the test points (bottom row).

Run::

    python examples/quickstart.py            # about a minute on a laptop CPU
    python examples/quickstart.py --quick    # a few seconds, for CI

The PNG goes next to this script, or into ``$NVF_EXAMPLES_OUT`` if set.
``--quick`` (or ``NVF_QUICK=1``) shrinks the data and the epoch budget: its
numbers only show that the script runs.
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from nvf_sklearn import NFDensity, NVFDensity  # noqa: E402


def is_quick() -> bool:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and epoch budget, for CI")
    return parser.parse_args().quick or os.environ.get("NVF_QUICK") == "1"


def output_path(name: str) -> Path:
    directory = Path(os.environ.get("NVF_EXAMPLES_OUT") or Path(__file__).resolve().parent)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def gaussian_mixture_by_validation(X, max_components, random_state):
    """GaussianMixture with K in 1..max_components chosen on a validation split of X."""
    X_fit, X_val = train_test_split(X, test_size=0.25, random_state=random_state)
    scores = [
        GaussianMixture(k, random_state=random_state).fit(X_fit).score(X_val)
        for k in range(1, max_components + 1)
    ]
    best_k = int(np.argmax(scores)) + 1
    return GaussianMixture(best_k, random_state=random_state).fit(X)


def main():
    quick = is_quick()
    n_train, n_test = (500, 2000) if quick else (3000, 10000)
    max_epochs = 10 if quick else 150
    if quick:
        # A 10-epoch budget cannot converge; the warning is expected here.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X_train, _ = make_moons(n_train, noise=0.05, random_state=0)
    X_test, _ = make_moons(n_test, noise=0.05, random_state=1)  # fresh draws, never seen in fit

    flow_settings = dict(max_epochs=max_epochs, learning_rate=3e-3, random_state=0)
    models = {
        "NFDensity": lambda X: NFDensity(**flow_settings).fit(X),
        "NVFDensity(n_latent=2)": lambda X: NVFDensity(n_latent=2, **flow_settings).fit(X),
        "GaussianMixture": lambda X: gaussian_mixture_by_validation(X, 32, random_state=0),
    }

    fitted, rows = {}, []
    for name, fit in models.items():
        started = time.perf_counter()
        estimator = fit(X_train)
        seconds = time.perf_counter() - started
        if isinstance(estimator, GaussianMixture):
            name = f"GaussianMixture(K={estimator.n_components})"
        fitted[name] = estimator
        rows.append((name, estimator.score(X_test), seconds))

    print(f"two moons (noise 0.05): {n_train} training rows, {n_test} fresh test rows, seed 0")
    print(f"{'model':<26} {'test log-lik (nats/sample)':>27} {'fit (s)':>8}")
    for name, score, seconds in rows:
        print(f"{name:<26} {score:>27.3f} {seconds:>8.1f}")
    print("GaussianMixture's fit time includes choosing K in 1..32 on a validation split.")

    plot(fitted, X_test, output_path("quickstart.png"))


def plot(fitted, X_test, path):
    xx, yy = np.meshgrid(np.linspace(-1.5, 2.5, 160), np.linspace(-1.0, 1.5, 100))
    grid = np.c_[xx.ravel(), yy.ravel()]
    figure, axes = plt.subplots(2, len(fitted), figsize=(4.2 * len(fitted), 6.4), sharex=True, sharey=True)
    for column, (name, estimator) in enumerate(fitted.items()):
        density = np.exp(estimator.score_samples(grid)).reshape(xx.shape)
        top, bottom = axes[0, column], axes[1, column]
        top.contourf(xx, yy, density, levels=20, cmap="viridis")
        top.set_title(f"{name}\ntest {estimator.score(X_test):.3f} nats/sample", fontsize=10)
        X_sampled, labels = estimator.sample(1000)
        bottom.scatter(*X_test[:2000].T, s=2, c="lightgray", label="test data")
        bottom.scatter(*X_sampled.T, s=3, c=labels % 10, cmap="tab10", vmin=0, vmax=9, label="samples")
        bottom.set_title("1000 samples (colour: latent state)", fontsize=10)
    axes[0, 0].set_xticks([-1, 0, 1, 2])  # shared by all panels
    axes[0, 0].set_ylabel("density p(x)")
    axes[1, 0].set_ylabel("samples over test data")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
