"""NVFDensity's warm start on the rotated public cases: which clusters its states hold, and their frames.

Clusters: for the Gaussian-mixture start (best of 3 EM runs) and the start
``tails="student_t"`` uses (which may be a Student-t mixture,
``nvf_sklearn._nvf_start.heavier_tailed_start``), the number of true
clusters that hold the majority of some state's rows, and the share of rows
whose state's majority cluster is their own ("rows on their cluster's
state"; 1 when every state is one cluster, less when states merge clusters).

Frames: a state's whitening map fixes its covariance, not its frame; the warm start
turns a full map to the frame FastICA finds (three contrasts), keeping the
candidate whose coordinates have the least marginal entropy
(``nvf_sklearn._nvf_start.independent_frames``). For each rotated public case
this script draws the case's training rows (a draw of each data seed), fits
the warm start as ``NVFDensity`` does, matches
every state to the cluster holding most of its rows, and reports per
candidate frame, averaged over the states:

- the Amari index of ``map @ diag(1 / sd) @ R_k @ diag(s_k)`` (0 when the map's
  axes are the cluster's independent axes, up to order, sign and scale);
- the sum of the coordinates' marginal entropies (m-spacing estimate, nats
  per row): the frame kept is the one with the least, and the difference
  between two frames is what a model of free independent marginals gains
  per row by the better one.

    python -m benchmarks.warm_start --seeds 0 1
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from nvf_sklearn._nvf_start import START_TAIL_ROWS, fit_start, ica_frames, marginal_entropy
from nvf_sklearn._preprocessing import Standardizer

from .common import add_no_write, command_line, hardware, markdown_table, publish
from .toy_data import SkewedClusterMixture, known_density_suite, rotated_t_clusters

FRAMES = ["Cholesky", "logcosh", "cube", "skew", "kept (least entropy)"]
COLUMNS = ["data", "seed", "states", "frame", "Amari index", "marginal entropy (nats/row)"]
CLUSTER_COLUMNS = ["data", "seed", "start", "clusters held", "rows on their cluster's state"]


def rotated_cases() -> list[tuple[str, SkewedClusterMixture, int]]:
    """The public cases whose clusters are rotated: (name, mixture, training rows)."""
    suite = {case.name: case for case in known_density_suite()}
    names = ["rotated skewed clusters d=8 K=12", "rotated skewed clusters d=16 K=24", "skewed t mixture d=8 K=6 (harder)"]
    cases = [(name, suite[name].generate.__self__, suite[name].n_train) for name in names]
    return cases + [("rotated t clusters d=4 K=5 (nu=3), n=16000", rotated_t_clusters(4, 5, seed=13), 16_000)]


def amari_index(product: np.ndarray) -> float:
    """0 for a scaled permutation matrix, up to 1 for a matrix that mixes every axis evenly."""
    P = np.abs(product)
    d = len(P)
    rows = np.sum(P.sum(axis=1) / P.max(axis=1) - 1.0)
    columns = np.sum(P.sum(axis=0) / P.max(axis=0) - 1.0)
    return float((rows + columns) / (2 * d * (d - 1)))


def standardised_draw(mixture: SkewedClusterMixture, n_train: int, seed: int):
    X, labels = mixture.generate_labelled(n_train, np.random.default_rng(seed))
    scaler = Standardizer().fit(X)
    return scaler, scaler.transform(X), labels


def cluster_rows(name: str, mixture: SkewedClusterMixture, n_train: int, seed: int) -> list[dict]:
    """One row per start: the clusters its states hold and the share of rows on their own cluster's state."""
    _, Z, labels = standardised_draw(mixture, n_train, seed)
    rows = []
    for start_name, heavy_tailed in (("Gaussian mixture", False), ('tails="student_t" start', True)):
        start = fit_start(Z, np.ones(len(Z)), mixture.n_components, "gmm", np.random.RandomState(seed),
                          measure_overlap=False, heavy_tailed=heavy_tailed)  # fmt: skip
        owner = np.full(mixture.n_components, -1)  # each state's majority cluster
        for k in np.unique(start.labels):
            owner[k] = np.bincount(labels[start.labels == k]).argmax()
        held = len(set(owner[np.unique(start.labels)]))
        rows.append({"data": name, "seed": seed, "start": start_name,
                     "clusters held": f"{held} of {mixture.n_components}",
                     "rows on their cluster's state": f"{np.mean(owner[start.labels] == labels):.3f}"})  # fmt: skip
    return rows


def frame_rows(name: str, mixture: SkewedClusterMixture, n_train: int, seed: int) -> list[dict]:
    """One row per candidate frame: Amari index and marginal entropy averaged over the matched states."""
    scaler, Z, labels = standardised_draw(mixture, n_train, seed)
    rng = np.random.RandomState(seed)
    start = fit_start(Z, np.ones(len(Z)), mixture.n_components, "gmm", rng, measure_overlap=False)
    maps = np.linalg.inv(np.linalg.cholesky(start.covariances))
    scores = {frame: [] for frame in FRAMES}
    with threadpool_limits(1):
        for k in range(mixture.n_components):
            mine = start.labels == k
            if mine.sum() < 2 * Z.shape[1]:
                continue
            cluster = np.bincount(labels[mine], minlength=mixture.n_components).argmax()
            truth = np.diag(1.0 / scaler.scale_) @ mixture.rotations[cluster] @ np.diag(mixture.scales[cluster])
            white = (Z[mine][:START_TAIL_ROWS] - start.means[k]) @ maps[k].T
            candidates = [np.eye(Z.shape[1])] + ica_frames(white, rng)
            measured = [(amari_index(Q @ maps[k] @ truth), marginal_entropy(white @ Q.T)) for Q in candidates]
            measured.append(min(measured, key=lambda pair: pair[1]))
            for frame, pair in zip(FRAMES, measured):
                scores[frame].append(pair)
    return [{"data": name, "seed": seed, "states": len(scores[FRAMES[0]]), "frame": frame,
             "Amari index": f"{np.mean([a for a, _ in pairs]):.3f}",
             "marginal entropy (nats/row)": f"{np.mean([h for _, h in pairs]):.3f}"}
            for frame, pairs in scores.items()]  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="data seeds")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    cases = rotated_cases()
    clusters = [row for name, mixture, n in cases for seed in arguments.seeds
                for row in cluster_rows(name, mixture, n, seed)]  # fmt: skip
    frames = [row for name, mixture, n in cases for seed in arguments.seeds
              for row in frame_rows(name, mixture, n, seed)]  # fmt: skip
    header = (f"Command: `{command_line('benchmarks.warm_start', argv)}`  \nHardware: {hardware()}  \n"
              "The warm start of each case's default number of training rows (one draw per data seed). First "
              "table: the clusters the start's states hold. Second: per candidate frame of the full state maps "
              "(Gaussian-mixture start), the mean over states of the Amari index against the true cluster axes "
              "(0 = found) and of the summed marginal entropy of the whitened coordinates (nats per row; the "
              "kept frame has the least).")  # fmt: skip
    tables = markdown_table(clusters, CLUSTER_COLUMNS) + "\n\n" + markdown_table(frames, COLUMNS)
    publish("warm_start", header, tables, write=not arguments.no_write)


if __name__ == "__main__":
    main()
