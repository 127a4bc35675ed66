"""Data-parallel training over several processes with torch.distributed.

Two ways in:

- :func:`train_data_parallel` spawns ``world_size`` processes itself (gloo on
  CPU, NCCL with one GPU per process), trains, and loads the best state back
  into the caller's module;
- :func:`train_replica` is what each process runs; under ``torchrun`` (a
  process group already initialised) the estimator calls it directly.

Every process holds the full data and trains on every ``world_size``-th row of
each epoch's permutation (one shared seed, so the shards never overlap);
``DistributedDataParallel`` averages the gradients, so the replicas stay
identical and the global batch is ``world_size * batch_size`` rows.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .training import Replica, TrainingConfig, TrainingResult, train


class TrainingObjective(nn.Module):
    """A density model's training loss exposed as ``forward``, so DDP can wrap it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, generator: torch.Generator, progress: float) -> Tensor:
        return self.model.training_loss(x, generator, progress)


def train_replica(
    module: nn.Module,
    x_train: Tensor,
    w_train: Tensor,
    x_val: Tensor | None,
    w_val: Tensor | None,
    config: TrainingConfig,
    seed: int,
) -> TrainingResult:
    """Train this process's replica inside an initialised process group."""
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = x_train.device
    device_ids = [device.index] if device.type == "cuda" else None
    objective = DistributedDataParallel(TrainingObjective(module), device_ids=device_ids)
    generator = torch.Generator(device=device).manual_seed(seed)
    if rank != 0:
        config = TrainingConfig(**{**config.__dict__, "verbose": 0})
    replica = Replica(rank=rank, world_size=world_size, objective=objective)
    return train(module, x_train, w_train, x_val, w_val, config, generator, replica=replica)


def _worker(
    rank: int,
    world_size: int,
    folder: str,
    module: nn.Module,
    tensors: tuple[Tensor | None, ...],
    config: TrainingConfig,
    seed: int,
    device_type: str,
) -> None:
    backend = "nccl" if device_type == "cuda" else "gloo"
    rendezvous = Path(folder, "rendezvous").as_uri()
    dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=world_size)
    try:
        if device_type == "cuda":
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
        module.to(device)
        x_train, w_train, x_val, w_val = (t.to(device) if t is not None else None for t in tensors)
        result = train_replica(module, x_train, w_train, x_val, w_val, config, seed)
        if rank == 0:
            state = {name: value.cpu() for name, value in module.state_dict().items()}
            torch.save((state, result), Path(folder, "result.pt"))
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    module: nn.Module,
    x_train: Tensor,
    w_train: Tensor,
    x_val: Tensor | None,
    w_val: Tensor | None,
    config: TrainingConfig,
    seed: int,
    world_size: int,
) -> TrainingResult:
    """Spawn ``world_size`` processes, train data-parallel, load the best state into ``module``."""
    device = next(module.parameters()).device
    tensors = tuple(t.cpu() if t is not None else None for t in (x_train, w_train, x_val, w_val))
    with tempfile.TemporaryDirectory() as folder:
        torch.multiprocessing.spawn(
            _worker,
            args=(world_size, folder, module.cpu(), tensors, config, seed, device.type),
            nprocs=world_size,
            join=True,
        )
        state, result = torch.load(Path(folder, "result.pt"), weights_only=False)
    module.load_state_dict(state)
    module.to(device).eval()
    return result
