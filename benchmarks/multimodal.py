"""Known-density benchmark: the gap to the true density of GaussianMixture, NFDensity and NVFDensity.

Every case of ``toy_data.known_density_suite()`` (2 to 32 dimensions, exact
log-densities) is drawn fresh for each data seed: its own number of training
rows (32,768 where d >= 8, else 10,000; ``--n-train`` overrides) and
``--n-test`` test rows from ``numpy.random.default_rng(seed)``. Each model
fits the training rows and selects on validation rows carved from them (the
flows: their own ``validation_fraction``; GaussianMixture: K in
{1, 2, 4, ..., 32} on a 20% carve); the test rows are scored once. The table
prints, per case and model, the gap ``E[log p_true] - E[log q]`` on the test
rows in nats per sample (lower is better) with its standard error (over data
seeds, or over test points for one seed), fit seconds, epochs run and the best
epoch. Every fit's record, learning curves included, can go to a JSON-lines
file (``--jsonl``) for later tables and figures. ``--suite fronts`` runs
``toy_data.fronts_suite()`` instead (rare modes, heavy tails, fewer rows;
issue 19), whose table goes to its own results file.

    python -m benchmarks.multimodal --seeds 0 1                       # every case, default settings
    python -m benchmarks.multimodal --cases "d=8 K=12" --models nvf --nvf '{"init_params": "gmm"}' --label gmm
    python -m benchmarks.multimodal --quick                           # seconds: a smoke run
    python -m benchmarks.multimodal --suite fronts --seeds 0 1        # the robustness fronts
    python -m benchmarks.multimodal --from-jsonl a.jsonl b.jsonl      # the table of earlier runs' records
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

from nvf_sklearn import NFDensity, NVFDensity

from .common import (
    add_no_write,
    command_line,
    gaussian_mixture_by_validation,
    hardware,
    markdown_table,
    mean_and_standard_error,
    publish,
)
from .toy_data import fronts_suite, known_density_suite

#: The case lists ``--suite`` chooses from, and the results file (``benchmarks/results/<name>.md``) of each.
SUITES = {"known": known_density_suite, "fronts": fronts_suite}
RESULT_NAMES = {"known": "multimodal", "fronts": "multimodal_fronts"}

COLUMNS = ["data", "model", "seeds", "gap to truth (nats)", "± s.e.", "test log-lik", "fit s", "epochs run", "best epoch"]


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=list(SUITES), default="known",
                        help="known: known_density_suite(); fronts: fronts_suite() (issue 19)")
    parser.add_argument("--cases", nargs="*", default=None,
                        help="keep the cases named exactly so, or else whose name contains one of these")
    parser.add_argument("--models", nargs="+", default=["gmm", "nf", "nvf", "nvf32"],
                        help="gmm, nf, nvf (K = the true count), nvf32 (K = 32)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="data seeds (also the models' random_state)")
    parser.add_argument("--n-train", type=int, default=None, help="training rows (default: each case's own)")
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--nvf", default="{}", help="JSON dict of NVFDensity parameters (ablations)")
    parser.add_argument("--nf", default="{}", help="JSON dict of NFDensity parameters")
    parser.add_argument("--label", default="", help="appended to the model names of this run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jsonl", default=None, help="append one JSON record per fit to this file")
    parser.add_argument("--quick", action="store_true", help="tiny data and 3 epochs: a smoke run")
    parser.add_argument("--from-jsonl", nargs="+", default=None, metavar="FILE",
                        help="fit nothing: publish the table of the records in these files (runs split across processes)")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.n_train, arguments.n_test, arguments.seeds = 400, 400, arguments.seeds[:1]
    if "nvf32" in arguments.models:  # K = 32 is "nvf" where the true count is 32
        arguments.models = [m for m in arguments.models if m != "nvf32"] + ["nvf32"]
    return arguments


def fit_model(name: str, dataset, X_train: np.ndarray, seed: int, arguments):
    """``(fitted model, extra record fields)`` for one model name."""
    common = dict(device=arguments.device, random_state=seed, **({"max_epochs": 3} if arguments.quick else {}))
    if name == "gmm":
        model, k = gaussian_mixture_by_validation(X_train, seed=seed)
        return model, {"K": k}
    if name == "nf":
        return NFDensity(**{**common, **json.loads(arguments.nf)}).fit(X_train), {}
    n_latent = 32 if name == "nvf32" else dataset.n_modes
    estimator = NVFDensity(n_latent, **{**common, **json.loads(arguments.nvf)}).fit(X_train)
    return estimator, {"K": n_latent, "state_affine": estimator.state_affine_}


def run_case(dataset, seed: int, arguments) -> list[dict]:
    rng = np.random.default_rng(seed)
    n_train = arguments.n_train or dataset.n_train
    X_train, X_test = dataset.generate(n_train, rng), dataset.generate(arguments.n_test, rng)
    truth = dataset.log_density(X_test)
    records = []
    for name in arguments.models:
        if name == "nvf32" and dataset.n_modes == 32:
            continue
        started = time.perf_counter()
        model, extra = fit_model(name, dataset, X_train, seed, arguments)
        seconds = time.perf_counter() - started
        log_q = model.score_samples(X_test)
        record = {
            "data": dataset.name, "model": name + arguments.label, "seed": seed, "gap": float(np.mean(truth - log_q)),
            "gap_se": float(np.std(truth - log_q, ddof=1) / np.sqrt(len(log_q))), "test": float(np.mean(log_q)),
            "fit_seconds": seconds, "n_train": n_train, **extra,
            "options": arguments.nvf if name.startswith("nvf") else arguments.nf if name == "nf" else "",
        }  # fmt: skip
        if hasattr(model, "best_step_"):
            # Epochs (passes over the training rows) as earlier records count them; steps as the loop does.
            rows_per_step = model.batch_size_ / (len(X_train) * (1 - model.validation_fraction))
            record.update(epochs=model.n_iter_, best_epoch=round(model.best_step_ * rows_per_step, 1),
                          steps=model.n_steps_, best_step=model.best_step_, max_steps=model.max_steps_,
                          validation_curve=model.validation_scores_, loss_curve=model.loss_curve_)  # fmt: skip
        records.append(record)
        print(f"  {dataset.name} | {record['model']} | seed {seed}: gap {record['gap']:.3f} ± {record['gap_se']:.3f}, "
              f"fit {seconds:.1f} s, epochs {record.get('epochs', '-')}, best {record.get('best_epoch', '-')}",
              flush=True)  # fmt: skip
    return records


def table_rows(records: list[dict]) -> list[dict]:
    """One row per (data, model): means over seeds, s.e. over seeds (over test points for one seed)."""
    rows = []
    for key in dict.fromkeys((r["data"], r["model"]) for r in records):
        group = [r for r in records if (r["data"], r["model"]) == key]
        gaps = np.array([r["gap"] for r in group])
        gap, se = mean_and_standard_error(gaps) if len(group) > 1 else (gaps[0], group[0]["gap_se"])
        epochs = [str(r["epochs"]) for r in group if "epochs" in r]
        rows.append({
            "data": key[0], "model": key[1] + (f" (K={group[0]['K']})" if "K" in group[0] else ""),
            "seeds": " ".join(str(r["seed"]) for r in group),
            "gap to truth (nats)": f"{gap:.3f}", "± s.e.": f"{se:.3f}",
            "test log-lik": f"{np.mean([r['test'] for r in group]):.3f}",
            "fit s": f"{np.mean([r['fit_seconds'] for r in group]):.1f}",
            "epochs run": "/".join(epochs), "best epoch": "/".join(str(r["best_epoch"]) for r in group if "epochs" in r),
        })  # fmt: skip
    return rows


def run_suite(arguments) -> list[dict]:
    """Fit and score every selected case for every seed; append each case's records to ``--jsonl``."""
    records, suite = [], SUITES[arguments.suite]()
    names = {dataset.name for dataset in suite}
    for dataset in suite:
        if arguments.cases and not any(
            case == dataset.name or (case not in names and case in dataset.name) for case in arguments.cases
        ):
            continue
        for seed in arguments.seeds:
            case_records = run_case(dataset, seed, arguments)
            records += case_records
            if arguments.jsonl:
                with open(arguments.jsonl, "a") as stream:
                    stream.writelines(json.dumps(r) + "\n" for r in case_records)
    return records


