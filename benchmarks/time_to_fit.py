"""Time to fit: a default fit to early stopping, wall-clock and test log-likelihood, ours and zuko's side by side.

Three workloads, each table naming its device:

- **a 30,000 x 43 table** (MINIBOONE's shape) drawn from a known-density
  mixture of skewed clusters, so the gap to the truth prints too;
- **a 32,768 x 16 multi-modal table** (the suite's 16-D case, 24 clusters);
- **MNIST images** (the MAF split: 50,000 training, 10,000 validation and
  10,000 test images), ``--mnist-epochs`` epochs of each image model:
  seconds per epoch and test bits/dim after them.

Tables: NFDensity and NVFDensity (K = 8) with default settings, and zuko's
coupling NSF (NFDensity's size) trained by our own loop
(``benchmarks/zuko_baseline.py``) on the same device, all with early stopping
on the same 10% of the training rows. Test figures: mean log-likelihood in
nats per sample on 10,000 fresh rows, and the gap to the true density.

    python -m benchmarks.time_to_fit --device cuda
    OMP_NUM_THREADS=1 python -m benchmarks.time_to_fit --quick      # CPU: reduced rows, no MNIST
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from nvf_sklearn import NFDensity, NFImageDensity, NVFDensity, NVFImageDensity

from . import zuko_baseline
from .common import Split, add_no_write, command_line, hardware, markdown_table, pixel_bits_per_dim, publish
from .images_mnist import MNIST, load_maf_split
from .models import Budget
from .toy_data import SkewedClusterMixture, known_density_suite

TABLES = {
    "30,000 x 43 (MINIBOONE's shape)": (SkewedClusterMixture(43, 8, separation=4.0, seed=11), 30_000),
    "32,768 x 16 multi-modal": (next(d for d in known_density_suite() if d.name == "skewed clusters d=16 K=24"), 32_768),
}
MNIST_FLOW = dict(n_scales=2, couplings_per_scale=4, hidden_channels=64, n_blocks=2)
MNIST_CODES = dict(n_codes=64, code_dim=16, top_m=16, encoder_channels=64, code_prior_layers=2, code_prior_width=64)


def table_rows(name: str, density, n_train: int, arguments) -> list[dict]:
    rng = np.random.default_rng(arguments.seed)
    X_train, X_test = density.generate(n_train, rng), density.generate(10_000, rng)
    truth = float(density.log_density(X_test).mean())
    split = Split.carve(X_train, 0.1, arguments.seed)
    common = dict(device=arguments.device, random_state=arguments.seed)
    models = {
        "NFDensity": lambda: NFDensity(**common).fit(split.X_fit, validation_data=split.X_validation),
        "NVFDensity (K=8)": lambda: NVFDensity(8, **common).fit(split.X_fit, validation_data=split.X_validation),
    }
    if zuko_baseline.available():
        models["zuko NSF, our loop"] = lambda: zuko_baseline.fit_zuko(split, Budget(200, 20, arguments.device))
    rows = []
    for label, fit in models.items():
        started = time.perf_counter()
        fitted = fit()
        seconds = time.perf_counter() - started
        epochs = fitted.n_iter_ if hasattr(fitted, "n_iter_") else fitted.epochs
        score = float(np.mean(fitted.score_samples(X_test)))
        rows.append({"data": name, "model": label, "fit s (to early stopping)": f"{seconds:.1f}",
                     "epochs": epochs, "test log-lik": f"{score:.3f}", "gap to truth": f"{truth - score:.3f}",
                     "device": hardware(arguments.device)})  # fmt: skip
        print(markdown_table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    return rows


def mnist_rows(arguments) -> list[dict]:
    split = load_maf_split(50_000, 10_000)
    common = dict(max_epochs=arguments.mnist_epochs, n_levels=256, device=arguments.device, random_state=arguments.seed)
    models = {
        "NFImageDensity": NFImageDensity(**MNIST_FLOW, **common),
        "NVFImageDensity (bound)": NVFImageDensity(**MNIST_CODES, **MNIST_FLOW, **common),
    }
    rows = []
    for label, estimator in models.items():
        started = time.perf_counter()
        estimator.fit(split["train"], validation_data=split["validation"])
        seconds = time.perf_counter() - started
        bpd = pixel_bits_per_dim(estimator.score_samples(split["test"] + np.random.RandomState(0).uniform(size=split["test"].shape)), 784)
        rows.append({"data": "MNIST 50,000 images", "model": label, "epochs": estimator.n_iter_,
                     "s/epoch": f"{seconds / max(estimator.n_iter_, 1):.1f}", "test bits/dim": f"{bpd:.3f}",
                     "device": hardware(arguments.device)})  # fmt: skip
        print(markdown_table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist-epochs", type=int, default=2)
    parser.add_argument("--no-mnist", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a tenth of the table rows, no MNIST")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name, (density, n_train) in TABLES.items():
        rows += table_rows(name, density, n_train // 10 if arguments.quick else n_train, arguments)
    tables = markdown_table(rows, list(rows[0]))
    if not (arguments.quick or arguments.no_mnist) and MNIST.exists():
        images = mnist_rows(arguments)
        tables += "\n\n" + markdown_table(images, list(images[0]))
    header = (f"Command: `{command_line('benchmarks.time_to_fit', argv)}`  \nHardware: {hardware(arguments.device)}  \n"
              "Default settings; early stopping on 10% of the training rows; test figures on 10,000 fresh rows "
              "(nats per sample) or the 10,000 MNIST test images (bits/dim).")  # fmt: skip
    publish(f"time_to_fit_{arguments.device.split(':')[0]}", header, tables,
            write=not (arguments.no_write or arguments.quick))  # fmt: skip


if __name__ == "__main__":
    main()
