"""What a fit must survive: a gross outlier in the training rows, a training run that only makes things worse."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from nvf_sklearn import NFDensity, NVFDensity

from .conftest import FAST

SETTINGS = {**FAST, "max_epochs": 10, "batch_size": 128}


@pytest.mark.parametrize("estimator", [NVFDensity(3, **SETTINGS), NFDensity(**SETTINGS)], ids=["NVF", "NF"])
@pytest.mark.parametrize("row", [0, 700])
def test_one_extreme_value_barely_moves_the_clean_rows_scores(estimator, row):
    """One value of 1e9 among 1,500 rows: the standardisation's moments and the warm start leave it out."""
    X, _ = make_blobs(1500, n_features=3, centers=3, random_state=0)
    polluted = X.copy()
    polluted[row, 1] = 1e9
    clean_rows = np.delete(X, row, axis=0)
    clean = estimator.fit(X).score_samples(clean_rows).mean()
    with_outlier = estimator.fit(polluted)
    assert abs(with_outlier.score_samples(clean_rows).mean() - clean) < 0.1
    assert with_outlier.preprocessor_.n_excluded_.tolist() == [0, 1, 0]
    assert np.isfinite(with_outlier.score_samples(polluted[row : row + 1])).all()
    if isinstance(with_outlier, NVFDensity):  # the outlier does not give its state heavy tails at the start
        module = with_outlier.module_
        assert module.flow.base.degrees_of_freedom(module.states).min().item() > 10


def test_a_fit_never_ends_worse_on_validation_than_its_warm_start():
    """Data that are the start's own model family, and a learning rate that only hurts: the start is kept."""
    X, _ = make_blobs(1500, n_features=2, centers=3, random_state=1)
    fitted = NVFDensity(3, **{**SETTINGS, "learning_rate": 0.3, "weight_averaging": None}).fit(X)
    assert fitted.start_validation_score_ is not None
    assert max(fitted.validation_scores_) < fitted.start_validation_score_
    assert fitted.best_validation_score_ == fitted.start_validation_score_ and fitted.best_step_ == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_best_validation_score_is_at_least_the_starts(seed):
    X, _ = make_blobs(800, n_features=2, centers=4, cluster_std=[0.3, 1.0, 2.0, 0.5], random_state=seed)
    fitted = NVFDensity(4, **{**SETTINGS, "random_state": seed}).fit(X)
    assert fitted.best_validation_score_ >= fitted.start_validation_score_
    assert fitted.best_validation_score_ == pytest.approx(max([fitted.start_validation_score_, *fitted.validation_scores_]))
