"""Test bits/dim on MNIST: NFDensity and NVFDensity(latent="sequence"), with fit times.

Data: ``shared/data/mnist/mnist_uint8.npz`` (see its README), 1x28x28, 256
levels, in the MAF split: train = the first 50,000 of the official training
images, validation = the last 10,000 (passed as ``validation_data``, so early
stopping sees exactly those), test = the official 10,000, all of them, scored
once in eval mode with one fixed dequantisation draw.

Space of every figure: dequantised pixels x = p + u, u ~ U[0, 1), in
pixel-level units; bits/dim = -log q(x) / (784 log 2), lower is better (the
uniform density: 8). ``NVFDensity(latent="sequence")``'s figure is an upper
bound on its bits/dim (the top-m code sequences of each image), marked "<=".
A full-covariance Gaussian fitted in logit space (MAF's "Gaussian" row,
alpha = 1e-6, its log-Jacobian added) is the sanity reference: on the full
split it should give about 2.01 bits/dim.

    python -m benchmarks.images_mnist --device cuda     # full size: a CUDA GPU
    OMP_NUM_THREADS=1 python -m benchmarks.images_mnist --quick   # reduced, CPU: ~15 min on 1 core

``--quick`` trains on the first 2,000 training and 500 validation images with
a small model and few epochs (the test set stays whole): a check that the
pipeline runs end to end at MNIST's size, not a competitive figure.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from nvf_sklearn import NFDensity, NVFDensity

from .common import hardware, markdown_table, write_result

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "mnist_uint8.npz"
N_LEVELS, SHAPE = 256, (1, 28, 28)
D = 784
GAUSSIAN_ALPHA = 1e-6

SETTINGS = {
    "full": dict(
        n_train=50_000, n_validation=10_000, max_epochs=100, batch_size=256, learning_rate=1e-3, patience=10,
        flow=dict(n_scales=2, n_layers=4, hidden_size=64, n_hidden_layers=2),
        sequence=dict(n_latent=64, n_downsamples=2, code_dim=16, top_m=16),
    ),
    "quick": dict(
        n_train=2_000, n_validation=500, max_epochs=6, batch_size=64, learning_rate=2e-3, patience=5,
        flow=dict(n_scales=2, n_layers=2, hidden_size=16, n_hidden_layers=1),
        sequence=dict(n_latent=16, n_downsamples=2, code_dim=8, top_m=4),
    ),
}


def load_maf_split(n_train: int, n_validation: int) -> dict[str, np.ndarray]:
    """Integer levels (n, 784): the first n_train of MAF's train, the first n_validation of its validation."""
    data = np.load(MNIST)
    train = data["x_train"].reshape(-1, D).astype(np.float64)
    return {
        "train": train[:50_000][:n_train],
        "validation": train[50_000:][:n_validation],
        "test": data["x_test"].reshape(-1, D).astype(np.float64),
    }


def bits_per_dim(log_density: np.ndarray) -> float:
    """Mean bits/dim of log-densities (nats) of dequantised pixels in pixel-level units."""
    return float(-np.mean(log_density) / (D * math.log(2.0)))


def logit_space(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MAF's logit(alpha + (1 - 2 alpha) x / 256) and its log-Jacobian per row, pixel units to logit space."""
    t = GAUSSIAN_ALPHA + (1 - 2 * GAUSSIAN_ALPHA) * x / N_LEVELS
    log_jacobian = np.log((1 - 2 * GAUSSIAN_ALPHA) / N_LEVELS) - np.log(t) - np.log1p(-t)
    return np.log(t) - np.log1p(-t), log_jacobian.sum(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced CPU run (2,000 training images)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    split = load_maf_split(settings["n_train"], settings["n_validation"])
    rng = np.random.RandomState(10_000 + args.seed)
    test = split["test"] + rng.uniform(size=split["test"].shape)  # one fixed draw for every model
    print(f"MNIST ({mode}): train {len(split['train'])}, validation {len(split['validation'])}, "
          f"test {len(test)} images; seed {args.seed}; {hardware(args.device)}", flush=True)
    rows = []

    started = time.perf_counter()
    s_train, _ = logit_space(split["train"] + rng.uniform(size=split["train"].shape))
    gaussian = GaussianMixture(1, covariance_type="full", reg_covar=1e-4, random_state=args.seed).fit(s_train)
    s_test, log_jacobian = logit_space(test)
    rows.append({"model": "Gaussian (full cov.), logit space", "test bits/dim": f"{bits_per_dim(gaussian.score_samples(s_test) + log_jacobian):.3f}",
                 "figure": "exact", "fit s": f"{time.perf_counter() - started:.1f}", "parameters": f"{gaussian._n_parameters():,}"})
    print(rows[-1], flush=True)

    common = dict(image_shape=SHAPE, n_levels=N_LEVELS, max_epochs=settings["max_epochs"],
                  batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
                  patience=settings["patience"], device=args.device, random_state=args.seed, verbose=1)
    estimators = {
        "NFDensity(image_shape)": NFDensity(**settings["flow"], **common),
        "NVFDensity(latent='sequence')": NVFDensity(latent="sequence", **settings["sequence"], **settings["flow"], **common),
    }
    for name, estimator in estimators.items():
        started = time.perf_counter()
        estimator.fit(split["train"], validation_data=split["validation"])
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        bpd = bits_per_dim(estimator.score_samples(test))
        is_bound = name.startswith("NVF")
        rows.append({
            "model": name + (f", V={estimator.n_latent}, top-{estimator.top_m} bound" if is_bound else ""),
            "test bits/dim": ("<= " if is_bound else "") + f"{bpd:.3f}",
            "figure": f"upper bound, m={estimator.top_m}" if is_bound else "exact",
            "fit s": f"{fit_seconds:.1f} ({estimator.n_iter_} epochs)",
            "score s": f"{time.perf_counter() - started:.1f}",
            "parameters": f"{estimator.n_parameters_:,}",
        })
        print(rows[-1], flush=True)

    table = markdown_table(rows, ["model", "test bits/dim", "figure", "fit s", "score s", "parameters"])
    header = (
        f"Command: `python -m benchmarks.images_mnist{' --quick' if args.quick else ''} --device {args.device}`  \n"
        f"Hardware: {hardware(args.device)}  \n"
        f"MNIST, MAF split ({len(split['train'])} train / {len(split['validation'])} validation images used; "
        f"all {len(test)} test images), 1x28x28, 256 levels, seed {args.seed}. Test bits/dim of dequantised "
        "pixels (uniform = 8); lower is better."
    )
    print("\n" + header + "\n\n" + table)
    path = write_result(f"images_mnist_{mode}_{args.device.split(':')[0]}", header, table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
