"""On a CUDA GPU (skipped without one): the captured step trains, and GPU-fitted models score alike on the CPU."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nvf_sklearn import NFDensity, NFImageDensity, NVFDensity, NVFImageDensity

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

ESTIMATORS = {
    "NF": lambda: NFDensity(max_epochs=3, random_state=0, device="cuda"),
    "NVF": lambda: NVFDensity(4, max_epochs=3, random_state=0, device="cuda"),
    "NVF-elbo": lambda: NVFDensity(4, objective="elbo", max_epochs=3, random_state=0, device="cuda"),
    "NFImage": lambda: NFImageDensity(n_levels=17, max_epochs=2, random_state=0, device="cuda"),
    "NVFImage": lambda: NVFImageDensity(8, n_levels=17, max_epochs=2, random_state=0, device="cuda"),
}


def data_for(name: str) -> np.ndarray:
    if "Image" in name:
        return load_digits().data[:600]
    rng = np.random.default_rng(0)
    return rng.normal(size=(2000, 6)) + 5.0 * rng.integers(3, size=(2000, 1))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_cuda_fit_is_captured_and_its_pickle_scores_the_same_on_a_cpu(name, monkeypatch):
    X = data_for(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = ESTIMATORS[name]().fit(X)
    assert estimator.device_.startswith("cuda")
    assert not [w for w in caught if "compil" in str(w.message).lower()], "the training step fell back to eager"
    on_gpu = estimator.score_samples(X[:300])
    assert np.all(np.isfinite(on_gpu))

    blob = pickle.dumps(estimator)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # unpickle as on a machine without a GPU
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        on_cpu = pickle.loads(blob)
    assert on_cpu.device_ == "cpu"
    np.testing.assert_allclose(on_cpu.score_samples(X[:300]), on_gpu, rtol=0, atol=1e-4)
