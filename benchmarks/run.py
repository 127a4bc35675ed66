"""One entry point for the density benchmarks: toy, tabular and image suites.

    python -m benchmarks.run --suite toy|tabular|images [--device cuda] [--quick] [--seeds 0 1 2]

Run every torch process with ``OMP_NUM_THREADS=1`` on a shared machine. On 2
CPU cores, ``--suite toy --quick`` takes about 2 minutes, ``--suite
tabular`` about 10 and ``--suite images`` about 4 (one seed); the full toy suite (5,000 rows, 200 epochs,
K in {4, 8, 16}) is meant for ``--device cuda``.

Models (toy and tabular suites), all fitted on the same rows and tuned on the
same validation rows, carved from the training rows (the test set is scored
once, at the end, and never used to choose anything):

- ``NFDensity``: early stopping on the validation rows.
- ``NVFDensity`` (objective="exact"): one fit per K in ``--ks``, early
  stopping on the validation rows, K chosen by validation log-likelihood.
- ``GaussianMixture`` (full covariance): K in {1, 2, 4, ..., 32} chosen on the
  validation rows (``common.gaussian_mixture_by_validation``).
- ``KernelDensity`` (Gaussian kernel) on standardised data, bandwidth chosen on
  the validation rows from a grid; the standardisation log-Jacobian is added
  back, so its figure is in raw units like every other.
- zuko's coupling NSF (``passes=2``; NFDensity's depth and bins, its hidden
  width chosen to match NFDensity's parameter count) when zuko is importable:
  a plain Adam loop (NFDensity's learning rate, batch size, cosine decay and
  gradient clipping) on standardised data with early stopping on the
  validation rows, log-Jacobian added back. Skipped with a note otherwise.

The validation rows are exactly the rows our estimators hold out themselves
(``validation_fraction`` with ``random_state=seed``); the script checks this.
Figures: test mean log-likelihood in nats per sample in the raw units of the
data, the standard error over seeds (over test points when there is one
seed), the gap to the true density where it is known (toy data), fit seconds
including every hyper-parameter candidate, scoring and sampling throughput,
and parameter counts. Tables go to ``benchmarks/results/run_<suite>.md``.

The image suite runs ``benchmarks/images_digits.py`` (CPU only) once per seed
and collects its tables.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.neighbors import KernelDensity

from nvf_sklearn import NFDensity, NVFDensity
from nvf_sklearn._standardization import location_scale

from . import tabular_data
from .common import gaussian_mixture_by_validation, hardware, markdown_table, mean_and_standard_error, timed, write_result
from .toy_data import toy_suite

KDE_BANDWIDTHS = np.geomspace(0.02, 2.0, 15)  # standardised units
GMM_CANDIDATES = (1, 2, 4, 8, 16, 32)


# ----------------------------------------------------------------------------------------------- arguments
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
    parser.add_argument("--suite", choices=["toy", "tabular", "images"])
    parser.add_argument(
        "--docs", action="store_true", help="only rewrite docs/benchmarks_results.rst from benchmarks/results/*.md"
    )
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
    parser.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    arguments = parser.parse_args(argv)
    if arguments.docs:
        return arguments
    if arguments.suite is None:
        parser.error("--suite is required (or --docs)")
    for name, value in DEFAULTS[(arguments.suite, arguments.quick)].items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    return arguments


# ------------------------------------------------------------------------------------------------- models
@dataclass
class Fitted:
    """A fitted model behind two calls, in raw units, plus what the table prints about it."""

    score_samples: Callable[[np.ndarray], np.ndarray]
    sample: Callable[[int], np.ndarray] | None
    label: str
    parameters: str
    epochs: str = ""
    on_device: bool = False


def validation_rows(n: int, fraction: float, seed: int) -> np.ndarray:
    """The rows ``NFDensity(validation_fraction=fraction, random_state=seed).fit`` holds out."""
    n_validation = min(int(math.floor(fraction * n)), n - 1)
    return np.sort(np.random.RandomState(seed).permutation(n)[:n_validation])


@dataclass
class Split:
    X_train: np.ndarray  # every training row (our estimators take these and hold out X_validation themselves)
    X_fit: np.ndarray
    X_validation: np.ndarray
    fraction: float
    seed: int

    @classmethod
    def carve(cls, X_train, fraction, seed):
        held_out = np.zeros(len(X_train), dtype=bool)
        held_out[validation_rows(len(X_train), fraction, seed)] = True
        return cls(X_train, X_train[~held_out], X_train[held_out], fraction, seed)

    def check_estimator_split(self, estimator) -> None:
        """Fail loudly if an estimator's own hold-out is not ``X_validation``."""
        location, _ = location_scale(self.X_fit)
        if not np.allclose(estimator.location_, location, rtol=1e-10, atol=1e-12):
            raise RuntimeError("the estimator held out other rows than the benchmark's validation split")


