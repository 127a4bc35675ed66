"""Helpers shared by the benchmark scripts: splits, timing, hardware, markdown tables, pixel spaces."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Split:
    """Training rows cut in two: ``X_fit`` to fit on, ``X_validation`` to select on (early stopping, K, ...).

    Every model of a benchmark gets the same two sets: the flows through
    ``fit(X_fit, validation_data=X_validation)``, the others by fitting on
    ``X_fit`` and scoring candidates on ``X_validation``.
    """

    X_fit: np.ndarray
    X_validation: np.ndarray
    seed: int

    @classmethod
    def carve(cls, X_train: np.ndarray, fraction: float, seed: int) -> Split:
        """Hold out ``floor(fraction * n)`` rows (at least one), the first of ``default_rng(seed).permutation(n)``."""
        n_validation = max(1, min(int(math.floor(fraction * len(X_train))), len(X_train) - 1))
        order = np.random.default_rng(seed).permutation(len(X_train))
        return cls(X_train[order[n_validation:]], X_train[order[:n_validation]], seed)


def hardware(device: str = "cpu") -> str:
    """One line naming the processor or GPU and the thread count."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores (torch {torch.__version__})"


def command_line(module: str, argv=None) -> str:
    """The command that ran ``python -m module`` with ``argv`` (default: this process's arguments)."""
    return (f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)).strip()


def timed(function, *args, **kwargs):
    """``(result, seconds)``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def mean_and_standard_error(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def select_gaussian_mixture(X_fit, X_validation, candidates=(1, 2, 4, 8, 16, 32), seed=0, **options):
    """Full-covariance GaussianMixture fitted on ``X_fit``, its K chosen by mean log-likelihood on ``X_validation``.

    Returns the chosen model (fitted on ``X_fit`` only) and its K; candidates
    larger than the number of fitting rows are skipped. ``options`` go to
    ``GaussianMixture`` (e.g. ``reg_covar``).
    """
    best = None
    for k in candidates:
        if k > len(X_fit):
            break
        model = GaussianMixture(k, covariance_type="full", random_state=seed, **options).fit(X_fit)
        score = model.score(X_validation)
        if best is None or score > best[0]:
            best = (score, model, k)
    return best[1], best[2]


def gaussian_mixture_by_validation(X_train, candidates=(1, 2, 4, 8, 16, 32), validation_fraction=0.2, seed=0):
    """:func:`select_gaussian_mixture` on a :meth:`Split.carve` of ``X_train``: the model and its K."""
    split = Split.carve(X_train, validation_fraction, seed)
    return select_gaussian_mixture(split.X_fit, split.X_validation, candidates, seed)


def gaussian_mixture_parameters(model: GaussianMixture) -> int:
    """Free parameters of a fitted full-covariance GaussianMixture (what its ``bic`` counts)."""
    k, d = model.means_.shape
    return int(k * d * (d + 1) / 2 + k * d + k - 1)


# ------------------------------------------------------------------------------------------------- images
def logit_space(x: np.ndarray, n_levels: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``s = logit(alpha + (1 - 2 alpha) x / n_levels)`` of pixels ``x`` (pixel-level units), and ``log |ds/dx|`` per row."""
    t = alpha + (1 - 2 * alpha) * x / n_levels
    log_jacobian = np.log((1 - 2 * alpha) / n_levels) - np.log(t) - np.log1p(-t)
    return np.log(t) - np.log1p(-t), log_jacobian.sum(axis=1)


def pixel_bits_per_dim(log_density: np.ndarray, n_dims: int) -> float:
    """Mean bits/dim of log-densities (nats) of dequantised pixels in pixel-level units: ``-log q(x) / (D log 2)``."""
    return float(-np.mean(log_density) / (n_dims * math.log(2.0)))


# ------------------------------------------------------------------------------------------------ reports
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


def publish(name: str, header: str, table: str, write: bool = True) -> None:
    """Print a result and, unless ``write`` is false, write it to ``benchmarks/results/<name>.md``."""
    print("\n" + header + "\n\n" + table)
    if write:
        print(f"\nwritten to {write_result(name, header, table)}")


def add_no_write(parser) -> None:
    """The ``--no-write`` option every script shares."""
    parser.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
