"""Smoke tests: the benchmark suites run end to end on tiny settings (not measurements)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, t as student_t

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


def test_imbalanced_gaussian_clusters_integrate_to_one_on_a_grid():
    from benchmarks.toy_data import ImbalancedGaussianClusters

    model = ImbalancedGaussianClusters(dimension=2, n_components=3, seed=0)
    half_width = np.abs(model.means).max() + 6.0
    axis = np.arange(-half_width, half_width, 0.04)  # the smallest axis scale is >= 0.05
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    assert np.exp(model.log_density(grid)).sum() * 0.04**2 == pytest.approx(1.0, abs=1e-4)


def test_imbalanced_gaussian_clusters_weights_and_scales_span_their_ratios():
    from benchmarks.toy_data import ImbalancedGaussianClusters

    model = ImbalancedGaussianClusters(dimension=6, n_components=8, weight_ratio=100.0, scale_ratio=10.0, seed=1)
    assert model.weights.sum() == pytest.approx(1.0)
    assert model.weights.max() / model.weights.min() == pytest.approx(100.0)
    assert model.scales.max() == pytest.approx(1.0) and model.scales.min() == pytest.approx(0.1)
    axis_scales = np.sqrt(np.linalg.eigvalsh(model.covariances)) / model.scales[:, None]
    assert np.all((axis_scales >= 0.5 - 1e-9) & (axis_scales <= 1.0 + 1e-9))


def test_imbalanced_gaussian_clusters_log_density_is_the_mixture_of_normals(rng):
    from benchmarks.toy_data import ImbalancedGaussianClusters

    model = ImbalancedGaussianClusters(dimension=3, n_components=4, seed=2)
    X = model.generate(20, rng)
    assert X.shape == (20, 3)
    direct = sum(w * multivariate_normal(m, c).pdf(X) for w, m, c in zip(model.weights, model.means, model.covariances))
    np.testing.assert_allclose(model.log_density(X), np.log(direct), rtol=1e-10)


def test_rotated_t_clusters_log_density_is_the_mixture_of_rotated_scaled_t(rng):
    from benchmarks.toy_data import rotated_t_clusters

    model = rotated_t_clusters(3, 4, seed=3)
    X = model.generate(20, rng)
    direct = 0.0
    for k in range(model.n_components):
        y = (X - model.means[k]) @ model.rotations[k] / model.scales[k]
        direct = direct + model.weights[k] * np.prod(student_t.pdf(y, 3.0) / model.scales[k], axis=1)
    np.testing.assert_allclose(model.log_density(X), np.log(direct), rtol=1e-10)


def test_rotated_t_clusters_integrate_to_one_on_a_grid():
    from benchmarks.toy_data import rotated_t_clusters

    model = rotated_t_clusters(2, 2, seed=4)
    axis = np.arange(-40.0, 40.0, 0.1)  # the smallest axis scale is >= 0.3
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    assert np.exp(model.log_density(grid)).sum() * 0.1**2 == pytest.approx(1.0, abs=1e-3)  # t tails leave the box


def test_fronts_suite_cases_have_exact_densities(rng):
    from benchmarks.toy_data import fronts_suite

    suite = fronts_suite()
    names = [dataset.name for dataset in suite]
    assert len(set(names)) == len(names) == 7
    for dataset in suite:
        assert dataset.n_modes and dataset.log_density is not None
        X = dataset.generate(50, rng)
        assert X.shape == (50, int(re.search(r"d=(\d+)", dataset.name).group(1)))
        assert np.all(np.isfinite(dataset.log_density(X)))
        assert dataset.n_train == int(dataset.name.rsplit("n=", 1)[1])


def test_multimodal_suite_option_chooses_cases_and_results_file(tmp_path):
    from benchmarks.multimodal import RESULT_NAMES, parse_arguments, read_records
    from benchmarks.toy_data import fronts_suite, known_density_suite

    assert parse_arguments([]).suite == "known"
    assert parse_arguments(["--suite", "fronts"]).suite == "fronts"
    assert RESULT_NAMES["known"] == "multimodal" and RESULT_NAMES["fronts"] != "multimodal"
    front, known = fronts_suite()[0].name, known_density_suite()[0].name
    records = tmp_path / "runs.jsonl"
    records.write_text("".join(json.dumps({"data": name, "model": "gmm", "seed": 0}) + "\n" for name in [front, known]))
    assert [r["data"] for r in read_records([str(records)])] == [known, front]


def test_rare_modes_rows_match_each_cluster_to_a_state():
    from benchmarks.rare_modes import COLUMNS, rare_mode_rows
    from benchmarks.toy_data import ImbalancedGaussianClusters

    mixture = ImbalancedGaussianClusters(dimension=2, n_components=3, seed=11)
    rows = rare_mode_rows(mixture, 600, seed=0, max_epochs=1)
    assert [row["cluster"] for row in rows] == np.argsort(mixture.weights).tolist()
    assert all(set(row) == set(COLUMNS) for row in rows)
    assert all(0.0 <= float(row["rows kept together"]) <= 1.0 for row in rows)
    assert sum(float(row["true weight"]) for row in rows) == pytest.approx(1.0, abs=1e-3)


def test_warm_start_benchmark_finds_the_axes_of_well_separated_skewed_clusters():
    """Its rows have every column; the kept frame beats the Cholesky frame on rotated skewed clusters."""
    from benchmarks.toy_data import SkewedClusterMixture
    from benchmarks.warm_start import CLUSTER_COLUMNS, COLUMNS, FRAMES, cluster_rows, frame_rows

    mixture = SkewedClusterMixture(3, 2, separation=8.0, seed=0, max_skew=1.0)
    clusters = cluster_rows("case", mixture, 3000, seed=0)
    assert [row["clusters held"] for row in clusters] == ["2 of 2", "2 of 2"]
    assert all(set(row) == set(CLUSTER_COLUMNS) for row in clusters)
    frames = {row["frame"]: row for row in frame_rows("case", mixture, 3000, seed=0)}
    assert list(frames) == FRAMES and all(set(row) == set(COLUMNS) for row in frames.values())
    kept, cholesky = frames["kept (least entropy)"], frames["Cholesky"]
    assert float(kept["marginal entropy (nats/row)"]) < float(cholesky["marginal entropy (nats/row)"])
    assert float(kept["Amari index"]) < float(cholesky["Amari index"])