def flow_options(arguments, split):
    return dict(
        max_epochs=arguments.max_epochs,
        patience=arguments.patience,
        validation_fraction=split.fraction,
        device=arguments.device,
        random_state=split.seed,
    )


def fit_nf(split, arguments) -> Fitted:
    estimator = NFDensity(**flow_options(arguments, split)).fit(split.X_train)
    split.check_estimator_split(estimator)
    return Fitted(
        estimator.score_samples,
        lambda n: estimator.sample(n)[0],
        "NFDensity",
        f"{estimator.n_parameters_:,}",
        str(estimator.n_iter_),
        on_device=True,
    )


def fit_nvf(split, arguments) -> Fitted:
    best = None
    for k in arguments.ks:
        if k > len(split.X_fit):
            break
        estimator = NVFDensity(k, objective="exact", **flow_options(arguments, split)).fit(split.X_train)
        split.check_estimator_split(estimator)
        score = estimator.score(split.X_validation)
        if best is None or score > best[0]:
            best = (score, estimator)
    estimator = best[1]
    used = f", {estimator.n_effective_latent_} used" if estimator.n_effective_latent_ < estimator.n_latent else ""
    grid = "/".join(str(k) for k in arguments.ks)
    return Fitted(
        estimator.score_samples,
        lambda n: estimator.sample(n)[0],
        f"NVFDensity exact, K={estimator.n_latent}{used} (by validation from {grid})",
        f"{estimator.n_parameters_:,}",
        str(estimator.n_iter_),
        on_device=True,
    )


def fit_gmm(split, arguments) -> Fitted:
    # gaussian_mixture_by_validation carves its validation rows with its own permutation; reorder the
    # training rows so that its carve is exactly ours.
    n_validation = int(split.fraction * len(split.X_train))
    if n_validation != len(split.X_validation):
        raise RuntimeError("validation sizes disagree")
    order = np.random.default_rng(split.seed).permutation(len(split.X_train))
    reordered = np.empty_like(split.X_train)
    reordered[order] = np.concatenate([split.X_validation, split.X_fit])
    model, k = gaussian_mixture_by_validation(
        reordered, candidates=GMM_CANDIDATES, validation_fraction=split.fraction, seed=split.seed
    )
    return Fitted(
        model.score_samples,
        lambda n: model.sample(n)[0],
        f"GaussianMixture full, K={k} (by validation)",
        f"{model._n_parameters():,}",
    )


def fit_kde(split, arguments) -> Fitted:
    location, scale = location_scale(split.X_fit)
    log_det = -float(np.log(scale).sum())
    Z_fit, Z_validation = (split.X_fit - location) / scale, (split.X_validation - location) / scale
    best = None
    for bandwidth in KDE_BANDWIDTHS:
        model = KernelDensity(bandwidth=bandwidth).fit(Z_fit)
        score = model.score_samples(Z_validation).mean()  # KernelDensity.score is a sum: use the mean
        if best is None or score > best[0]:
            best = (score, model, bandwidth)
    model, bandwidth = best[1], best[2]
    rng = np.random.RandomState(split.seed)
    return Fitted(
        lambda X: model.score_samples((X - location) / scale) + log_det,
        lambda n: model.sample(n, random_state=rng) * scale + location,
        f"KernelDensity, standardised, bandwidth={bandwidth:.3g} (by validation)",
        f"{Z_fit.size:,} (stored points: n_train x d)",
    )


def zuko_available() -> bool:
    try:
        import zuko  # noqa: F401
    except ImportError:
        return False
    return True


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def zuko_nsf(zuko, n_features: int, width: int) -> torch.nn.Module:
    """zuko's coupling NSF with NFDensity's depth and bins (5 transforms, 8 bins, 2 hidden layers)."""
    return zuko.flows.NSF(n_features, transforms=5, bins=8, hidden_features=(width, width), passes=2)


