"""zuko's coupling neural spline flow as a peer baseline, trained by our own training loop.

``zuko.flows.NSF`` with ``passes=2`` (coupling), NFDensity's depth, bins and
hidden layers, and the hidden width whose parameter count is closest to
NFDensity's on the same number of features (read from a fitted NFDensity's
public ``n_parameters_``). It is wrapped as an engine density model
(:class:`ZukoNSF`) and trained by the engine's ``fit_model``: the very step,
schedule, early stopping and device handling NFDensity uses, on ``X_fit``
standardised by ``StandardScaler``, selecting on ``X_validation`` (the rows
every other model selects on). The standardisation's log-Jacobian is added
back, so figures are in raw units. Skipped, with a note, when zuko is not
importable (``pip install -e ".[peers]"``).
"""

from __future__ import annotations

import functools
import types
import warnings

import numpy as np
import torch

from nvf_sklearn import NFDensity
from nvf_sklearn._engine import DensityModel, TrainingConfig, TrainingData, fit_model

from .common import Split
from .models import Budget, Fitted, standardizer

WIDTHS = range(8, 257, 4)
SCORING_ROWS = 8192
MISSING_NOTE = "zuko is not installed: its NSF row is skipped (`pip install -e \".[peers]\"`)."


class ZukoNSF(DensityModel):
    """A zuko flow in the engine's density-model protocol (one state), so it trains through our loop."""

    def __init__(self, flow: torch.nn.Module, n_features: int) -> None:
        super().__init__()
        self.flow = flow
        self.n_features = n_features

    def log_joint(self, x):
        return self.flow().log_prob(x).unsqueeze(-1)

    def training_loss(self, x, inputs, progress):
        return -self.flow().log_prob(x)

    def sample(self, n, generator):
        # zuko samples from torch's global generator: draw from a copy seeded from ours.
        with torch.random.fork_rng(devices=[x for x in [self.device] if x.type == "cuda"]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator, device=generator.device)))
            x = self.flow().sample((n,))
        return x, torch.zeros(n, dtype=torch.long, device=x.device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def available() -> bool:
    try:
        import zuko  # noqa: F401
    except ImportError:
        return False
    return True


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@functools.lru_cache
def nf_parameter_count(n_features: int) -> int:
    """NFDensity's ``n_parameters_`` with its default architecture on ``n_features`` columns (a one-epoch fit)."""
    X = np.random.default_rng(0).normal(size=(64, n_features))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NFDensity(max_epochs=1, validation_fraction=0.0, device="cpu", random_state=0).fit(X).n_parameters_


def nsf(n_features: int, width: int) -> torch.nn.Module:
    """zuko's coupling NSF with NFDensity's default depth, bins and hidden layers, of hidden width ``width``."""
    import zuko

    defaults = NFDensity().get_params()
    return zuko.flows.NSF(
        n_features,
        transforms=defaults["n_layers"],
        bins=defaults["n_bins"],
        hidden_features=(width,) * defaults["n_hidden_layers"],
        passes=2,
    )


def matched_nsf(n_features: int, seed: int) -> tuple[ZukoNSF, int]:
    """The NSF whose parameter count is closest to NFDensity's, initialised from ``seed``, and its width."""
    target = nf_parameter_count(n_features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        width = min(WIDTHS, key=lambda w: abs(n_parameters(nsf(n_features, w)) - target))
        torch.manual_seed(seed)
        return ZukoNSF(nsf(n_features, width), n_features), width


def training_config(budget: Budget, data: TrainingData) -> TrainingConfig:
    """The loop settings NFDensity's defaults resolve to for these rows (batch, rate, steps, checks), with the
    benchmark's epoch budget and patience."""
    estimator = NFDensity(max_epochs=budget.max_epochs, patience=budget.patience, device=budget.device)
    # A one-state flow: one pass per row in training and in validation, as NFDensity's own model.
    model = ZukoNSF(torch.nn.Identity(), data.x.shape[1])
    resolved = estimator._resolve_budget(model, data)
    return estimator._training_config(resolved, data.x.device)


@torch.no_grad()
def log_prob(model: ZukoNSF, Z: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.log_joint(Z[i : i + SCORING_ROWS])[:, 0] for i in range(0, len(Z), SCORING_ROWS)])


def _train(split: Split, budget: Budget):
    """zuko's width-matched NSF trained on the split: (model, standardise, log-Jacobian, width, training result)."""
    device = torch.device(budget.device)
    scaler, log_det = standardizer(split.X_fit)

    def standardised(X):
        return torch.as_tensor(scaler.transform(X), dtype=torch.float32, device=device)

    model, width = matched_nsf(split.X_fit.shape[1], split.seed)
    model.to(device)
    n_fit, n_validation = len(split.X_fit), len(split.X_validation)
    data = TrainingData(standardised(split.X_fit), torch.ones(n_fit, device=device),
                        standardised(split.X_validation), torch.ones(n_validation, device=device))  # fmt: skip
    result = fit_model(model, data, training_config(budget, data), split.seed)
    return model, scaler, standardised, log_det, width, result


def fit_zuko(split: Split, budget: Budget) -> Fitted:
    """zuko's width-matched coupling NSF, trained with early stopping on the split's validation rows."""
    model, scaler, standardised, log_det, width, result = _train(split, budget)

    def sample(n):
        generator = torch.Generator(device=model.device).manual_seed(split.seed)
        with torch.no_grad():
            Z = model.sample(n, generator)[0]
        return scaler.inverse_transform(Z.cpu().numpy().astype(np.float64))

    return Fitted(
        lambda X: log_prob(model, standardised(X)).cpu().numpy().astype(np.float64) + log_det,
        sample,
        f"zuko NSF (coupling, width {width})",
        f"{n_parameters(model):,}",
        str(result.n_steps),
        on_device=True,
    )


def fit_zuko_estimator(X: np.ndarray, seed: int, device: str = "cpu") -> types.SimpleNamespace:
    """zuko's NSF on rows ``X`` with NFDensity's default budget, selecting on 10 % of them.

    What the time-to-quality table reads, as on an estimator: ``score_samples``
    (nats, raw units), ``validation_scores_`` and ``n_steps_``.
    """
    split = Split.carve(X, 0.1, seed)
    model, _, standardised, log_det, _, result = _train(split, Budget("auto", NFDensity().patience, device))
    return types.SimpleNamespace(
        score_samples=lambda X: log_prob(model, standardised(X)).cpu().numpy().astype(np.float64) + log_det,
        validation_scores_=[log_det - loss for loss in result.validation_loss],
        n_steps_=result.n_steps,
    )
