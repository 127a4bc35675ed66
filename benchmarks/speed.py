"""Throughput of training, scoring and sampling: NFDensity, NVFDensity (K = 1, 8, 32), and zuko's NSF.

Every model is timed in one harness on the same device-resident data: one
training epoch through the engine's own training step (``TrainStep``: forward,
weighted loss, backward, clipping, Adam) and epoch loop, eager and (with
``--compile``, the default on CUDA) captured as one graph; exact scoring in
eval mode, chunked as the estimators chunk; and sampling. zuko's coupling NSF
(``passes=2``, its hidden width chosen to match NFDensity's parameter count,
``benchmarks/zuko_baseline.py``) goes through the very same step; it is
skipped when zuko is not installed.
The NVFDensity models are built as the estimator builds them by default (a
full per-state affine map and per-state splines before the shared couplings);
``NVFDensity K=k, 4 states`` trains each row on 4 of its k states (the
default ``training_states=4``; validation and scoring stay exact), ``(exact)``
on all k. Each figure is the
best of ``--repeats`` interleaved runs (after one warm-up epoch, which also
pays the compilation); the ratio columns divide by NFDensity's eager figure
from the same run.

    python -m benchmarks.speed                       # CPU, eager
    python -m benchmarks.speed --device cuda         # GPU, eager and captured
"""

from __future__ import annotations

import argparse
import time

import torch

from nvf_sklearn._engine import DensityModel, FlowDensity, LatentFlowDensity, initialize_parameters, spline_flow
from nvf_sklearn._engine.schedule import Schedule
from nvf_sklearn._engine.training import Strategy, TrainingConfig, TrainingData, batch_stream, run_period
from nvf_sklearn._engine.step import TrainStep

from . import zuko_baseline
from .common import add_no_write, command_line, hardware, markdown_table, publish

FLOW = dict(n_layers=5, hidden_size=64, n_hidden_layers=2, n_bins=8, tail_bound=5.0, lu_linear=True)


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def peer_with_matching_size(n_features: int) -> DensityModel | None:
    """zuko's coupling NSF with NFDensity's parameter count (``zuko_baseline``), or None without zuko."""
    return zuko_baseline.matched_nsf(n_features, seed=0)[0] if zuko_baseline.available() else None


