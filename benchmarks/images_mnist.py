"""Test bits/dim on MNIST: NFImageDensity and NVFImageDensity, with fit times.

Data: ``shared/data/mnist/mnist_uint8.npz`` (see its README), 1x28x28, 256
levels, in the MAF split: train = the first 50,000 of the official training
images, validation = the last 10,000 (passed as ``validation_data``, so early
stopping sees exactly those), test = the official 10,000, all of them, scored
once in eval mode with one fixed dequantisation draw.

Space of every figure: dequantised pixels x = p + u, u ~ U[0, 1), in
pixel-level units; bits/dim = -log q(x) / (784 log 2), lower is better (the
uniform density: 8). ``NVFImageDensity``'s figure is an upper bound on its
bits/dim (the top-m code sequences of each image), marked "<=".
A full-covariance Gaussian fitted in logit space (MAF's "Gaussian" row,
alpha = 1e-6, its log-Jacobian added) is the sanity reference: on the full
split it should give about 2.01 bits/dim.

    python -m benchmarks.images_mnist --device cuda     # full size: a CUDA GPU
    OMP_NUM_THREADS=1 python -m benchmarks.images_mnist --quick   # reduced, CPU: ~15 min on 1 core

Add ``--no-write`` to print the table without writing ``benchmarks/results``.

``--quick`` trains on the first 2,000 training and 500 validation images with
a small model and few epochs (the test set stays whole): a check that the
pipeline runs end to end at MNIST's size, not a competitive figure.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from nvf_sklearn import NFImageDensity, NVFImageDensity

from .common import add_no_write, gaussian_mixture_parameters, hardware, logit_space, markdown_table, pixel_bits_per_dim, publish

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "mnist_uint8.npz"
N_LEVELS, SHAPE = 256, (1, 28, 28)
D = 784
GAUSSIAN_ALPHA = 1e-6
COLUMNS = ["model", "test bits/dim", "figure", "fit s", "score s", "parameters"]

#: Per budget: the split's sizes, training, the image flow (both models) and the code model. The code model's
#: encoder is as wide as the flow (``encoder_channels``), its prior 2 blocks of width 64.
SETTINGS = {
    "full": dict(
        n_train=50_000, n_validation=10_000, max_epochs=100, batch_size=256, learning_rate=1e-3, patience=10,
        flow=dict(n_scales=2, couplings_per_scale=4, hidden_channels=64, n_blocks=2),
        codes=dict(n_codes=64, n_downsamples=2, code_dim=16, top_m=16, encoder_channels=64, code_prior_layers=2,
                   code_prior_width=64),
    ),
    "quick": dict(
        n_train=2_000, n_validation=500, max_epochs=6, batch_size=64, learning_rate=2e-3, patience=5,
        flow=dict(n_scales=2, couplings_per_scale=2, hidden_channels=16, n_blocks=1),
        codes=dict(n_codes=16, n_downsamples=2, code_dim=8, top_m=4, encoder_channels=16, code_prior_layers=2,
                   code_prior_width=64),
    ),
}  # fmt: skip


def load_maf_split(n_train: int, n_validation: int) -> dict[str, np.ndarray]:
    """Integer levels (n, 784): the first n_train of MAF's train, the first n_validation of its validation."""
    data = np.load(MNIST)
    train = data["x_train"].reshape(-1, D).astype(np.float64)
    return {
        "train": train[:50_000][:n_train],
        "validation": train[50_000:][:n_validation],
        "test": data["x_test"].reshape(-1, D).astype(np.float64),
    }


def gaussian_row(split: dict, test: np.ndarray, rng: np.random.RandomState, seed: int) -> dict:
    """MAF's "Gaussian": one full-covariance Gaussian in logit space (alpha = 1e-6), its log-Jacobian added."""
    started = time.perf_counter()
    s_train, _ = logit_space(split["train"] + rng.uniform(size=split["train"].shape), N_LEVELS, GAUSSIAN_ALPHA)
    gaussian = GaussianMixture(1, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(s_train)
    fit_seconds = time.perf_counter() - started
    s_test, log_jacobian = logit_space(test, N_LEVELS, GAUSSIAN_ALPHA)
    bpd = pixel_bits_per_dim(gaussian.score_samples(s_test) + log_jacobian, D)
    return {"model": "Gaussian (full cov.), logit space", "test bits/dim": f"{bpd:.3f}", "figure": "exact",
            "fit s": f"{fit_seconds:.1f}", "parameters": f"{gaussian_mixture_parameters(gaussian):,}"}  # fmt: skip


def estimator_row(name: str, estimator, split: dict, test: np.ndarray) -> dict:
    """Fit on the training images, stop early on the validation images, score the test images once."""
    started = time.perf_counter()
    estimator.fit(split["train"], validation_data=split["validation"])
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    bpd = pixel_bits_per_dim(estimator.score_samples(test), D)
    is_bound = isinstance(estimator, NVFImageDensity)
    return {
        "model": name + (f", V={estimator.n_codes}, top-{estimator.top_m} bound" if is_bound else ""),
        "test bits/dim": ("<= " if is_bound else "") + f"{bpd:.3f}",
        "figure": f"upper bound, m={estimator.top_m}" if is_bound else "exact",
        "fit s": f"{fit_seconds:.1f} ({estimator.n_iter_} epochs)",
        "score s": f"{time.perf_counter() - started:.1f}",
        "parameters": f"{estimator.n_parameters_:,}",
    }


def mnist_rows(split: dict, settings: dict, device: str, seed: int, verbose: int = 1) -> tuple[list[dict], np.ndarray]:
    """The table's rows for one split, and the dequantised test images every model is scored on."""
    rng = np.random.RandomState(10_000 + seed)
    test = split["test"] + rng.uniform(size=split["test"].shape)  # one fixed draw for every model
    rows = [gaussian_row(split, test, rng, seed)]
    print(rows[-1], flush=True)
    common = dict(image_shape=SHAPE, n_levels=N_LEVELS, max_epochs=settings["max_epochs"],
                  batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
                  patience=settings["patience"], device=device, random_state=seed, verbose=verbose)  # fmt: skip
    estimators = {
        "NFImageDensity": NFImageDensity(**settings["flow"], **common),
        "NVFImageDensity": NVFImageDensity(**settings["codes"], **settings["flow"], **common),
    }
    for name, estimator in estimators.items():
        rows.append(estimator_row(name, estimator, split, test))
        print(rows[-1], flush=True)
    return rows, test


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced CPU run (2,000 training images)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    add_no_write(parser)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    split = load_maf_split(settings["n_train"], settings["n_validation"])
    print(f"MNIST ({mode}): train {len(split['train'])}, validation {len(split['validation'])}, "
          f"test {len(split['test'])} images; seed {args.seed}; {hardware(args.device)}", flush=True)  # fmt: skip
    rows, test = mnist_rows(split, settings, args.device, args.seed)
    header = (
        f"Command: `python -m benchmarks.images_mnist{' --quick' if args.quick else ''} --device {args.device}`  \n"
        f"Hardware: {hardware(args.device)}  \n"
        f"MNIST, MAF split ({len(split['train'])} train / {len(split['validation'])} validation images used; "
        f"all {len(test)} test images), 1x28x28, 256 levels, seed {args.seed}. Test bits/dim of dequantised "
        "pixels (uniform = 8); lower is better."
    )
    name = f"images_mnist_{mode}_{args.device.split(':')[0]}"
    publish(name, header, markdown_table(rows, COLUMNS), write=not args.no_write)


if __name__ == "__main__":
    main()
