"""Smoke test: the benchmark entry point runs end to end on tiny settings (not a measurement)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_run_toy_quick_smoke():
    command = [
        sys.executable, "-m", "benchmarks.run", "--suite", "toy", "--quick", "--no-write",
        "--n-train", "200", "--n-test", "200", "--max-epochs", "2", "--ks", "2", "--n-sample", "100",
    ]  # fmt: skip
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout
    for data in ["two moons", "8 Gaussians (ring)", "pinwheel", "checkerboard", "skewed t mixture"]:
        assert f"| {data}" in output
    for model in ["true density", "GaussianMixture full", "KernelDensity", "| NFDensity |", "NVFDensity exact, K=2"]:
        assert model in output
    assert "nan" not in output.lower().replace("nats", "")
    assert "written to" not in output  # --no-write leaves benchmarks/results alone
