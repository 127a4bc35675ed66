"""Device and dtype resolution for the estimators."""

from __future__ import annotations

import multiprocessing
import os

import torch


def resolve_device(device: str | torch.device, n_devices: int = 1) -> torch.device:
    """Turn the ``device`` parameter into a usable ``torch.device``.

    ``"auto"`` picks CUDA when it is present, else the CPU; in a worker
    process (``GridSearchCV(n_jobs=N)``) on a machine with several GPUs it
    picks one by process id, so parallel fits spread over the devices. Under
    ``torchrun`` a CUDA device without an index becomes this process's
    ``LOCAL_RANK`` GPU. A CUDA device (or count) that this machine lacks is
    an error that says so, not a crash deep in torch.
    """
    if isinstance(device, str) and device == "auto":
        device = _automatic_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a valid device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        if n_devices > torch.cuda.device_count():
            raise ValueError(
                f"n_devices={n_devices} CUDA processes were requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        if resolved.index is None and "LOCAL_RANK" in os.environ:
            resolved = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda[:N]'.")
    return resolved


def _automatic_device() -> str:
    if not torch.cuda.is_available():
        return "cpu"
    n_gpus = torch.cuda.device_count()
    in_worker = multiprocessing.parent_process() is not None and "LOCAL_RANK" not in os.environ
    return f"cuda:{os.getpid() % n_gpus}" if in_worker and n_gpus > 1 else "cuda"


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"`` or ``"float64"`` as a torch dtype."""
    return {"float32": torch.float32, "float64": torch.float64}[name]