def fit_zuko(split, arguments) -> Fitted:
    """zuko's coupling NSF, trained by a plain loop with early stopping on the validation rows.

    Its hidden width is chosen so that its parameter count is closest to NFDensity's on the same data.
    """
    import zuko

    device = torch.device(arguments.device)
    location, scale = location_scale(split.X_fit)
    log_det = -float(np.log(scale).sum())

    def standardised(X):
        return torch.as_tensor((X - location) / scale, dtype=torch.float32, device=device)

    n_features = split.X_fit.shape[1]
    target = n_parameters(NFDensity()._build_module(n_features))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(split.seed)
        width = min(range(8, 257, 4), key=lambda w: abs(n_parameters(zuko_nsf(zuko, n_features, w)) - target))
        torch.manual_seed(split.seed)
        flow = zuko_nsf(zuko, n_features, width)
    flow.to(device)

    @torch.no_grad()
    def log_prob(Z):
        flow.eval()
        return torch.cat([flow().log_prob(Z[i : i + 8192]) for i in range(0, len(Z), 8192)])

    Z_fit, Z_validation = standardised(split.X_fit), standardised(split.X_validation)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(arguments.max_epochs - 1, 1), eta_min=1e-5)
    generator = torch.Generator(device=device).manual_seed(split.seed)
    best, best_state, best_epoch, waited = log_prob(Z_validation).mean().item(), copy.deepcopy(flow.state_dict()), 0, 0
    for epoch in range(1, arguments.max_epochs + 1):
        flow.train()
        order = torch.randperm(len(Z_fit), generator=generator, device=device)
        for start in range(0, len(Z_fit), 256):
            loss = -flow().log_prob(Z_fit[order[start : start + 256]]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
            optimizer.step()
        schedule.step()
        current = log_prob(Z_validation).mean().item()
        if math.isfinite(current) and current > best:
            best, best_state, best_epoch, waited = current, copy.deepcopy(flow.state_dict()), epoch, 0
        else:
            waited += 1
            if waited >= arguments.patience:
                break
    flow.load_state_dict(best_state)
    flow.eval()

    @torch.no_grad()
    def sample(n):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(split.seed)
            Z = flow().sample((n,))
        return Z.cpu().numpy().astype(np.float64) * scale + location

    return Fitted(
        lambda X: log_prob(standardised(X)).cpu().numpy().astype(np.float64) + log_det,
        sample,
        f"zuko NSF (coupling, width {width})",
        f"{n_parameters(flow):,}",
        str(epoch),
        on_device=True,
    )


def model_fitters(arguments):
    fitters = {"GaussianMixture": fit_gmm, "KernelDensity": fit_kde, "NFDensity": fit_nf, "NVFDensity": fit_nvf}
    if zuko_available():
        fitters["zuko NSF"] = fit_zuko
    if arguments.models:
        fitters = {name: fit for name, fit in fitters.items() if any(s in name for s in arguments.models)}
    return fitters


# ------------------------------------------------------------------------------------------------ running
def short_hardware(device: str, on_device: bool) -> str:
    if on_device and device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} thread(s)" if on_device else "CPU (scikit-learn)"


def evaluate(name, fit, split, X_test, arguments) -> dict:
    fitted, fit_seconds = timed(fit, split, arguments)
    scores, score_seconds = timed(fitted.score_samples, X_test)
    if not np.all(np.isfinite(scores)):
        print(f"  note: {name} gave {np.sum(~np.isfinite(scores))} non-finite test log-densities", flush=True)
    sample_rate = None
    if fitted.sample is not None:
        _, sample_seconds = timed(fitted.sample, arguments.n_sample)
        sample_rate = arguments.n_sample / sample_seconds
    mean, standard_error = mean_and_standard_error(scores)
    return dict(
        model=name,
        label=fitted.label,
        mean=mean,
        point_se=standard_error,
        fit_seconds=fit_seconds,
        score_rate=len(X_test) / score_seconds,
        sample_rate=sample_rate,
        parameters=fitted.parameters,
        epochs=fitted.epochs,
        hardware=short_hardware(arguments.device, fitted.on_device),
    )


def run_dataset(data_name, split, X_test, truth, arguments, results):
    for name, fit in model_fitters(arguments).items():
        record = evaluate(name, fit, split, X_test, arguments)
        record.update(data=data_name, seed=split.seed, truth=truth)
        results.append(record)
        gap = f", gap to truth {truth - record['mean']:.3f}" if truth is not None else ""
        print(
            f"  seed {split.seed} | {record['label']}: {record['mean']:.3f} ± {record['point_se']:.3f} nats{gap}, "
            f"fit {record['fit_seconds']:.1f} s, epochs {record['epochs'] or '-'}",
            flush=True,
        )


