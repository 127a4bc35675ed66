"""Time to quality by batch size and learning rate: what ``batch_size="auto"`` should be.

For each known-density case, model, batch size and learning-rate rule, one
default fit to early stopping records: the steps run, the first step whose
validation check came within 0.01 nats of the run's best, seconds per step,
the wall-clock to that step, and the final gap to the true density on fresh
test rows. Learning-rate rules set the effective rate from the default's at a
batch of 256: ``none`` (keep it), ``sqrt`` (``* sqrt(b / 256)``, what the
estimators do themselves) and ``linear`` (``* b / 256``). Quality per step
does not depend on the device; seconds per step do, so the table names its
device. (The step budget of ``max_epochs="auto"`` does not depend on the
batch: it is the same number of steps for every batch size.)

    python -m benchmarks.batch_size                          # CPU
    python -m benchmarks.batch_size --device cuda --batch-sizes 256 1024 4096 16384
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from nvf_sklearn import NFDensity, NVFDensity

from .common import add_no_write, command_line, hardware, markdown_table, publish
from .toy_data import known_density_suite

RULES = {"none": lambda b: 1.0, "sqrt": lambda b: math.sqrt(b / 256), "linear": lambda b: b / 256}


def epochs_to_quality(validation_scores: list[float], tolerance: float = 0.01) -> int:
    """The first check (1-based) whose validation score is within ``tolerance`` of the run's best."""
    best = max(validation_scores)
    return next(i + 1 for i, score in enumerate(validation_scores) if score >= best - tolerance)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["checkerboard", "skewed clusters d=8 K=12"])
    parser.add_argument("--models", nargs="+", default=["nf", "nvf"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 1024, 4096])
    parser.add_argument("--rules", nargs="+", default=["none", "sqrt"], choices=list(RULES))
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for dataset in known_density_suite():
        if not any(case == dataset.name for case in arguments.cases):
            continue
        rng = np.random.default_rng(arguments.seed)
        X_train, X_test = dataset.generate(arguments.n_train, rng), dataset.generate(arguments.n_test, rng)
        truth = float(dataset.log_density(X_test).mean())
        for model in arguments.models:
            for batch_size in arguments.batch_sizes:
                for rule in arguments.rules:
                    if rule != "none" and batch_size == 256:
                        continue
                    rows.append(fit_row(dataset, model, batch_size, rule, X_train, X_test, truth, arguments))
                    print(markdown_table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    header = (
        f"Command: `{command_line('benchmarks.batch_size', argv)}`  \nHardware: {hardware(arguments.device)}  \n"
        f"{arguments.n_train} training rows (10% held out for validation), {arguments.n_test} test rows, seed "
        f"{arguments.seed}; default settings except batch size and learning rate. 'to 0.01' is the first epoch "
        "within 0.01 nats of the run's best validation score and the seconds to reach it; gap in nats per sample."
    )
    publish(f"batch_size_{arguments.device.split(':')[0]}", header, markdown_table(rows, list(rows[0])),
            write=not arguments.no_write)  # fmt: skip


def fit_row(dataset, model, batch_size, rule, X_train, X_test, truth, arguments) -> dict:
    # The estimators scale learning_rate by sqrt(batch / 256) themselves: undo that, so the rule decides.
    learning_rate = NFDensity().learning_rate * RULES[rule](batch_size) / math.sqrt(batch_size / 256)
    common = dict(batch_size=batch_size, learning_rate=learning_rate, device=arguments.device,
                  random_state=arguments.seed)  # fmt: skip
    estimator = NFDensity(**common) if model == "nf" else NVFDensity(dataset.n_modes, **common)
    started = time.perf_counter()
    estimator.fit(X_train)
    seconds = time.perf_counter() - started
    per_step = seconds / max(estimator.n_steps_, 1)
    to_quality = epochs_to_quality(estimator.validation_scores_) * estimator.validation_interval_  # in steps
    return {
        "data": dataset.name, "model": model, "batch": batch_size, "lr": f"{learning_rate:.2g} ({rule})",
        "steps run": estimator.n_steps_, "best step": estimator.best_step_, "to 0.01 (step)": to_quality,
        "s/step": f"{per_step:.3f}", "to 0.01 (s)": f"{to_quality * per_step:.0f}", "fit s": f"{seconds:.0f}",
        "test gap": f"{truth - estimator.score(X_test):.3f}",
    }  # fmt: skip


if __name__ == "__main__":
    main()