def ours(n_features: int, n_latent: int | None, training_states: int | None = None) -> DensityModel:
    if n_latent is None:
        model = FlowDensity(spline_flow(n_features, **FLOW))
    else:
        flow = spline_flow(n_features, context_size=n_latent, state_affine="full", state_splines=True, **FLOW)
        model = LatentFlowDensity(flow, n_latent, objective="exact", training_states=training_states)
    initialize_parameters(model, torch.Generator().manual_seed(0))
    return model


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_epoch(step: TrainStep, data: TrainingData, config: TrainingConfig, device) -> float:
    """Training rows per second over one epoch's worth of full batches."""
    generator = torch.Generator(device=device).manual_seed(0)
    n_rows = data.x.shape[0]
    n_steps = max(1, n_rows // config.batch_size)
    stream = batch_stream(n_rows, config.batch_size, generator, Strategy(), device)
    synchronize(device)
    started = time.perf_counter()
    run_period(step, data, stream, Schedule(1e-4, n_steps), 0, n_steps, generator, Strategy())
    synchronize(device)
    return n_steps * config.batch_size / (time.perf_counter() - started)


@torch.no_grad()
def time_scoring(model, x, device) -> float:
    """Rows per second, chunked as the estimators chunk (rows x states per chunk fixed per device)."""
    chunk = model.chunk_rows(device.type)
    model.eval()
    synchronize(device)
    started = time.perf_counter()
    for start in range(0, x.shape[0], chunk):
        model.log_joint(x[start : start + chunk]).logsumexp(dim=-1)
    synchronize(device)
    return x.shape[0] / (time.perf_counter() - started)


@torch.no_grad()
def time_sampling(model, n, device) -> float:
    model.eval()
    generator = torch.Generator(device=device).manual_seed(0)
    synchronize(device)
    started = time.perf_counter()
    model.sample(n, generator)
    synchronize(device)
    return n / (time.perf_counter() - started)


def models_to_time(arguments) -> dict[str, DensityModel]:
    models = {"NFDensity": ours(arguments.n_features, None)}
    for k in arguments.ks:
        models[f"NVFDensity K={k} (exact)"] = ours(arguments.n_features, k)
    for k in arguments.ks:
        if k > 4:
            models[f"NVFDensity K={k}, 4 states"] = ours(arguments.n_features, k, training_states=4)
    peer = peer_with_matching_size(arguments.n_features)
    if peer is not None:
        models["zuko NSF (coupling)"] = peer
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-features", type=int, default=8)
    parser.add_argument("--n-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", choices=["auto", "yes", "no"], default="auto",
                        help="also time the captured step (auto: on CUDA only)")
    parser.add_argument("--quick", action="store_true")
    add_no_write(parser)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.n_rows, arguments.repeats, arguments.ks = 2048, 1, [1, 8]
    device = torch.device(arguments.device)
    captured = arguments.compile == "yes" or (arguments.compile == "auto" and device.type == "cuda")
    x = torch.randn(arguments.n_rows, arguments.n_features, generator=torch.Generator().manual_seed(0)).to(device)
    data = TrainingData(x, torch.ones(arguments.n_rows, device=device))
    config = TrainingConfig(batch_size=arguments.batch_size)

    models = models_to_time(arguments)
    modes = ["eager"] + (["captured"] if captured else [])
    steps = {}
    for name, model in models.items():
        model.to(device)
        model.begin_training(x)
        for mode in modes:
            parameters = [p for p in model.parameters() if p.requires_grad]
            steps[name, mode] = TrainStep(model, parameters, 1e-4, 5.0, compile=mode == "captured")
            time_training_epoch(steps[name, mode], data, config, device)  # warm-up (and compilation)

    best = {name: dict.fromkeys(["eager", "captured", "score", "sample"], 0.0) for name in models}
    for _ in range(arguments.repeats):
        for name, model in models.items():
            for mode in modes:
                best[name][mode] = max(best[name][mode], time_training_epoch(steps[name, mode], data, config, device))
            best[name]["score"] = max(best[name]["score"], time_scoring(model, x, device))
            best[name]["sample"] = max(best[name]["sample"], time_sampling(model, 8192, device))

    reference = best["NFDensity"]
    rows = []
    for name, figures in best.items():
        row = {"model": name, "parameters": f"{n_parameters(models[name]):,}",
               "train rows/s (eager)": f"{figures['eager']:,.0f}"}  # fmt: skip
        if captured:
            failed = steps[name, "captured"].compile_error is not None
            row["train rows/s (captured)"] = "capture failed" if failed else f"{figures['captured']:,.0f}"
        row.update({
            "score rows/s": f"{figures['score']:,.0f}", "sample rows/s": f"{figures['sample']:,.0f}",
            "cost per row vs NF, train": f"{reference['eager'] / figures['eager']:.2f}",
            "vs NF, score": f"{reference['score'] / figures['score']:.2f}",
            "vs NF, sample": f"{reference['sample'] / figures['sample']:.2f}",
        })  # fmt: skip
        rows.append(row)
    header = (
        f"Command: `{command_line('benchmarks.speed', argv)}`  \nHardware: {hardware(arguments.device)}  \n"
        f"{arguments.n_rows} rows x {arguments.n_features} features, batch {arguments.batch_size}, best of "
        f"{arguments.repeats}. 'cost per row vs NF' > 1 means this model is slower than NFDensity (eager) by that "
        "factor; exact training and scoring of NVFDensity K=k cost about k flow passes per row."
    )
    publish("speed_" + device.type, header, markdown_table(rows, list(rows[0])),
            write=not (arguments.no_write or arguments.quick))  # fmt: skip


if __name__ == "__main__":
    main()