def keep(name, arguments) -> bool:
    return not arguments.datasets or any(s.lower() in name.lower() for s in arguments.datasets)


def toy_results(arguments, notes) -> list[dict]:
    results = []
    for dataset in toy_suite():
        if not keep(dataset.name, arguments):
            continue
        print(f"{dataset.name}: {arguments.n_train} train / {arguments.n_test} test rows", flush=True)
        for seed in arguments.seeds:
            rng = np.random.default_rng(seed)
            X_train, X_test = dataset.generate(arguments.n_train, rng), dataset.generate(arguments.n_test, rng)
            truth = float(dataset.log_density(X_test).mean()) if dataset.log_density else None
            split = Split.carve(X_train, arguments.validation_fraction, seed)
            run_dataset(dataset.name, split, X_test, truth, arguments, results)
    notes.append(
        f"Toy data: {arguments.n_train} training rows (a {arguments.validation_fraction:.0%} validation carve among them) "
        f"and {arguments.n_test} fresh test rows per data set and seed, drawn with `numpy.random.default_rng(seed)`."
    )
    return results


def tabular_results(arguments, notes) -> list[dict]:
    results = []
    for key, loader in tabular_data.SKLEARN_TABLES.items():
        if not keep(key, arguments):
            continue
        for seed in arguments.seeds:
            table = loader(seed)
            if seed == arguments.seeds[0]:
                print(f"{table.name}: {len(table.X_train)} train / {len(table.X_test)} test rows", flush=True)
                notes.extend(n for n in table.notes if n not in notes)
            split = Split.carve(table.X_train, arguments.validation_fraction, seed)
            run_dataset(table.name, split, table.X_test, None, arguments, results)
    notes.append(
        "scikit-learn tables: a 75/25 train/test split by seed (`train_test_split(random_state=seed)`), "
        f"a {arguments.validation_fraction:.0%} validation carve from the training rows."
    )
    if keep("miniboone", arguments):
        table = tabular_data.miniboone()
        if table is None:
            message = f"MINIBOONE skipped: {tabular_data.MINIBOONE}/val.npy or test.npy not found."
            print(message, flush=True)
            notes.append(message)
        else:
            print(f"{table.name}: {len(table.X_train)} train / {len(table.X_test)} test rows", flush=True)
            for seed in arguments.seeds:
                split = Split.carve(table.X_train, table.validation_fraction, seed)
                run_dataset(table.name, split, table.X_test, None, arguments, results)
            notes.append(
                "MINIBOONE: trained on `val.npy` (3,284 rows, a 10% validation carve among them, by seed), tested on "
                "`test.npy` (3,648 rows); the split itself does not change with the seed. " + table.notes[0]
            )
    return results


def aggregate(results, n_seeds) -> list[dict]:
    """One table row per (data, model): means over seeds; s.e. over seeds, or over test points for one seed."""
    rows, seen = [], []
    for record in results:
        key = (record["data"], record["model"])
        if key not in seen:
            seen.append(key)
    truths_shown = set()
    for data, model in seen:
        group = [r for r in results if (r["data"], r["model"]) == (data, model)]
        means = np.array([r["mean"] for r in group])
        truth = group[0]["truth"]
        if truth is not None and data not in truths_shown:
            truths_shown.add(data)
            truth_values = np.array([r["truth"] for r in results if r["data"] == data and r["model"] == model])
            rows.append({"data": data, "model": "true density", "test log-lik (nats)": f"{truth_values.mean():.3f}"})
        if len(group) > 1:
            mean, standard_error = mean_and_standard_error(means)
        else:
            mean, standard_error = means[0], group[0]["point_se"]
        labels = list(dict.fromkeys(r["label"] for r in group))  # in seed order
        gaps = [r["truth"] - r["mean"] for r in group] if truth is not None else None
        sample_rates = [r["sample_rate"] for r in group if r["sample_rate"] is not None]
        rows.append(
            {
                "data": data,
                "model": "; ".join(labels),
                "test log-lik (nats)": f"{mean:.3f}",
                "± s.e.": f"{standard_error:.3f}",
                "gap to truth": f"{np.mean(gaps):.3f}" if gaps is not None else "",
                "fit s": f"{np.mean([r['fit_seconds'] for r in group]):.1f}",
                "epochs": "/".join(r["epochs"] for r in group if r["epochs"]),
                "score rows/s": f"{np.mean([r['score_rate'] for r in group]):,.0f}",
                "sample rows/s": f"{np.mean(sample_rates):,.0f}" if sample_rates else "",
                "parameters": "/".join(sorted({r["parameters"] for r in group})),
                "hardware": group[0]["hardware"],
            }
        )
    return rows


