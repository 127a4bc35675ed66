"""Real tables for the density benchmarks: scikit-learn's bundled tables and MINIBOONE.

Every loader returns a :class:`TabularSplit` in raw units: the rows a model may
fit on (``X_train``; hyper-parameters are chosen on a validation carve from
these rows, never on the test set) and the held-out ``X_test``.

- ``load_wine`` (178 x 13), ``load_breast_cancer`` (569 x 30) and
  ``load_diabetes`` features (442 x 9, raw units via ``scaled=False``; the
  binary ``sex`` column is dropped because a continuous density of a
  two-valued column is unbounded): a fixed train/test split by seed.
- ``load_iris`` is left out on purpose: its four columns are rounded to 0.1 cm
  (22 to 43 distinct values each), so a continuous log-likelihood there mostly
  measures how well a model fits the rounding grid.
- MINIBOONE (d = 43, the MAF preprocessing) from ``shared/data/miniboone``:
  only the 3,284-row validation split and the 3,648-row test split are
  available, so models train on ``val.npy`` and are tested on ``test.npy``.
  That is NOT the literature protocol (which trains on the 29,556-row training
  split); figures are labelled so and are not comparable with published ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MINIBOONE = DATA / "miniboone"
MINIBOONE_LABEL = "MINIBOONE (not the literature protocol: trained on the 3,284-row validation split)"
MINIBOONE_PUBLISHED = (
    "Published MINIBOONE test log-likelihoods (full 29,556-row train split, not comparable): "
    "MAF -11.75, NSF (autoregressive) -9.22, NSF (coupling) -9.67, Gaussian -37.24 nats."
)


@dataclass
class TabularSplit:
    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    validation_fraction: float = 0.2
    notes: list[str] = field(default_factory=list)


def _sklearn_split(name, X, seed, test_fraction, notes=()) -> TabularSplit:
    X_train, X_test = train_test_split(np.asarray(X, dtype=np.float64), test_size=test_fraction, random_state=seed)
    return TabularSplit(name, X_train, X_test, notes=list(notes))


def wine(seed: int, test_fraction: float = 0.25) -> TabularSplit:
    return _sklearn_split("wine (13 features)", load_wine().data, seed, test_fraction)


def breast_cancer(seed: int, test_fraction: float = 0.25) -> TabularSplit:
    return _sklearn_split("breast cancer (30 features)", load_breast_cancer().data, seed, test_fraction)


def diabetes(seed: int, test_fraction: float = 0.25) -> TabularSplit:
    bunch = load_diabetes(scaled=False)
    keep = [i for i, name in enumerate(bunch.feature_names) if name != "sex"]
    return _sklearn_split(
        "diabetes (9 features, raw units)",
        bunch.data[:, keep],
        seed,
        test_fraction,
        notes=["diabetes: the binary `sex` column is dropped; the other 9 features are in raw units (scaled=False)."],
    )


def miniboone(seed: int = 0, data: Path = MINIBOONE) -> TabularSplit | None:
    """Train on ``val.npy``, test on ``test.npy``; None when the files are absent.

    The split is fixed (the seed does not change it); models carve 10% of
    ``val.npy`` for validation.
    """
    train, test = data / "val.npy", data / "test.npy"
    if not (train.exists() and test.exists()):
        return None
    return TabularSplit(
        MINIBOONE_LABEL,
        np.load(train).astype(np.float64),
        np.load(test).astype(np.float64),
        validation_fraction=0.1,
        notes=[MINIBOONE_PUBLISHED],
    )


SKLEARN_TABLES = {"wine": wine, "breast_cancer": breast_cancer, "diabetes": diabetes}
