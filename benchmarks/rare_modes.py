"""Rare modes: do NVFDensity's states keep the small clusters of an imbalanced mixture?

On the fronts suite's imbalanced Gaussian clusters (8 rotated clusters in 6-D,
weights spanning 100x), each true cluster is matched to the state that holds
most of its rows' posterior mass on fresh rows; the table gives, per cluster
(rarest first), its true weight, the matched state's fitted weight
(``weights_``) and the share of the cluster's fresh rows whose most probable
state is that state (``predict_cluster``). A rare cluster that lost its
state shows a weight near zero or a share well below one.

    python -m benchmarks.rare_modes --rows 2000 16000 --seeds 0 1
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from nvf_sklearn import NVFDensity

from .common import add_no_write, command_line, hardware, markdown_table, publish
from .toy_data import ImbalancedGaussianClusters

COLUMNS = ["rows", "seed", "cluster", "true weight", "state weight", "rows kept together", "gap to truth (nats)"]


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 16000], help="training rows")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="data seeds (also random_state)")
    parser.add_argument("--max-epochs", default="auto", help="NVFDensity's max_epochs (an int for smoke runs)")
    add_no_write(parser)
    return parser.parse_args(argv)


def rare_mode_rows(mixture: ImbalancedGaussianClusters, n_train: int, seed: int, max_epochs) -> list[dict]:
    """The table's rows of one fit: one per true cluster, rarest first."""
    rng = np.random.default_rng(seed)
    X_train, _ = mixture.generate_labelled(n_train, rng)
    X_test, labels = mixture.generate_labelled(20_000, rng)
    model = NVFDensity(mixture.n_components, random_state=seed, max_epochs=max_epochs).fit(X_train)
    gap = float(np.mean(mixture.log_density(X_test) - model.score_samples(X_test)))
    states = model.predict_cluster(X_test)
    rows = []
    for cluster in np.argsort(mixture.weights):
        mine = states[labels == cluster]
        state = np.bincount(mine, minlength=mixture.n_components).argmax() if len(mine) else 0
        rows.append({
            "rows": n_train, "seed": seed, "cluster": int(cluster), "true weight": f"{mixture.weights[cluster]:.4f}",
            "state weight": f"{model.weights_[state]:.4f}",
            "rows kept together": f"{np.mean(mine == state):.3f}" if len(mine) else "-",
            "gap to truth (nats)": f"{gap:.3f}",
        })  # fmt: skip
    return rows


def main(argv=None):
    arguments = parse_arguments(argv)
    warnings.simplefilter("ignore")
    max_epochs = arguments.max_epochs if arguments.max_epochs == "auto" else int(arguments.max_epochs)
    mixture = ImbalancedGaussianClusters(dimension=6, n_components=8, seed=11)  # the fronts suite's case
    rows = [row for n in arguments.rows for seed in arguments.seeds
            for row in rare_mode_rows(mixture, n, seed, max_epochs)]  # fmt: skip
    header = (f"Command: `{command_line('benchmarks.rare_modes', argv)}`  \nHardware: {hardware()}  \n"
              "NVFDensity(n_latent=8), defaults otherwise; 20,000 fresh rows per fit. Clusters rarest first; "
              "'rows kept together': share of the cluster's fresh rows whose most probable state is the state "
              "holding most of them.")  # fmt: skip
    publish("rare_modes", header, markdown_table(rows, COLUMNS), write=not arguments.no_write)


if __name__ == "__main__":
    main()
