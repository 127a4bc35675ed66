"""Banana density: how close does NFDensity get to a known log-density?

x1 ~ N(0, 1), x2 = x1^2 / 2 + 0.3 N(0, 1). Prints the test mean log-likelihood
(nats per sample, raw units, 20,000 fresh test points) of NFDensity and of
GaussianMixture next to the true mean log-density. Both fit the same 80% of
the training rows and select (early stopping; K) on the same other 20%,
passed to NFDensity as ``validation_data``.

    python -m benchmarks.banana [--n-train 10000] [--seeds 0 1 2] [--no-write]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.stats import norm

from nvf_sklearn import NFDensity

from .common import (
    Split, add_no_write, command_line, hardware, markdown_table, mean_and_standard_error, publish, select_gaussian_mixture,
    timed,
)

VALIDATION_FRACTION = 0.2
COLUMNS = ["model", "seed", "test log-lik (nats)", "± s.e.", "gap to truth", "fit s"]


def banana(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.normal(size=n)
    return np.c_[x1, x1**2 / 2 + 0.3 * rng.normal(size=n)]


def banana_log_density(X: np.ndarray) -> np.ndarray:
    return norm.logpdf(X[:, 0]) + norm.logpdf(X[:, 1] - X[:, 0] ** 2 / 2, scale=0.3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for seed in arguments.seeds:
        rng = np.random.default_rng(seed)
        X_train, X_test = banana(arguments.n_train, rng), banana(arguments.n_test, rng)
        truth = banana_log_density(X_test).mean()
        rows.append({"model": "true density", "seed": seed, "test log-lik (nats)": f"{truth:.4f}"})
        split = Split.carve(X_train, VALIDATION_FRACTION, seed)
        fits = {
            "NFDensity": lambda: NFDensity(max_epochs=arguments.max_epochs, random_state=seed, device="cpu").fit(
                split.X_fit, validation_data=split.X_validation
            ),
            "GaussianMixture (K by validation)": lambda: select_gaussian_mixture(
                split.X_fit, split.X_validation, seed=seed
            )[0],
        }
        for name, fit in fits.items():
            model, seconds = timed(fit)
            mean, standard_error = mean_and_standard_error(model.score_samples(X_test))
            rows.append(
                {
                    "model": name + (f" K={model.n_components}" if hasattr(model, "n_components") else ""),
                    "seed": seed,
                    "test log-lik (nats)": f"{mean:.4f}",
                    "± s.e.": f"{standard_error:.4f}",
                    "gap to truth": f"{truth - mean:.4f}",
                    "fit s": f"{seconds:.1f}",
                }
            )
            print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    header = (
        f"Command: `{command_line('benchmarks.banana', argv)}`  \n"
        f"Hardware: {hardware()}  \nTrain {arguments.n_train} rows (a {VALIDATION_FRACTION:.0%} validation carve "
        f"among them, the same for both models), test {arguments.n_test} fresh rows; nats per sample, raw units."
    )
    publish("banana", header, markdown_table(rows, COLUMNS), write=not arguments.no_write)


if __name__ == "__main__":
    main()
