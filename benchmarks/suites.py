"""The benchmark suites as functions returning rows: toy densities, real tables, digits images.

Each flow suite fits every model of :func:`.models.model_fitters` per data set
and seed on one :class:`~.common.Split` of the training rows (the test set is
scored once, at the end, and never used to choose anything) and returns one
record (a dict) per fit, with notes for the report. The image suite calls
:func:`.images_digits.digits_rows` once per seed.
"""

from __future__ import annotations

import numpy as np
import torch

from . import images_digits, tabular_data
from .common import Split, mean_and_standard_error, timed
from .models import Budget, model_fitters
from .toy_data import toy_suite


def short_hardware(device: str, on_device: bool) -> str:
    if on_device and device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} thread(s)" if on_device else "CPU (scikit-learn)"


def evaluate(name, fit, split: Split, X_test, budget: Budget, n_sample: int) -> dict:
    """Fit, score ``X_test`` and time sampling ``n_sample`` rows: one record."""
    fitted, fit_seconds = timed(fit, split, budget)
    scores, score_seconds = timed(fitted.score_samples, X_test)
    if not np.all(np.isfinite(scores)):
        print(f"  note: {name} gave {np.sum(~np.isfinite(scores))} non-finite test log-densities", flush=True)
    sample_rate = None
    if fitted.sample is not None:
        _, sample_seconds = timed(fitted.sample, n_sample)
        sample_rate = n_sample / sample_seconds
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
        hardware=short_hardware(budget.device, fitted.on_device),
    )


def run_dataset(data_name, split: Split, X_test, truth, arguments) -> list[dict]:
    """One record per model on one data set and seed (printed as it comes)."""
    budget = Budget(arguments.max_epochs, arguments.patience, arguments.device)
    records = []
    for name, fit in model_fitters(arguments.ks, arguments.models).items():
        record = evaluate(name, fit, split, X_test, budget, arguments.n_sample)
        record.update(data=data_name, seed=split.seed, truth=truth)
        records.append(record)
        gap = f", gap to truth {truth - record['mean']:.3f}" if truth is not None else ""
        print(
            f"  seed {split.seed} | {record['label']}: {record['mean']:.3f} ± {record['point_se']:.3f} nats{gap}, "
            f"fit {record['fit_seconds']:.1f} s, epochs {record['epochs'] or '-'}",
            flush=True,
        )
    return records


def keep(name, arguments) -> bool:
    return not arguments.datasets or any(s.lower() in name.lower() for s in arguments.datasets)


def toy_results(arguments) -> tuple[list[dict], list[str]]:
    """Records of every model on the toy densities of :func:`.toy_data.toy_suite`, and the notes."""
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
            results += run_dataset(dataset.name, split, X_test, truth, arguments)
    notes = [
        f"Toy data: {arguments.n_train} training rows (a {arguments.validation_fraction:.0%} validation carve among them) "
        f"and {arguments.n_test} fresh test rows per data set and seed, drawn with `numpy.random.default_rng(seed)`."
    ]
    return results, notes


def tabular_results(arguments) -> tuple[list[dict], list[str]]:
    """Records of every model on scikit-learn's tables and MINIBOONE (when its files exist), and the notes."""
    results, notes = [], []
    for key, loader in tabular_data.SKLEARN_TABLES.items():
        if not keep(key, arguments):
            continue
        for seed in arguments.seeds:
            table = loader(seed)
            if seed == arguments.seeds[0]:
                print(f"{table.name}: {len(table.X_train)} train / {len(table.X_test)} test rows", flush=True)
                notes.extend(n for n in table.notes if n not in notes)
            split = Split.carve(table.X_train, arguments.validation_fraction, seed)
            results += run_dataset(table.name, split, table.X_test, None, arguments)
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
                results += run_dataset(table.name, split, table.X_test, None, arguments)
            notes.append(
                "MINIBOONE: trained on `val.npy` (3,284 rows, a 10% validation carve among them, by seed), tested on "
                "`test.npy` (3,648 rows); the split itself does not change with the seed. " + table.notes[0]
            )
    return results, notes


def image_results(arguments) -> list[images_digits.DigitsResult]:
    """One :class:`~.images_digits.DigitsResult` per seed (digits, CPU only)."""
    mode = "quick" if arguments.quick else "full"
    results = []
    for seed in arguments.seeds:
        print(f"digits, {mode} settings, seed {seed}", flush=True)
        results.append(images_digits.digits_rows(seed, mode, progress=print))
    return results
