"""Shared fixtures: small, fast fits reused across test modules."""

import numpy as np
import pytest
from sklearn.datasets import make_moons

from nvf_sklearn import NFDensity

#: Settings that fit in well under a second on a laptop CPU.
FAST = dict(n_layers=2, hidden_size=16, max_epochs=3, batch_size=64, random_state=0, device="cpu")


@pytest.fixture(scope="session")
def moons():
    X, _ = make_moons(400, noise=0.1, random_state=0)
    return X


@pytest.fixture(scope="session")
def fitted_nf(moons):
    return NFDensity(**FAST).fit(moons)
