"""One entry point for the density benchmarks: toy, tabular and image suites.

    python -m benchmarks.run --suite toy|tabular|images [--device cuda] [--quick] [--seeds 0 1 2]

Run every torch process with ``OMP_NUM_THREADS=1`` on a shared machine. On 2
CPU cores, ``--suite toy --quick`` takes about 2 minutes, ``--suite
tabular`` about 10 and ``--suite images`` about 4 (one seed); the full toy suite (5,000 rows, 200 epochs,
K in {4, 8, 16}) is meant for ``--device cuda``.

Models of the toy and tabular suites (:mod:`benchmarks.models`): NFDensity,
NVFDensity (K by validation), GaussianMixture (K by validation),
KernelDensity (bandwidth by validation) and zuko's coupling NSF
(:mod:`benchmarks.zuko_baseline`, skipped with a note when zuko is not
importable). All fit the same rows and select on the same validation rows,
carved from the training rows by the benchmark and passed to our estimators
as ``fit(X_fit, validation_data=X_validation)``; the test set is scored once,
at the end, and never used to choose anything. Figures: test mean
log-likelihood in nats per sample in the raw units of the data, the standard
error over seeds (over test points when there is one seed), the gap to the
true density where it is known (toy data), fit seconds including every
hyper-parameter candidate, scoring and sampling throughput, and parameter
counts (:mod:`benchmarks.report`). Tables go to ``benchmarks/results/run_<suite>.md``.

The image suite calls :func:`benchmarks.images_digits.digits_rows` (CPU only)
once per seed and keeps one table per seed.

The documentation's results page is written from ``benchmarks/results/*.md``
by ``python docs/results_page.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from nvf_sklearn import NFDensity

from . import report, suites, zuko_baseline
from .common import add_no_write, command_line, publish

# Defaults per (suite, --quick). The full toy suite (5 x 5,000 rows, 200 epochs, three K) is meant for a GPU;
# the tabular defaults take about 10 minutes on 2 busy CPU cores (MINIBOONE's NVFDensity fits dominate).
DEFAULTS = {
    ("toy", False): dict(n_train=5000, n_test=5000, max_epochs=200, ks=[4, 8, 16], n_sample=5000),
    ("toy", True): dict(n_train=1000, n_test=1000, max_epochs=40, ks=[4, 8], n_sample=1000),
    ("tabular", False): dict(n_train=None, n_test=None, max_epochs=50, ks=[4, 8, 16], n_sample=5000),
    ("tabular", True): dict(n_train=None, n_test=None, max_epochs=10, ks=[4], n_sample=1000),
    ("images", False): {},
    ("images", True): {},
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["toy", "tabular", "images"], required=True)
    parser.add_argument("--device", default="cpu", help="device of the flows (GaussianMixture and KDE run on the CPU)")
    parser.add_argument("--quick", action="store_true", help="small data, few epochs, a short K grid: minutes on 2 CPU cores")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-train", type=int, default=None, help="toy suite: training rows per data set (default 5000)")
    parser.add_argument("--n-test", type=int, default=None, help="toy suite: test rows per data set (default 5000)")
    parser.add_argument("--max-epochs", type=int, default=None, help="flows (default: toy 200, tabular 50)")
    parser.add_argument("--patience", type=int, default=20, help="flows: epochs without validation improvement")
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="NVFDensity n_latent grid (default 4 8 16)")
    parser.add_argument("--validation-fraction", type=float, default=0.2, help="validation carve (MINIBOONE: 0.1)")
    parser.add_argument("--n-sample", type=int, default=None, help="rows drawn to time sampling (default 5000)")
    parser.add_argument("--datasets", nargs="*", default=None, help="keep data sets whose name contains one of these")
    parser.add_argument("--models", nargs="*", default=None, help="keep models whose name contains one of these")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    for name, value in DEFAULTS[(arguments.suite, arguments.quick)].items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    return arguments


def flow_suite(arguments, command: str) -> tuple[str, str]:
    """Run the toy or tabular suite: the header and the table."""
    notes = []
    if not zuko_baseline.available():
        print(zuko_baseline.MISSING_NOTE, flush=True)
        notes.append(zuko_baseline.MISSING_NOTE)
    # One tiny fit first, so that no timed fit pays torch's one-off start-up costs.
    NFDensity(max_epochs=1, device=arguments.device, random_state=0).fit(np.random.default_rng(0).normal(size=(64, 2)))
    started = time.perf_counter()
    results, suite_notes = (suites.toy_results if arguments.suite == "toy" else suites.tabular_results)(arguments)
    minutes = (time.perf_counter() - started) / 60
    header = report.flow_header(command, arguments, notes + suite_notes, minutes)
    return header, report.flow_table(results, len(arguments.seeds))


def image_suite(arguments, command: str) -> tuple[str, str]:
    """Run the digits image suite (CPU, one torch thread): the header and one table per seed."""
    if arguments.device != "cpu":
        print("note: the image suite runs on the CPU only; --device is ignored.", flush=True)
    torch.set_num_threads(1)
    started = time.perf_counter()
    results = suites.image_results(arguments)
    return report.image_report(command, results, arguments.seeds, (time.perf_counter() - started) / 60)


def main(argv=None):
    arguments = parse_arguments(argv)
    warnings.simplefilter("ignore")
    command = command_line("benchmarks.run", argv)
    header, table = (image_suite if arguments.suite == "images" else flow_suite)(arguments, command)
    publish("run_" + arguments.suite, header, table, write=not arguments.no_write)


if __name__ == "__main__":
    main()
