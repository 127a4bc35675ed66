"""Small tables: NVFDensity's recipe below 4,096 training rows, on two moons and four real tables.

Each variant fits, for data seeds 0, 1 and 2 (the fit's ``random_state`` is
the data seed): 2,000 rows of two moons (``noise=0.05``) with K = 2, 4, 8 and
16, scored on 20,000 fresh rows; and iris, wine, diabetes and breast cancer
with the default K, each on a 75/25 split by seed, scored on its test rows.
A variant is ``label=JSON``: estimator parameters, plus an optional
``"steps_per_sqrt_row"`` that replaces the small narrow tables' step budget
(``NVFDensity._small_table_budget_rule``; a benchmark knob, not a parameter).
The table gives the mean test log-likelihood over the three seeds (nats per
sample, higher is better), its standard error over seeds, each seed's value
and the mean fit seconds.

    python -m benchmarks.small_tables --variant 'default={}' 'before={"n_layers": 5, "steps_per_sqrt_row": 6}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings

import numpy as np
from sklearn.datasets import load_iris, make_moons
from sklearn.model_selection import train_test_split

from nvf_sklearn import NVFDensity

from . import tabular_data
from .common import add_no_write, command_line, hardware, mean_and_standard_error, markdown_table, publish, timed

SEEDS = (0, 1, 2)
MOONS_K = (2, 4, 8, 16)


def moons(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_moons(2000, noise=0.05, random_state=seed)[0], make_moons(20_000, noise=0.05, random_state=seed + 1)[0]


def iris(seed: int) -> tuple[np.ndarray, np.ndarray]:
    train, test = train_test_split(load_iris().data, test_size=0.25, random_state=seed)
    return train, test


def real_table(name: str):
    def load(seed: int) -> tuple[np.ndarray, np.ndarray]:
        split = getattr(tabular_data, name)(seed)
        return split.X_train, split.X_test

    return load


def works() -> list[tuple[str, object, dict]]:
    """``(name, loader, estimator parameters)`` for every fit of a variant."""
    moons_works = [(f"two moons, K={k}", moons, {"n_latent": k}) for k in MOONS_K]
    tables = [("iris", iris)] + [(name, real_table(name)) for name in ("wine", "diabetes", "breast_cancer")]
    return moons_works + [(name, load, {}) for name, load in tables]


def run_variant(label: str, settings: dict) -> list[dict]:
    settings = dict(settings)
    steps = settings.pop("steps_per_sqrt_row", None)
    default_rule = NVFDensity._small_table_budget_rule
    if steps is not None:
        NVFDensity._small_table_budget_rule = dataclasses.replace(default_rule, steps_per_sqrt_row=float(steps))
    rows = []
    try:
        for name, load, parameters in works():
            scores, seconds = [], []
            for seed in SEEDS:
                X, X_test = load(seed)
                estimator, elapsed = timed(NVFDensity(random_state=seed, **parameters, **settings).fit, X)
                scores.append(estimator.score(X_test))
                seconds.append(elapsed)
            mean, error = mean_and_standard_error(np.array(scores))
            rows.append({"variant": label, "data": name, "test log-lik": f"{mean:.4f}", "± s.e.": f"{error:.4f}",
                         "per seed": " / ".join(f"{s:.3f}" for s in scores), "fit s": f"{np.mean(seconds):.2f}"})
            print(rows[-1], flush=True)
    finally:
        NVFDensity._small_table_budget_rule = default_rule
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", nargs="+", default=["default={}"], help="label=JSON settings")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="nvf_sklearn")
    rows = []
    for variant in arguments.variant:
        label, _, settings = variant.partition("=")
        rows += run_variant(label, json.loads(settings or "{}"))
    rows.sort(key=lambda row: (row["data"], row["variant"]))
    header = (f"Command: `{command_line('benchmarks.small_tables', argv)}`  \n"
              f"Hardware: {hardware()}; one fit at a time  \n"
              "Mean test log-likelihood over data seeds 0 / 1 / 2 (nats per sample, higher is better), its standard "
              "error over the seeds, each seed's value and the mean fit seconds. Two moons: 2,000 training rows, "
              "20,000 fresh test rows. Real tables: 75/25 split by seed, default K (8).")  # fmt: skip
    table = markdown_table(rows, ["data", "variant", "test log-lik", "± s.e.", "per seed", "fit s"])
    publish("nvf_small", header, table, write=not arguments.no_write)


if __name__ == "__main__":
    main()