def flow_suite(arguments, argv) -> tuple[str, str]:
    notes = []
    if not zuko_available():
        message = "zuko is not installed: its NSF row is skipped (`pip install -e \".[peers]\"`)."
        print(message, flush=True)
        notes.append(message)
    # One tiny fit first, so that no timed fit pays torch's one-off start-up costs.
    NFDensity(max_epochs=1, device=arguments.device, random_state=0).fit(np.random.default_rng(0).normal(size=(64, 2)))
    started = time.perf_counter()
    results = (toy_results if arguments.suite == "toy" else tabular_results)(arguments, notes)
    minutes = (time.perf_counter() - started) / 60
    n_seeds = len(arguments.seeds)
    spread = f"over {n_seeds} seeds" if n_seeds > 1 else "over test points, one seed"
    rows = aggregate(results, n_seeds)
    columns = list(rows[-1])
    columns[columns.index("± s.e.")] = f"± s.e. ({spread})"
    for row in rows:
        if "± s.e." in row:
            row[f"± s.e. ({spread})"] = row.pop("± s.e.")
    header = "\n".join(
        [
            f"Command: `{command(argv)}`  ",
            f"Hardware: flows on {hardware(arguments.device)}; GaussianMixture and KernelDensity on the CPU  ",
            f"Seeds: {' '.join(map(str, arguments.seeds))}; flows: max_epochs={arguments.max_epochs}, "
            f"patience={arguments.patience}, NVFDensity K grid {'/'.join(map(str, arguments.ks))}; "
            f"whole run {minutes:.1f} min.  ",
            "",
            "Test mean log-likelihood in nats per sample, raw units of the data (higher is better); "
            f"± is the standard error {spread}. Every model fits the same rows and chooses its hyper-parameters "
            "(K, bandwidth, early-stopping epoch) on the same validation rows carved from the training rows; the test "
            "set is scored once. Fit seconds include every candidate of the selection grid; sampling is timed on "
            f"{arguments.n_sample} rows; 'epochs' are those run (one figure per seed); parameter counts are the "
            "density's trainable parameters (NVFDensity: its encoder, an inference aid, excluded), the free "
            "parameters for GaussianMixture, and the stored training points for KernelDensity.",
            "",
            *[f"- {note}" for note in notes],
        ]
    )
    return header, markdown_table(rows, columns)


# ----------------------------------------------------------------------------------------------- images
def image_suite(arguments, argv) -> tuple[str, str]:
    """Run benchmarks/images_digits.py once per seed (it exposes only a CLI ``main``) and keep its tables."""
    if arguments.device != "cpu":
        print("note: benchmarks/images_digits.py runs on the CPU only; --device is ignored.", flush=True)
    environment = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    sections, started = [], time.perf_counter()
    for seed in arguments.seeds:
        call = [sys.executable, "-m", "benchmarks.images_digits", "--seed", str(seed)] + (["--quick"] if arguments.quick else [])
        print("running: " + " ".join(call[1:]), flush=True)
        completed = subprocess.run(call, env=environment, capture_output=True, text=True, check=False)
        print(completed.stdout, end="", flush=True)
        if completed.returncode != 0:
            print(completed.stderr, file=sys.stderr)
            raise SystemExit(f"benchmarks.images_digits failed with exit status {completed.returncode}")
        lines = completed.stdout.splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith("Test bits/dim"))
        context = [line for line in lines[:first] if line.startswith(("digits:", "codes used", "code prior cost"))]
        sections.append("\n".join(lines[first:] + [""] + [f"- {line}" for line in context]).strip())
    minutes = (time.perf_counter() - started) / 60
    header = "\n".join(
        [
            f"Command: `{command(argv)}` (runs `python -m benchmarks.images_digits"
            f"{' --quick' if arguments.quick else ''} --seed S` for each seed)  ",
            f"Hardware: {hardware('cpu')}  ",
            f"Seeds: {' '.join(map(str, arguments.seeds))} (one table per seed); whole run {minutes:.1f} min.",
        ]
    )
    return header, "\n\n".join(sections)


