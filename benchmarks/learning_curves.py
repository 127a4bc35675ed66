"""Learning curves of NF vs NVF from the records of ``benchmarks.multimodal --jsonl``.

Plots, for one case and data seed, each flow's mean validation
log-likelihood per epoch minus the true density's mean log-density on the test
rows of the same run (so 0 is the truth; the validation rows are fresh draws
from the same density, so this is the validation gap to the truth up to
sampling noise), with the training objective dashed, and marks the kept epoch.

    python -m benchmarks.multimodal --cases "skewed clusters d=8 K=12" --models nf nvf --jsonl runs.jsonl
    python -m benchmarks.learning_curves runs.jsonl --case "skewed clusters d=8 K=12" --out docs/images/learning_curves.png
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", help="a JSON-lines file written by benchmarks.multimodal --jsonl")
    parser.add_argument("--case", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=None, help="model names to plot (default: every flow)")
    parser.add_argument("--out", default="learning_curves.png")
    arguments = parser.parse_args(argv)
    with open(arguments.records) as stream:
        records = [json.loads(line) for line in stream]
    records = [
        r for r in records
        if r["data"] == arguments.case and r["seed"] == arguments.seed and "validation_curve" in r
        and (arguments.models is None or r["model"] in arguments.models)
    ]  # fmt: skip
    if not records:
        raise SystemExit(f"no flow records for {arguments.case!r}, seed {arguments.seed}")
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for record, colour in zip(records, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        truth = record["test"] + record["gap"]
        epochs = range(1, len(record["validation_curve"]) + 1)
        label = f"{record['model']} (test gap {record['gap']:.3f})"
        ax.plot(epochs, [truth - v for v in record["validation_curve"]], color=colour, label=label)
        ax.plot(epochs, [truth + loss for loss in record["loss_curve"]], color=colour, linestyle="--", alpha=0.6)
        if record["best_epoch"]:
            ax.axvline(record["best_epoch"], color=colour, linestyle=":", alpha=0.8)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gap to the true density (nats per sample)")
    ax.set_ylim(-0.6, 2.0)
    ax.set_title(f"{arguments.case}, {records[0]['n_train']} training rows, data seed {arguments.seed}\n"
                 "solid: validation; dashed: training objective; dotted: the kept epoch", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(arguments.out, dpi=110)
    print(f"saved {arguments.out}")


if __name__ == "__main__":
    main()
