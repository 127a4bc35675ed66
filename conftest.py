"""Doctests share a few small fitted models instead of refitting in every method's example.

Method docstrings show the fitting line for readers (marked ``+SKIP`` where it
would repeat the class example) and use the model fitted here once per session.
"""

import functools

import pytest
from _pytest.doctest import DoctestItem


@functools.cache
def _shared_models() -> dict:
    from sklearn.datasets import load_digits, make_blobs

    from nvf_sklearn import NFImageDensity, NVFDensity, NVFImageDensity

    X, _ = make_blobs(300, centers=2, random_state=0)
    digits = load_digits().data[:200]
    return {
        "X": X,
        "est": NVFDensity(2, n_layers=1, hidden_size=8, max_epochs=2, random_state=0).fit(X),
        "digits": digits,
        "flow": NFImageDensity(n_levels=17, hidden_channels=4, max_epochs=1, random_state=0).fit(digits),
        "codes": NVFImageDensity(
            4, n_levels=17, hidden_channels=4, top_m=4, max_epochs=1, random_state=0
        ).fit(digits),
    }


@pytest.fixture(autouse=True)
def _doctest_models(request, doctest_namespace):
    if isinstance(request.node, DoctestItem):
        doctest_namespace.update(_shared_models())
