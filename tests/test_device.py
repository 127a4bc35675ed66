"""Device resolution, with CUDA mocked where the machine has none."""

import multiprocessing

import pytest
import torch

from nvf_sklearn._device import resolve_device


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def test_auto_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_in_the_main_process_takes_the_default_gpu(four_gpus, monkeypatch):
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: None)
    assert resolve_device("auto") == torch.device("cuda")


def test_auto_in_worker_processes_spreads_over_gpus(four_gpus, monkeypatch):
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    chosen = set()
    for pid in (100, 101, 102, 103):
        monkeypatch.setattr("os.getpid", lambda pid=pid: pid)
        chosen.add(resolve_device("auto"))
    assert chosen == {torch.device("cuda", i) for i in range(4)}


def test_torchrun_local_rank_names_the_gpu(four_gpus, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == torch.device("cuda", 2)


def test_too_many_cuda_processes_is_a_clear_error(four_gpus):
    with pytest.raises(ValueError, match="n_devices=8"):
        resolve_device("cuda", n_devices=8)
