"""Time to quality on a CPU: wall seconds of a default fit and the quality it reaches, this checkout against another.

Every fit runs in a fresh Python process that imports ``nvf_sklearn`` from a
source tree (this checkout, and ``--other``: e.g. a worktree of an older
commit, ``git worktree add /tmp/base b7be095``), with ``--threads`` torch
threads, on the same data. Workloads:

- ``grid``: the README's search, ``GridSearchCV(NVFDensity(), {"n_latent": [1, 2, 4, 8, 16]})``
  on 2,000 two-moons rows, one fit after the other; the K it picks and the
  test log-likelihood on 20,000 fresh rows; ``grid-parallel``: the same
  search with ``n_jobs=-1`` (joblib's worker processes, one per core, each
  fit on its share of the cores; ``OMP_NUM_THREADS`` is left unset for it,
  as a value set by the user overrides joblib's share);
- known-density cases of ``toy_data.known_density_suite()`` (each at its own
  number of training rows, or ``--rows``): ``gmm`` (GaussianMixture, K by
  validation), ``nf`` (NFDensity), ``nvf`` (NVFDensity, K = the true count),
  ``nvf32`` (K = 32) and ``zuko`` (zuko's coupling NSF trained by this
  checkout's loop and budget); the gap to the true density on 10,000 fresh
  rows, nats per sample;
- real tables: ``breast_cancer`` (scikit-learn's, 25 % test split) and
  ``miniboone`` (trained on the 3,284-row validation split, tested on the
  3,648-row test split: not the literature protocol); test log-likelihood.

Records (one JSON line per fit, with the validation curve against the fit's
seconds, assuming an even cost per step or epoch) go to ``--jsonl``;
``--from-jsonl`` prints the side-by-side table and draws validation
log-likelihood against seconds.

    git worktree add /tmp/base b7be095
    python -m benchmarks.time_to_quality --other /tmp/base --work grid "skewed clusters d=8 K=12" --jsonl out.jsonl
    python -m benchmarks.time_to_quality --from-jsonl out.jsonl --figure docs/images/time_to_quality.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from .common import add_no_write, command_line, markdown_table, publish

HERE = Path(__file__).resolve().parents[1]
TABLES = ("breast_cancer", "miniboone")

FIT = r"""
import json, sys, time, warnings
sys.path.insert(0, {tree!r})
import numpy as np, torch
torch.set_num_threads({threads})
warnings.simplefilter("ignore")
import nvf_sklearn
from nvf_sklearn import NFDensity, NVFDensity
assert nvf_sklearn.__file__.startswith({tree!r}), nvf_sklearn.__file__
sys.path[0] = {here!r}  # the benchmark's data and helpers from this checkout; the package stays the tree's
work, model, seed = {work!r}, {model!r}, {seed!r}
record = dict(work=work, model=model, seed=seed, tree={label!r})

def curve(est):
    scores = list(getattr(est, "validation_scores_", []))
    return [float(s) for s in scores]

if work in ("grid", "grid-parallel"):
    from sklearn.datasets import make_moons
    from sklearn.model_selection import GridSearchCV
    X, _ = make_moons(2000, noise=0.05, random_state=seed)
    X_test, _ = make_moons(20000, noise=0.05, random_state=seed + 1)
    started = time.perf_counter()
    n_jobs = -1 if work == "grid-parallel" else None
    search = GridSearchCV(NVFDensity(random_state=seed), {{"n_latent": [1, 2, 4, 8, 16]}}, n_jobs=n_jobs).fit(X)
    record.update(seconds=time.perf_counter() - started, K=search.best_params_["n_latent"],
                  test=float(search.score(X_test)), n_train=len(X))
else:
    from benchmarks import tabular_data
    from benchmarks.common import gaussian_mixture_by_validation
    truth = None
    if work in {tables!r}:
        split = getattr(tabular_data, work)(seed)
        X, X_test, n_true = split.X_train, split.X_test, None
    else:
        from benchmarks.toy_data import known_density_suite
        case = next(d for d in known_density_suite() if d.name == work)
        rng = np.random.default_rng(seed)
        X = case.generate({rows!r} or case.n_train, rng)
        X_test = case.generate(10_000, rng)
        truth, n_true = float(case.log_density(X_test).mean()), case.n_modes
    started = time.perf_counter()
    if model == "gmm":
        est, k = gaussian_mixture_by_validation(X, seed=seed)
        record["K"] = k
    elif model == "nf":
        est = NFDensity(random_state=seed).fit(X)
    elif model == "zuko":
        from benchmarks import zuko_baseline
        from benchmarks.common import Split
        est = zuko_baseline.fit_zuko_estimator(X, seed)
    else:
        k = 32 if model == "nvf32" else (n_true or 8)
        est = NVFDensity(k, random_state=seed).fit(X)
        record["K"] = k
    record["seconds"] = time.perf_counter() - started
    record["test"] = float(np.mean(est.score_samples(X_test)))
    record["n_train"] = len(X)
    if truth is not None:
        record["gap"] = truth - record["test"]
    record["validation_curve"] = curve(est)
    record["steps"] = getattr(est, "n_steps_", None)
    record["epochs"] = getattr(est, "n_iter_", None)
