"""Helpers shared by the benchmark scripts: timing, hardware, markdown tables."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"


def hardware(device: str = "cpu") -> str:
    """One line naming the processor or GPU and the thread count."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores (torch {torch.__version__})"


def timed(function, *args, **kwargs):
    """``(result, seconds)``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def mean_and_standard_error(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def gaussian_mixture_by_validation(X_train, candidates=(1, 2, 4, 8, 16, 32), validation_fraction=0.2, seed=0):
    """GaussianMixture with K chosen on a validation split carved from the training rows.

    Returns the model refitted on the training split only (the validation rows
    are never used for fitting), and the chosen K.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X_train))
    n_validation = int(validation_fraction * len(X_train))
    validation, train = X_train[order[:n_validation]], X_train[order[n_validation:]]
    best = None
    for k in candidates:
        if k > len(train):
            break
        model = GaussianMixture(k, covariance_type="full", random_state=seed).fit(train)
        score = model.score(validation)
        if best is None or score > best[0]:
            best = (score, model, k)
    return best[1], best[2]


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def write_result(name: str, header: str, table: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(f"{header}\n\n{table}\n")
    return path
