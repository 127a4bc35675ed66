"""Peak memory of exact scoring: 10^6 rows x 64 features with K = 32 latent states.

Scoring streams in chunks of at most 65,536 rows x states, so the working set
should stay a fixed size however many rows are scored. This script measures
the process's peak resident memory (``ru_maxrss``) before and during
``score_samples`` (``predict_cluster`` and ``predict_proba`` stream through
the same chunk iterator), next to the size of the input and
of the (n x K) matrix that is never materialised. The model is trained for
one epoch only: memory, not quality, is measured.

glibc's allocator keeps freed mid-sized buffers in its heap, so the peak can
creep up with the number of chunks even though the live set does not (at
120,000 rows: +393 MiB by default, +54 MiB with
``MALLOC_MMAP_THRESHOLD_=131072``). The header records that variable.

    python -m benchmarks.memory [--n-rows 1000000] [--n-features 64] [--n-latent 32] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import resource
import warnings

import numpy as np

from nvf_sklearn import NVFDensity

from .common import add_no_write, command_line, hardware, markdown_table, publish, timed


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-rows", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--n-latent", type=int, default=32)
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    model = NVFDensity(
        arguments.n_latent, n_layers=1, hidden_size=16, max_epochs=1, random_state=0, device="cpu"
    ).fit(rng.normal(size=(4000, arguments.n_features)))
    X = rng.normal(size=(arguments.n_rows, arguments.n_features))  # float64
    before = peak_rss_mib()
    scores, seconds = timed(model.score_samples, X)
    after_score = peak_rss_mib()
    assert np.isfinite(scores).all() and scores.shape == (arguments.n_rows,)
    n, k = arguments.n_rows, arguments.n_latent
    rows = [
        {"quantity": "input X (float64)", "MiB": f"{X.nbytes / 2**20:,.0f}"},
        {"quantity": "full (n x K) float64 matrix, never held", "MiB": f"{n * k * 8 / 2**20:,.0f}"},
        {"quantity": "peak RSS before scoring (model + X)", "MiB": f"{before:,.0f}"},
        {"quantity": "peak RSS after score_samples", "MiB": f"{after_score:,.0f}"},
        {"quantity": "growth of the peak while scoring", "MiB": f"{after_score - before:,.0f}"},
        {"quantity": f"score_samples time, seconds ({n / seconds:,.0f} rows/s)", "MiB": f"{seconds:.1f}"},
    ]
    table = markdown_table(rows, ["quantity", "MiB"])
    header = (
        f"Command: `{command_line('benchmarks.memory', argv)}`  \n"
        f"Hardware: {hardware()}; MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}  \n"
        f"{n:,} rows x {arguments.n_features} features, K = {k}, "
        "NVFDensity(n_layers=1, hidden_size=16); peak resident set size of the whole process."
    )
    name = "memory" if "MALLOC_MMAP_THRESHOLD_" not in os.environ else "memory_mmap_threshold"
    publish(name, header, table, write=not arguments.no_write)


if __name__ == "__main__":
    main()
