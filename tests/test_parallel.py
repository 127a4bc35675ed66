"""Parallel model selection: worker processes give exactly the serial results."""

import numpy as np
import pytest
from joblib import Parallel, delayed
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from nvf_sklearn import NVFDensity

pytestmark = pytest.mark.slow


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_grid_search_with_two_jobs_matches_one_job():
    X, _ = make_blobs(600, centers=3, random_state=0)
    estimator = NVFDensity(
        n_layers=1, hidden_size=8, max_epochs=2, random_state=0, device="cpu"
    )
    grid = {"n_latent": [1, 3]}
    serial = GridSearchCV(estimator, grid, cv=2, n_jobs=1).fit(X)
    parallel = GridSearchCV(estimator, grid, cv=2, n_jobs=2).fit(X)
    np.testing.assert_array_equal(serial.cv_results_["mean_test_score"], parallel.cv_results_["mean_test_score"])
    assert serial.best_params_ == parallel.best_params_


def test_workers_do_not_oversubscribe_threads():
    """joblib's process workers cap torch's intra-op threads at cores // n_jobs."""
    import os

    threads = Parallel(n_jobs=2)(delayed(_torch_threads)() for _ in range(2))
    assert all(t <= max(1, (os.cpu_count() or 1) // 2) for t in threads)