print(json.dumps(record))
"""


def run_fit(tree: str, label: str, work: str, model: str, seed: int, arguments) -> dict:
    code = FIT.format(tree=tree, here=str(HERE), label=label, work=work, model=model, seed=seed,
                      threads=arguments.threads, rows=arguments.rows, tables=TABLES)  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": str(arguments.threads), "MKL_NUM_THREADS": str(arguments.threads)}
    if work == "grid-parallel":  # joblib gives each worker its share of the cores unless these are set
        environment = {k: v for k, v in environment.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    if output.returncode:
        raise RuntimeError(f"{label} {work} {model}: {output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def fits(arguments) -> list[tuple[str, str, str, str]]:
    """(tree, label, work, model) for every fit, the other tree's fit right before this checkout's."""
    commit = subprocess.run(["git", "-C", arguments.other, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() if arguments.other else ""  # fmt: skip
    trees = [(str(Path(arguments.other).resolve()), commit)] if arguments.other else []
    if not arguments.other_only:
        trees.append((str(HERE), "this checkout"))
    plan = []
    for work in arguments.work:
        models = ["grid"] if work.startswith("grid") else arguments.models
        for model in models:
            for tree, label in trees:
                if model == "zuko" and label != "this checkout":
                    continue  # zuko runs through this checkout's loop only
                plan.append((tree, label, work, model))
    return plan


COLUMNS = ["work", "model", "tree", "fit s", "ratio", "K", "test log-lik", "gap to truth", "steps", "epochs"]


def table(records: list[dict]) -> str:
    """One row per (work, model, tree); 'ratio' is this checkout's fit time over the other tree's."""
    rows, other_seconds = [], {}
    for r in records:
        if r["tree"] != "this checkout":
            other_seconds[(r["work"], r["model"], r["seed"])] = r["seconds"]
    for r in records:
        base = other_seconds.get((r["work"], r["model"], r["seed"]))
        rows.append({
            "work": r["work"] + (f" ({r['n_train']:,} rows)" if "n_train" in r else ""), "model": r["model"],
            "tree": r["tree"], "fit s": f"{r['seconds']:.1f}",
            "ratio": f"{r['seconds'] / base:.2f}" if base and r["tree"] == "this checkout" else "",
            "K": r.get("K", ""), "test log-lik": f"{r['test']:.4f}",
            "gap to truth": f"{r['gap']:.3f}" if "gap" in r else "", "steps": r.get("steps") or "",
            "epochs": r.get("epochs") or "",
        })  # fmt: skip
    return markdown_table(rows, COLUMNS)


def draw(records: list[dict], path: str) -> None:
    """Validation log-likelihood against seconds, one panel per known-density case (same colour per model:
    dotted the other tree, solid this checkout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    works = [w for w in dict.fromkeys(r["work"] for r in records)
             if w not in TABLES and any(r.get("validation_curve") for r in records if r["work"] == w)]  # fmt: skip
    colours = {model: f"C{i}" for i, model in enumerate(["nf", "nvf", "nvf32", "zuko"])}
    fig, axes = plt.subplots(1, len(works), figsize=(4.2 * len(works), 3.4), squeeze=False)
    for ax, work in zip(axes[0], works):
        for r in records:
            curve = r.get("validation_curve") or []
            if r["work"] != work or not curve:
                continue
            seconds = [r["seconds"] * (i + 1) / len(curve) for i in range(len(curve))]
            style = "-" if r["tree"] == "this checkout" else ":"
            ax.plot(seconds, curve, style, color=colours.get(r["model"]), label=f"{r['model']} ({r['tree']})")
        ax.set_title(work, fontsize=9)
        ax.set_xlabel("seconds (even cost per check assumed)")
        ax.set_ylabel("validation log-likelihood (nats)")
        top = max(max(r["validation_curve"]) for r in records if r["work"] == work and r.get("validation_curve"))
        ax.set_ylim(top - 1.0, top + 0.1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", default=None, help="source tree of the other commit (a git worktree)")
    parser.add_argument("--work", nargs="+", default=["grid"], help="'grid', 'grid-parallel', suite case names, or real tables")
    parser.add_argument("--models", nargs="+", default=["gmm", "nf", "nvf", "nvf32", "zuko"])
    parser.add_argument("--other-only", action="store_true", help="fit with the other tree only (a split run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=None, help="training rows of the suite cases (default: their own)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jsonl", default=None, help="append one record per fit to this file")
    parser.add_argument("--from-jsonl", nargs="+", default=None, metavar="FILE", help="fit nothing: table of these records")
    parser.add_argument("--figure", default=None, help="with --from-jsonl: write the curves figure here")
    parser.add_argument("--note", default="", help="a line for the table's header (how the records were made)")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    if arguments.from_jsonl:
        records = [json.loads(line) for path in arguments.from_jsonl for line in open(path) if line.strip()]
        if arguments.figure:
            draw(records, arguments.figure)
    else:
        records = []
        for tree, label, work, model in fits(arguments):
            record = run_fit(tree, label, work, model, arguments.seed, arguments)
            records.append(record)
            print(json.dumps({k: v for k, v in record.items() if k != "validation_curve"}), flush=True)
            if arguments.jsonl:
                with open(arguments.jsonl, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
    shown = argv if argv is not None else sys.argv[1:]
    if "--note" in shown:  # the note is printed on its own line below
        at = shown.index("--note")
        shown = shown[:at] + shown[at + 2 :]
    header = (f"Command: `{command_line('benchmarks.time_to_quality', shown)}`  \n"
              f"Hardware: {platform.machine()}, {os.cpu_count()} cores; each fit in a fresh process with its own "
              "torch thread count (see the records)  \n"
              "Default settings of each tree. 'ratio': this checkout's fit seconds over the other tree's, same work "
              "and seed. Gap: nats per sample on 10,000 fresh test rows; grid: test log-likelihood of the refitted "
              "best K on 20,000 fresh two-moons rows." + (f"  \n{arguments.note}" if arguments.note else ""))  # fmt: skip
    publish("time_to_quality", header, table(records), write=not arguments.no_write and not arguments.jsonl)


if __name__ == "__main__":
    main()
