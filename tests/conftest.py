"""Shared fixtures: small, fast fits reused across test modules."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_moons
from threadpoolctl import threadpool_limits

from nvf_sklearn import NFDensity

#: Settings that fit in well under a second on a laptop CPU.
FAST = dict(n_layers=2, hidden_size=16, max_epochs=3, batch_size=64, random_state=0, device="cpu")
#: Image settings that fit 300 digits in about a second.
TINY_IMAGE = dict(
    n_levels=17, couplings_per_scale=2, hidden_channels=8, max_epochs=2, device="cpu", random_state=0,
    # float64: float32 conv kernels block the batch differently by its size, so a
    # row's float32 score can move by ~1e-7 relative between a subset and the full set.
    dtype="float64",
)  # fmt: skip


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The tests' arrays are tiny: torch's and BLAS's threads only add synchronisation (ms per op on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def moons():
    X, _ = make_moons(400, noise=0.1, random_state=0)
    return X


@pytest.fixture(scope="session")
def fitted_nf(moons):
    return NFDensity(**FAST).fit(moons)


@pytest.fixture(scope="session")
def digits():
    return load_digits().data[:300]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
