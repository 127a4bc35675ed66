"""Where training runs: one process, processes it spawns, or the replicas of a ``torchrun`` job.

:func:`fit_model` is the one entry point. With ``n_processes > 1`` it spawns
that many processes (gloo on CPU, NCCL with one GPU per process), trains, and
loads the best state back into the caller's model; inside an initialised
process group (``torchrun``) this process trains as one replica; otherwise it
trains alone.

Data parallelism is a :class:`~.training.Strategy`: every process holds the
full data and trains on every ``world_size``-th row of each epoch's
permutation (one shared seed, so the shards never overlap), and the gradients
are averaged across processes inside the step, so the replicas stay identical
and the global batch is ``world_size * batch_size`` rows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

from .base import DensityModel
from .training import CheckReport, Strategy, TrainingConfig, TrainingData, TrainingResult, train


def in_process_group() -> bool:
    return dist.is_available() and dist.is_initialized()


class DataParallel(Strategy):
    """This process's share of a data-parallel fit inside an initialised process group."""

    can_compile = False  # collectives stay outside a captured graph

    def __init__(self) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def shard(self, order: Tensor) -> Tensor:
        # Equal shard sizes keep every process at the same number of steps.
        usable = order.shape[0] - order.shape[0] % self.world_size
        return order[self.rank : usable : self.world_size]

    def reduce_gradients(self, gradient: Tensor) -> Tensor:
        """The mean of the flat gradient over the processes, in one collective."""
        dist.all_reduce(gradient)
        return gradient / self.world_size

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        dist.all_reduce(tensor)
        return tensor

    def agree(self, values: list[float]) -> list[float]:
        # On the collectives' device (NCCL only moves CUDA tensors).
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        shared = torch.tensor(values, dtype=torch.float64, device=device)
        dist.broadcast(shared, src=0)
        return shared.tolist()


def fit_model(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    seed: int,
    n_processes: int = 1,
    on_check: Callable[[CheckReport], None] | None = None,
) -> TrainingResult:
    """Train ``model`` in place where the environment says: spawned, as a replica, or alone."""
    if n_processes > 1:
        return _spawn(model, data, config, seed, n_processes, on_check)
    generator = torch.Generator(device=data.x.device).manual_seed(seed)
    if in_process_group():
        if dist.get_rank() != 0:
            on_check = None
        result = train(model, data, config, generator, DataParallel(), on_check)
        # No replica leaves (and closes its connections) while another still waits on a collective.
        dist.barrier()
        return result
    return train(model, data, config, generator, Strategy(), on_check)


def _worker(
    rank: int,
    world_size: int,
    folder: str,
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    seed: int,
    device_type: str,
    on_check: Callable[[CheckReport], None] | None,
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
        model.to(device)
        data = TrainingData(*(t.to(device) if t is not None else None for t in data.__dict__.values()))
        result = fit_model(model, data, config, seed, on_check=on_check)
        if rank == 0:
            state = {name: value.cpu() for name, value in model.state_dict().items()}
            torch.save((state, result), Path(folder, "result.pt"))
    finally:
        dist.destroy_process_group()


def _spawn(
    model: DensityModel,
    data: TrainingData,
    config: TrainingConfig,
    seed: int,
    world_size: int,
    on_check: Callable[[CheckReport], None] | None,
) -> TrainingResult:
    device = data.x.device
    cpu_data = TrainingData(*(t.cpu() if t is not None else None for t in data.__dict__.values()))
    with tempfile.TemporaryDirectory() as folder:
        torch.multiprocessing.spawn(
            _worker,
            args=(world_size, folder, model.cpu(), cpu_data, config, seed, device.type, on_check),
            nprocs=world_size,
            join=True,
        )
        state, result = torch.load(Path(folder, "result.pt"), weights_only=False)
    model.load_state_dict(state)
    model.to(device).eval()
    return result
