"""NFDensity's learning rate and step budget on wide tables: the search behind ``benchmarks/results/nf_wide_rate.md``.

Each variant ``RATE:STEPS[:BATCH]`` fits the default ``NFDensity(random_state=seed, learning_rate=RATE)`` with the
wide tables' budget rule (16 features and up) patched in-process to ``STEPS * sqrt(n)`` steps of ``BATCH`` rows
(default 256). Known-density cases report the gap to the truth on 10,000 fresh rows (nats per sample), the real
tables (``breast_cancer``, ``miniboone``) the mean test log-likelihood. One fit at a time, in this process.

    python -m benchmarks.nf_rate --cases "skewed clusters d=16 K=24" --seeds 0 1 2 --variants 0.003:24 0.01:16
    python -m benchmarks.nf_rate --cases breast_cancer miniboone --variants 0.003:24 0.01:16
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import numpy as np
import torch

from nvf_sklearn import NFDensity

from .common import command_line, hardware
from .tabular_data import breast_cancer, miniboone
from .toy_data import known_density_suite

TABLES = {"breast_cancer": breast_cancer, "miniboone": miniboone}


def parse_variant(text: str) -> tuple[float, float, int]:
    """``"RATE:STEPS[:BATCH]"`` -> (rate per 256 rows, steps per sqrt(row), batch)."""
    parts = text.split(":")
    return float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 256


def fit_one(case: str, seed: int, rate: float, steps: float, batch: int) -> dict:
    """One fit of the variant; its seconds, steps and quality (gap to the truth or test log-likelihood)."""
    rule = dataclasses.replace(NFDensity._wide_budget_rule, steps_per_sqrt_row=steps, min_batch=batch, max_batch=batch)
    if case in TABLES:
        split = TABLES[case](seed)
        if split is None:
            raise FileNotFoundError(f"{case}: its data files are absent (see benchmarks/tabular_data.py)")
        X, validation_fraction = split.X_train, split.validation_fraction
    else:
        known = next(c for c in known_density_suite() if c.name == case)
        rng = np.random.default_rng(seed)
        X, X_test = known.generate(known.n_train, rng), known.generate(10_000, rng)
        validation_fraction = 0.1
    estimator = NFDensity(random_state=seed, learning_rate=rate, validation_fraction=validation_fraction)
    estimator._wide_budget_rule = rule  # an instance attribute: the class's rule is left as it is
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    seconds = time.perf_counter() - started
    if case in TABLES:
        quality = f"test {estimator.score(split.X_test):.3f}"
    else:
        quality = f"gap {np.mean(known.log_density(X_test) - estimator.score_samples(X_test)):.3f}"
    return dict(seconds=seconds, steps=estimator.n_steps_, max_steps=estimator.max_steps_, quality=quality)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["skewed clusters d=16 K=24"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["0.003:24", "0.01:16"])
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    print(f"Command: `{command_line('benchmarks.nf_rate', argv)}`  \nHardware: {hardware('cpu')}")
    print("\n| case | seed | rate | steps per sqrt(n) | batch | fit s | steps | quality |\n|---|---|---|---|---|---|---|---|")
    for case in arguments.cases:
        for seed in arguments.seeds:
            for variant in arguments.variants:
                rate, steps, batch = parse_variant(variant)
                r = fit_one(case, seed, rate, steps, batch)
                print(f"| {case} | {seed} | {rate:g} | {steps:g} | {batch} | {r['seconds']:.1f} | "
                      f"{r['steps']}/{r['max_steps']} | {r['quality']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