# ------------------------------------------------------------------------------------------------ docs
DOCS_RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks_results.rst"
RESULT_TITLES = {
    "run_toy": "Toy densities (``python -m benchmarks.run --suite toy``)",
    "run_tabular": "Real tables (``python -m benchmarks.run --suite tabular``)",
    "run_images": "Images: scikit-learn digits (``python -m benchmarks.run --suite images``)",
    "images_mnist_quick_cpu": "Images: MNIST, reduced CPU run (``python -m benchmarks.images_mnist --quick``)",
    "images_mnist_full_cuda": "Images: MNIST, full size on a GPU (``python -m benchmarks.images_mnist --device cuda``)",
    "multimodal": "Multi-modal toy densities, per K and objective (``benchmarks/multimodal.py``)",
    "nvf_ablation": "NVFDensity ablation (``benchmarks/nvf_ablation.py``)",
    "banana": "Banana density (``benchmarks/banana.py``)",
    "speed_cpu": "Throughput on the CPU (``benchmarks/speed.py``)",
    "speed_cuda": "Throughput on a GPU (``benchmarks/speed.py --device cuda``)",
}


def rst_inline(text: str) -> str:
    """Markdown inline text to reStructuredText: `code` becomes ``code``, the rest is escaped."""
    parts = text.split("`")
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = f"``{part.strip()}``" if part.strip() else ""
        else:
            for character in "\\*_|":
                part = part.replace(character, "\\" + character)
            parts[i] = part
    return "".join(parts).strip()


def markdown_to_rst(markdown: str) -> list[str]:
    """The few markdown forms the result files use: lines, '- ' bullets and pipe tables (as list-tables)."""
    out, table = [], []

    def flush_table():
        if not table:
            return
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table]
        rows = [row for row in rows if not all(set(cell) <= set("-: ") and cell for cell in row)]
        out.extend(["", ".. list-table::", "   :header-rows: 1", ""])
        for row in rows:
            for j, cell in enumerate(row):
                out.append((("   * - " if j == 0 else "     - ") + rst_inline(cell)).rstrip())
        out.append("")
        table.clear()

    previous_bullet = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if not line.strip():
            previous_bullet = False
            continue
        bullet = line.startswith("- ")
        if not (bullet and previous_bullet):
            out.append("")
        out.append(("- " + rst_inline(line[2:])) if bullet else rst_inline(line))
        previous_bullet = bullet
    flush_table()
    return out


def write_docs() -> Path:
    results = Path(__file__).resolve().parent / "results"
    files = sorted(results.glob("*.md"), key=lambda p: (list(RESULT_TITLES).index(p.stem) if p.stem in RESULT_TITLES else 99, p.stem))
    lines = [
        ".. Generated by `python -m benchmarks.run --docs` from benchmarks/results/*.md;",
        "   rerun it after a benchmark writes new results. Included by benchmarks.rst.",
        "",
        "Results",
        "-------",
        "",
        "The tables below are copied from ``benchmarks/results/``; each states the command that",
        "produced it, the hardware, the split and the seeds. Log-likelihoods are test means in nats",
        "per sample in the raw units of the data (higher is better) unless a table says otherwise.",
    ]
    for path in files:
        title = RESULT_TITLES.get(path.stem, f"``{path.name}``")
        lines += ["", "", title, "~" * len(title), "", f"From ``benchmarks/results/{path.name}``."]
        lines += markdown_to_rst(path.read_text())
    DOCS_RESULTS.write_text("\n".join(lines).rstrip() + "\n")
    return DOCS_RESULTS


def command(argv) -> str:
    return ("python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)).strip()


def main(argv=None):
    arguments = parse_arguments(argv)
    if arguments.docs:
        print(f"written to {write_docs()}")
        return
    warnings.simplefilter("ignore")
    if arguments.suite == "images":
        header, table = image_suite(arguments, argv)
    else:
        header, table = flow_suite(arguments, argv)
    print("\n" + header + "\n\n" + table)
    if not arguments.no_write:
        print(f"\nwritten to {write_result('run_' + arguments.suite, header, table)}")


if __name__ == "__main__":
    main()
