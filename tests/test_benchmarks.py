"""Smoke tests: the benchmark suites run end to end on tiny settings (not measurements)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def run_module(*arguments: str) -> str:
    """Stdout of ``python -m <arguments>`` run from the repository root on one thread; it must succeed."""
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", *arguments]
    completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.mark.slow
def test_benchmark_run_toy_quick_smoke():
    output = run_module(
        "benchmarks.run", "--suite", "toy", "--quick", "--no-write",
        "--n-train", "200", "--n-test", "200", "--max-epochs", "2", "--ks", "2", "--n-sample", "100",
    )  # fmt: skip
    for data in ["two moons", "8 Gaussians (ring)", "pinwheel", "checkerboard", "skewed t mixture"]:
        assert f"| {data}" in output
    for model in ["true density", "GaussianMixture full", "KernelDensity", "| NFDensity |", "NVFDensity exact, K=2"]:
        assert model in output
    assert "nan" not in output.lower().replace("nats", "")
    assert "written to" not in output  # --no-write leaves benchmarks/results alone


@pytest.mark.slow
def test_benchmark_images_digits_quick_rows():
    from benchmarks.images_digits import COLUMNS, digits_rows  # the repository root is on sys.path (tests/ is a package)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = digits_rows(0, "quick")
    finally:
        torch.set_num_threads(threads)
    models = [row["model"] for row in result.rows]
    assert [model.split(",")[0].split(" (")[0] for model in models] == [
        "GaussianMixture", "GaussianMixture", "NFImageDensity", "NVFImageDensity V=16", "NVFImageDensity V=16",
    ]  # fmt: skip
    assert all(list(row) == COLUMNS for row in result.rows)
    exact = [float(row["test bits/dim"]) for row in result.rows if row["figure"] == "exact"]
    bounds = [float(row["test bits/dim"].removeprefix("<= ")) for row in result.rows if row["figure"] != "exact"]
    assert all(0 < bits < 4.1 for bits in exact + bounds)  # below the uniform density's log2(17)
    assert bounds == sorted(bounds, reverse=True)  # a larger top-m never loosens the bound
    assert "| NFImageDensity" in result.markdown()


@pytest.mark.slow
def test_multimodal_records_make_the_same_table_when_read_back(tmp_path):
    records = tmp_path / "runs.jsonl"
    fitted = run_module("benchmarks.multimodal", "--quick", "--cases", "ring", "--models", "gmm", "nf",
                        "--jsonl", str(records))  # fmt: skip
    read_back = run_module("benchmarks.multimodal", "--from-jsonl", str(records), "--no-write")
    table = [line for line in fitted.splitlines() if line.startswith("| 8 Gaussians")]
    assert len(table) == 2
    assert table == [line for line in read_back.splitlines() if line.startswith("| 8 Gaussians")]


@pytest.mark.slow
def test_versus_commit_times_both_trees():
    output = run_module("benchmarks.versus_commit", "--other", str(ROOT), "--rows", "300", "--epochs", "1",
                        "--repeats", "1", "--no-write")  # fmt: skip
    rows = [line for line in output.splitlines() if line.startswith("| NFDensity") or line.startswith("| NVFDensity")]
    assert len(rows) == 4  # both trees are this checkout: one row each for own defaults, previous settings
