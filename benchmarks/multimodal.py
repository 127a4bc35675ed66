"""Multi-modal density benchmark: NVFDensity vs NFDensity vs GaussianMixture.

Prints (and writes to ``benchmarks/results/multimodal.md``) a markdown table of
test mean log-likelihood in nats per sample, in the raw units of the data,
with its standard error over the test points (one seed), the gap to the true
log-density where it is known, fit seconds and scoring throughput.

    python -m benchmarks.multimodal              # full run (tens of minutes on 2 CPU cores)
    python -m benchmarks.multimodal --quick      # minutes; CI-sized
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from nvf_sklearn import NFDensity, NVFDensity

from .common import gaussian_mixture_by_validation, hardware, markdown_table, mean_and_standard_error, timed, write_result
from .toy_data import toy_suite

COLUMNS = ["data", "model", "test log-lik (nats)", "± s.e.", "gap to truth", "fit s", "n_iter_", "score rows/s"]


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data and few epochs")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16], help="n_latent values for NVFDensity")
    parser.add_argument("--objectives", nargs="+", default=["exact", "elbo"])
    parser.add_argument("--datasets", nargs="*", default=None, help="subset of data set names (substring match)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.n_train, arguments.n_test, arguments.max_epochs, arguments.ks = 1000, 1000, 5, [8]
    return arguments


def models(arguments):
    common = dict(max_epochs=arguments.max_epochs, device=arguments.device, random_state=arguments.seed)
    yield "NFDensity", NFDensity(**common)
    for objective in arguments.objectives:
        for k in arguments.ks:
            yield f"NVFDensity K={k} {objective}", NVFDensity(k, objective=objective, **common)


def evaluate(name, data_name, fit, X_test, truth):
    (model, extra), seconds = timed(fit)
    scores, score_seconds = timed(model.score_samples, X_test)
    mean, standard_error = mean_and_standard_error(scores)
    return {
        "data": data_name,
        "model": name + extra,
        "test log-lik (nats)": f"{mean:.3f}",
        "± s.e.": f"{standard_error:.3f}",
        "gap to truth": f"{truth - mean:.3f}" if truth is not None else "",
        "fit s": f"{seconds:.1f}",
        "n_iter_": getattr(model, "n_iter_", ""),
        "score rows/s": f"{len(X_test) / score_seconds:,.0f}",
    }


def run(arguments) -> list[dict]:
    rows = []
    for dataset in toy_suite():
        if arguments.datasets and not any(s in dataset.name for s in arguments.datasets):
            continue
        rng = np.random.default_rng(arguments.seed)
        X_train, X_test = dataset.generate(arguments.n_train, rng), dataset.generate(arguments.n_test, rng)
        truth = float(dataset.log_density(X_test).mean()) if dataset.log_density else None
        if truth is not None:
            rows.append({"data": dataset.name, "model": "true density", "test log-lik (nats)": f"{truth:.3f}"})

        def fit_gmm():
            model, k = gaussian_mixture_by_validation(X_train, seed=arguments.seed)
            return model, f" (K={k} by validation)"

        rows.append(evaluate("GaussianMixture", dataset.name, fit_gmm, X_test, truth))
        print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        for name, estimator in models(arguments):
            rows.append(evaluate(name, dataset.name, lambda: (estimator.fit(X_train), ""), X_test, truth))
            print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    return rows


def main(argv=None):
    warnings.simplefilter("ignore")
    arguments = parse_arguments(argv)
    rows = run(arguments)
    table = markdown_table(rows, COLUMNS)
    command = "python -m benchmarks.multimodal " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (
        f"Command: `{command.strip()}`  \nHardware: {hardware(arguments.device)}  \n"
        f"Train {arguments.n_train} / test {arguments.n_test} rows per data set (fresh draws), seed {arguments.seed}; "
        "figures are test mean log-likelihood in nats per sample, raw data units; s.e. over test points."
    )
    print("\n" + header + "\n\n" + table)
    if not arguments.quick:
        print(f"\nwritten to {write_result('multimodal', header, table)}")


if __name__ == "__main__":
    main()
