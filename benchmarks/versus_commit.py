"""Fit time of this checkout against another commit of the package, side by side in one run.

Each fit runs in a fresh Python process that imports ``nvf_sklearn`` from
the given source tree (this checkout, and e.g. a worktree of an older commit:
``git worktree add /tmp/base 3b98fa3``), with one torch thread, on the same
data: ``--rows`` x ``--features`` standard-normal rows plus 3 shifted copies (a
mixture of 4 blobs), ``--epochs`` epochs with early stopping out of reach
(``patience`` above the epoch budget), so both trees do the same number of
epochs. Each estimator is fitted with the tree's own defaults and, in this
checkout, with the previous engine's settings (k-means start, diagonal state
map, no state splines, all states trained, cosine schedule, no weight decay
or averaging) to time the engine at equal work. Runs alternate between the
trees ``--repeats`` times; the table gives the best wall time per fit and
per epoch.

    git worktree add /tmp/base 3b98fa3
    python -m benchmarks.versus_commit --other /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .common import add_no_write, command_line, markdown_table, publish

HERE = Path(__file__).resolve().parents[1]

PREVIOUS_SETTINGS = dict(
    init_params="kmeans", state_affine="diagonal", state_splines=False, training_states=None,
    learning_rate_schedule="cosine", weight_decay=0.0, weight_averaging=None,
)  # fmt: skip
PREVIOUS_SETTINGS_NF = dict(learning_rate_schedule="cosine", weight_decay=0.0, weight_averaging=None)

FIT = """
import json, sys, time, warnings
import numpy as np, torch
sys.path.insert(0, {tree!r})
torch.set_num_threads(1)
warnings.simplefilter("ignore")
import nvf_sklearn
estimator = getattr(nvf_sklearn, {name!r})(*{args!r}, **{params!r})
rng = np.random.default_rng(0)
X = rng.normal(size=({rows}, {features})) + 4.0 * rng.integers(4, size=({rows}, 1))
started = time.perf_counter()
estimator.fit(X)
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "epochs": estimator.n_iter_, "version": nvf_sklearn.__file__}}))
"""


def fit_in_tree(tree: str, name: str, args: list, params: dict, arguments) -> dict:
    """Fit one estimator in a fresh process that imports the package from ``tree``."""
    code = FIT.format(tree=tree, name=name, args=args, params=params, rows=arguments.rows, features=arguments.features)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    assert result["version"].startswith(tree), result["version"]
    return result


def runs(arguments) -> list[tuple[str, str, str, list, dict]]:
    """(label, tree, estimator, positional args, parameters) for every fit of one repeat."""
    common = dict(max_epochs=arguments.epochs, patience=10**6, random_state=0, device="cpu")
    this, other = str(HERE), str(Path(arguments.other).resolve())
    return [
        ("NFDensity, own defaults", other, "NFDensity", [], common),
        ("NFDensity, own defaults", this, "NFDensity", [], common),
        ("NFDensity, previous settings", this, "NFDensity", [], {**common, **PREVIOUS_SETTINGS_NF}),
        ("NVFDensity(8), own defaults", other, "NVFDensity", [8], common),
        ("NVFDensity(8), own defaults", this, "NVFDensity", [8], common),
        ("NVFDensity(8), previous settings", this, "NVFDensity", [8], {**common, **PREVIOUS_SETTINGS}),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", required=True, help="source tree of the other commit (a git worktree)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    commit = subprocess.run(["git", "-C", arguments.other, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or arguments.other  # fmt: skip
    best: dict[tuple[str, str], dict] = {}
    for _ in range(arguments.repeats):
        for label, tree, name, args, params in runs(arguments):
            result = fit_in_tree(tree, name, args, params, arguments)
            key = (label, "this checkout" if tree == str(HERE) else commit)
            if key not in best or result["seconds"] < best[key]["seconds"]:
                best[key] = result
    rows = [
        {"estimator": label, "tree": tree, "fit s": f"{r['seconds']:.1f}", "epochs": r["epochs"],
         "s per epoch": f"{r['seconds'] / r['epochs']:.2f}"}
        for (label, tree), r in best.items()
    ]  # fmt: skip
    header = (
        f"Command: `{command_line('benchmarks.versus_commit', argv)}`  \n"
        f"Hardware: {os.uname().machine}, {os.cpu_count()} cores, one torch thread per fit  \n"
        f"{arguments.rows} x {arguments.features} rows (4 shifted standard-normal blobs), {arguments.epochs} epochs "
        f"per fit (early stopping out of reach), best of {arguments.repeats} alternating runs; each fit in a fresh "
        "process importing the package from its tree. Fit seconds include the warm start and the validation passes."
    )
    publish("versus_commit", header, markdown_table(rows, ["estimator", "tree", "fit s", "epochs", "s per epoch"]),
            write=not arguments.no_write)  # fmt: skip


if __name__ == "__main__":
    main()
