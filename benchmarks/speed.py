"""Throughput of training, scoring and sampling: NFDensity, NVFDensity (K = 1, 8, 32), and a peer NSF.

Every model is timed with the same harness on the same device-resident data:
one training epoch (Adam, the same batch size and gradient clipping; rows per
second), exact scoring in eval mode (rows per second), and sampling (rows per
second). The peer is zuko's coupling NSF (``passes=2``) with its hidden width
chosen to match NFDensity's parameter count; it is skipped when zuko is not
installed (``pip install -e ".[peers]"``). Each figure is the best of
``--repeats`` interleaved runs; the ratio columns divide by NFDensity's figure
from the same run, so they are robust to a noisy shared machine.

    python -m benchmarks.speed                 # CPU
    python -m benchmarks.speed --device cuda   # GPU, when present
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from nvf_sklearn._engine.density import FlowDensity, score_chunk_rows
from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.latent import LatentFlowDensity

from .common import hardware, markdown_table, write_result

FLOW = dict(n_layers=5, hidden_size=64, n_hidden_layers=2, n_bins=8, tail_bound=5.0, lu_linear=True)


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class PeerNSF(torch.nn.Module):
    """zuko's coupling NSF behind the same three calls as our density models."""

    n_states = 1

    def __init__(self, flow) -> None:
        super().__init__()
        self.flow = flow

    def training_loss(self, x, generator, progress):
        return -self.flow().log_prob(x)

    def score(self, x):
        return self.flow().log_prob(x)

    def sample(self, n, generator):
        return self.flow().sample((n,))


def peer_with_matching_size(n_features: int, target: int) -> PeerNSF | None:
    try:
        import zuko
    except ImportError:
        return None
    best = None
    for width in range(8, 257, 4):
        flow = zuko.flows.NSF(n_features, transforms=FLOW["n_layers"], bins=FLOW["n_bins"], hidden_features=(width, width), passes=2)
        gap = abs(n_parameters(flow) - target)
        if best is None or gap < best[0]:
            best = (gap, flow)
    return PeerNSF(best[1])


def ours(n_features: int, n_latent: int | None) -> torch.nn.Module:
    if n_latent is None:
        module = FlowDensity(spline_flow(n_features, **FLOW))
    else:
        flow = spline_flow(n_features, context_size=n_latent, context_affine=True, **FLOW)
        module = LatentFlowDensity(flow, n_latent, objective="exact")
    initialize_parameters(module, torch.Generator().manual_seed(0))
    return module


def score(module, x):
    if isinstance(module, PeerNSF):
        return module.score(x)
    return module.log_joint(x).logsumexp(dim=-1)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_epoch(module, x, batch_size, device) -> float:
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    module.train()
    synchronize(device)
    started = time.perf_counter()
    order = torch.randperm(x.shape[0], generator=generator, device=device)
    for step in range(math.ceil(x.shape[0] / batch_size)):
        index = order[step * batch_size : (step + 1) * batch_size]
        loss = module.training_loss(x[index], generator, 0.5).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        optimizer.step()
    synchronize(device)
    return x.shape[0] / (time.perf_counter() - started)


@torch.no_grad()
def time_scoring(module, x, device) -> float:
    """Rows per second, chunked as the estimators chunk (rows x states per chunk fixed)."""
    chunk = score_chunk_rows(module)
    module.eval()
    synchronize(device)
    started = time.perf_counter()
    for start in range(0, x.shape[0], chunk):
        score(module, x[start : start + chunk])
    synchronize(device)
    return x.shape[0] / (time.perf_counter() - started)


@torch.no_grad()
def time_sampling(module, n, device) -> float:
    module.eval()
    generator = torch.Generator(device=device).manual_seed(0)
    synchronize(device)
    started = time.perf_counter()
    module.sample(n, generator)
    synchronize(device)
    return n / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-features", type=int, default=8)
    parser.add_argument("--n-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.n_rows, arguments.repeats, arguments.ks = 2048, 1, [1, 8]
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    x = torch.randn(arguments.n_rows, arguments.n_features, device=device)

    models = {"NFDensity": ours(arguments.n_features, None)}
    for k in arguments.ks:
        models[f"NVFDensity K={k} (exact)"] = ours(arguments.n_features, k)
    peer = peer_with_matching_size(arguments.n_features, n_parameters(models["NFDensity"]))
    if peer is not None:
        models["zuko NSF (coupling)"] = peer
    for module in models.values():
        module.to(device)

    best = {name: {"train": 0.0, "score": 0.0, "sample": 0.0} for name in models}
    for _ in range(arguments.repeats):
        for name, module in models.items():
            best[name]["train"] = max(best[name]["train"], time_training_epoch(module, x, arguments.batch_size, device))
            best[name]["score"] = max(best[name]["score"], time_scoring(module, x, device))
            best[name]["sample"] = max(best[name]["sample"], time_sampling(module, 8192, device))

    reference = best["NFDensity"]
    rows = []
    for name, figures in best.items():
        rows.append(
            {
                "model": name,
                "parameters": f"{n_parameters(models[name]):,}",
                "train rows/s": f"{figures['train']:,.0f}",
                "score rows/s": f"{figures['score']:,.0f}",
                "sample rows/s": f"{figures['sample']:,.0f}",
                "NF / this, train": f"{reference['train'] / figures['train']:.2f}",
                "NF / this, score": f"{reference['score'] / figures['score']:.2f}",
                "NF / this, sample": f"{reference['sample'] / figures['sample']:.2f}",
            }
        )
    table = markdown_table(rows, list(rows[0]))
    header = (
        f"Command: `python -m benchmarks.speed {' '.join(sys.argv[1:] if argv is None else argv)}`  \n"
        f"Hardware: {hardware(arguments.device)}  \n"
        f"{arguments.n_rows} rows x {arguments.n_features} features, batch {arguments.batch_size}, best of "
        f"{arguments.repeats}. 'NF / this' > 1 means this model is slower than NFDensity by that factor; "
        "for NVFDensity K=k, exact scoring costs about k flow passes per row."
    )
    print(header + "\n\n" + table)
    if not arguments.quick:
        name = "speed_" + device.type
        print(f"\nwritten to {write_result(name, header, table)}")


if __name__ == "__main__":
    main()
