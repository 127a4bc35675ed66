"""zuko's coupling neural spline flow as a peer baseline, with its own training loop.

``zuko.flows.NSF`` with ``passes=2`` (coupling), NFDensity's depth, bins and
hidden layers, and the hidden width whose parameter count is closest to
NFDensity's on the same number of features (read from a fitted NFDensity's
public ``n_parameters_``). It trains on ``X_fit`` standardised by
``StandardScaler`` with a plain Adam loop (NFDensity's learning rate, batch
size, gradient clipping and a cosine decay) and keeps the epoch that scores
best on ``X_validation``, the rows every other model selects on; the
standardisation's log-Jacobian is added back, so figures are in raw units.
Skipped, with a note, when zuko is not importable (``pip install -e ".[peers]"``).
"""

from __future__ import annotations

import copy
import functools
import math
import warnings

import numpy as np
import torch

from nvf_sklearn import NFDensity

from .common import Split
from .models import Budget, Fitted, standardizer

LEARNING_RATE, BATCH_SIZE, GRADIENT_CLIP, FINAL_LEARNING_RATE = 1e-3, 256, 5.0, 1e-5
WIDTHS = range(8, 257, 4)
SCORING_ROWS = 8192
MISSING_NOTE = "zuko is not installed: its NSF row is skipped (`pip install -e \".[peers]\"`)."


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


def matched_nsf(n_features: int, seed: int) -> tuple[torch.nn.Module, int]:
    """The NSF whose parameter count is closest to NFDensity's, initialised from ``seed``, and its width."""
    target = nf_parameter_count(n_features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        width = min(WIDTHS, key=lambda w: abs(n_parameters(nsf(n_features, w)) - target))
        torch.manual_seed(seed)
        return nsf(n_features, width), width


@torch.no_grad()
def log_prob(flow: torch.nn.Module, Z: torch.Tensor) -> torch.Tensor:
    flow.eval()
    return torch.cat([flow().log_prob(Z[i : i + SCORING_ROWS]) for i in range(0, len(Z), SCORING_ROWS)])


def train(flow, Z_fit, Z_validation, budget: Budget, seed: int) -> int:
    """Adam, cosine decay, gradient clipping; keeps the state best on ``Z_validation``. Returns the epochs run."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, max(budget.max_epochs - 1, 1), eta_min=FINAL_LEARNING_RATE
    )
    generator = torch.Generator(device=Z_fit.device).manual_seed(seed)
    best, best_state, waited = log_prob(flow, Z_validation).mean().item(), copy.deepcopy(flow.state_dict()), 0
    epoch = 0
    for epoch in range(1, budget.max_epochs + 1):
        flow.train()
        order = torch.randperm(len(Z_fit), generator=generator, device=Z_fit.device)
        for start in range(0, len(Z_fit), BATCH_SIZE):
            loss = -flow().log_prob(Z_fit[order[start : start + BATCH_SIZE]]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), GRADIENT_CLIP)
            optimizer.step()
        schedule.step()
        current = log_prob(flow, Z_validation).mean().item()
        if math.isfinite(current) and current > best:
            best, best_state, waited = current, copy.deepcopy(flow.state_dict()), 0
        else:
            waited += 1
            if waited >= budget.patience:
                break
    flow.load_state_dict(best_state)
    flow.eval()
    return epoch


def fit_zuko(split: Split, budget: Budget) -> Fitted:
    """zuko's width-matched coupling NSF, trained with early stopping on the split's validation rows."""
    device = torch.device(budget.device)
    scaler, log_det = standardizer(split.X_fit)

    def standardised(X):
        return torch.as_tensor(scaler.transform(X), dtype=torch.float32, device=device)

    flow, width = matched_nsf(split.X_fit.shape[1], split.seed)
    flow.to(device)
    epochs = train(flow, standardised(split.X_fit), standardised(split.X_validation), budget, split.seed)

    @torch.no_grad()
    def sample(n):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(split.seed)
            Z = flow().sample((n,))
        return scaler.inverse_transform(Z.cpu().numpy().astype(np.float64))

    return Fitted(
        lambda X: log_prob(flow, standardised(X)).cpu().numpy().astype(np.float64) + log_det,
        sample,
        f"zuko NSF (coupling, width {width})",
        f"{n_parameters(flow):,}",
        str(epochs),
        on_device=True,
    )
