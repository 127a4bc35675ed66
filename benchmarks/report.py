"""The suites' reports: records aggregated over seeds, and the Markdown header and table of a run."""

from __future__ import annotations

import numpy as np

from .common import hardware, markdown_table, mean_and_standard_error
from .images_digits import DigitsResult

FLOW_PROTOCOL = (
    "Test mean log-likelihood in nats per sample, raw units of the data (higher is better); "
    "± is the standard error {spread}. Every model fits the same rows and chooses its hyper-parameters "
    "(K, bandwidth, early-stopping epoch) on the same validation rows carved from the training rows (our "
    "estimators get them as `validation_data`); the test set is scored once. Fit seconds include every candidate "
    "of the selection grid; sampling is timed on {n_sample} rows; 'epochs' are those run (one figure per seed); "
    "parameter counts are the density's trainable parameters (NVFDensity: its encoder, an inference aid, excluded), "
    "the free parameters for GaussianMixture, and the stored training points for KernelDensity."
)


def spread(n_seeds: int) -> str:
    return f"over {n_seeds} seeds" if n_seeds > 1 else "over test points, one seed"


def aggregate(results: list[dict]) -> list[dict]:
    """One table row per (data, model), in order of appearance, plus a 'true density' row where it is known.

    Means over seeds; the standard error over seeds, or over test points for one seed.
    """
    rows, shown_truth = [], set()
    for data, model in dict.fromkeys((r["data"], r["model"]) for r in results):
        group = [r for r in results if (r["data"], r["model"]) == (data, model)]
        means = np.array([r["mean"] for r in group])
        has_truth = group[0]["truth"] is not None
        if has_truth and data not in shown_truth:
            shown_truth.add(data)
            truth = np.mean([r["truth"] for r in group])
            rows.append({"data": data, "model": "true density", "test log-lik (nats)": f"{truth:.3f}"})
        mean, standard_error = mean_and_standard_error(means) if len(group) > 1 else (means[0], group[0]["point_se"])
        sample_rates = [r["sample_rate"] for r in group if r["sample_rate"] is not None]
        rows.append(
            {
                "data": data,
                "model": "; ".join(dict.fromkeys(r["label"] for r in group)),  # in seed order
                "test log-lik (nats)": f"{mean:.3f}",
                "± s.e.": f"{standard_error:.3f}",
                "gap to truth": f"{np.mean([r['truth'] - r['mean'] for r in group]):.3f}" if has_truth else "",
                "fit s": f"{np.mean([r['fit_seconds'] for r in group]):.1f}",
                "epochs": "/".join(r["epochs"] for r in group if r["epochs"]),
                "score rows/s": f"{np.mean([r['score_rate'] for r in group]):,.0f}",
                "sample rows/s": f"{np.mean(sample_rates):,.0f}" if sample_rates else "",
                "parameters": "/".join(sorted({r["parameters"] for r in group})),
                "hardware": group[0]["hardware"],
            }
        )
    return rows


def flow_table(results: list[dict], n_seeds: int) -> str:
    """The Markdown table of the toy or tabular suite, its s.e. column named by what it spreads over."""
    rows = aggregate(results)
    columns = list(rows[-1])
    named = f"± s.e. ({spread(n_seeds)})"
    columns[columns.index("± s.e.")] = named
    for row in rows:
        if "± s.e." in row:
            row[named] = row.pop("± s.e.")
    return markdown_table(rows, columns)


def flow_header(command: str, arguments, notes: list[str], minutes: float) -> str:
    seeds = arguments.seeds
    return "\n".join(
        [
            f"Command: `{command}`  ",
            f"Hardware: flows on {hardware(arguments.device)}; GaussianMixture and KernelDensity on the CPU  ",
            f"Seeds: {' '.join(map(str, seeds))}; flows: max_epochs={arguments.max_epochs}, "
            f"patience={arguments.patience}, NVFDensity K grid {'/'.join(map(str, arguments.ks))}; "
            f"whole run {minutes:.1f} min.  ",
            "",
            FLOW_PROTOCOL.format(spread=spread(len(seeds)), n_sample=arguments.n_sample),
            "",
            *[f"- {note}" for note in notes],
        ]
    )


def image_report(command: str, results: list[DigitsResult], seeds: list[int], minutes: float) -> tuple[str, str]:
    """Header and the per-seed tables of the image suite."""
    header = "\n".join(
        [
            f"Command: `{command}` (calls `benchmarks.images_digits.digits_rows` for each seed)  ",
            f"Hardware: {hardware('cpu')}  ",
            f"Seeds: {' '.join(map(str, seeds))} (one table per seed); whole run {minutes:.1f} min.",
        ]
    )
    return header, "\n\n".join(result.markdown() for result in results)
