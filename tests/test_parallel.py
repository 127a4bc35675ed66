"""Parallel model selection: worker processes give exactly the serial results."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from nvf_sklearn import NVFDensity

pytestmark = pytest.mark.slow


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