def read_records(paths: list[str]) -> list[dict]:
    """The records of earlier runs, in the suites' order of cases, known first (then model, then seed)."""
    records = [json.loads(line) for path in paths for line in open(path) if line.strip()]
    names = [dataset.name for make_suite in SUITES.values() for dataset in make_suite()]
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return sorted(records, key=lambda r: (order.get(r["data"], len(order)), r["model"], r["seed"]))


def main(argv=None):
    arguments = parse_arguments(argv)
    warnings.simplefilter("ignore")
    records = read_records(arguments.from_jsonl) if arguments.from_jsonl else run_suite(arguments)
    seeds = sorted({r["seed"] for r in records})
    spread = "over data seeds where a row has several, else over test points (one seed)"
    machine = hardware(arguments.device)
    if arguments.from_jsonl:  # the runs' thread counts, not this process's
        processor = platform.processor() or platform.machine()
        machine = f"{processor}, {os.cpu_count()} cores, one process per core and one torch thread each"
    header = (
        f"Command: `{command_line('benchmarks.multimodal', argv)}`  \nHardware: {machine}  \n"
        f"{arguments.n_train or 'the default number of'} training / {arguments.n_test} test rows per case "
        f"and data seed ({' '.join(map(str, seeds))}). Gap = E[log p_true - log q] on the test rows, nats per sample "
        f"(lower is better); s.e. {spread}. Flows: default settings unless the model name says otherwise."
    )
    if arguments.from_jsonl:
        header += " Assembled from the records of runs that each fitted part of the suite on this machine."
    table = markdown_table(table_rows(records), COLUMNS)
    publish(RESULT_NAMES[arguments.suite], header, table, write=not (arguments.no_write or arguments.quick))


if __name__ == "__main__":
    main()
