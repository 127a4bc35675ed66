"""Test bits/dim on scikit-learn's digits: NVFImageDensity vs NFImageDensity vs Gaussian mixtures.

Space of every figure: dequantised pixels x = p + u, u ~ U[0, 1), in
pixel-level units (p in {0..16}, the 17 levels of ``load_digits``, 1x8x8: the
true dimensionality); bits/dim = -log q(x) / (64 log 2), the same figure as
(-log q(y) + 64 log 17) / (64 log 2) for y = x / 17 in [0, 1)^64. Lower is
better; a uniform density scores log2(17) = 4.09. Split: a fixed 80/20
train/test split (``--seed``); model selection (early stopping, GMM size) on a
validation set carved from the training part (the estimators get it as
``validation_data``); the test set is scored once, in eval mode, with one fixed
dequantisation draw. One seed per run.

NVFImageDensity's figures are upper bounds on its bits/dim (lower bounds on
log p(x)), from the top-m code sequences per image; they tighten as m grows.
The largest m is the estimator's own ``top_m`` (``score_samples``); smaller m
are read from the same fitted model (its engine model's ``log_prob_bound``).

    OMP_NUM_THREADS=1 python -m benchmarks.images_digits            # a few minutes on CPU
    OMP_NUM_THREADS=1 python -m benchmarks.images_digits --quick    # about a minute
    OMP_NUM_THREADS=1 python -m benchmarks.images_digits --long     # about 10 minutes

``python -m benchmarks.run --suite images`` calls :func:`digits_rows` once per seed.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits

from nvf_sklearn import NFImageDensity, NVFImageDensity

from .common import (
    gaussian_mixture_parameters, logit_space, markdown_table, pixel_bits_per_dim, select_gaussian_mixture, timed,
)

N_LEVELS, SHAPE, D = 17, (1, 8, 8), 64
LOGIT_ALPHA = 0.05
COLUMNS = ["model", "test bits/dim", "figure", "fit seconds", "parameters"]

#: Per budget: training of both estimators (``max_epochs`` bounds each of NVFImageDensity's two stages), the code
#: model, the plain flow's width (``flow_hidden_channels``, wider, to match the code model's size), the top-m
#: bounds reported and the GaussianMixture sizes tried.
SETTINGS = {
    "full": dict(
        max_epochs=30, patience=10, batch_size=128, learning_rate=2e-3, couplings_per_scale=4,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=32, encoder_channels=32, code_prior_layers=2,
        code_prior_width=48, flow_hidden_channels=44, top_m=(1, 16, 64), gmm_components=(1, 2, 5, 10, 20),
    ),
    "long": dict(
        max_epochs=60, patience=15, batch_size=128, learning_rate=2e-3, couplings_per_scale=4,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=32, encoder_channels=32, code_prior_layers=2,
        code_prior_width=48, flow_hidden_channels=44, top_m=(1, 16, 128), gmm_components=(1, 2, 5, 10, 20),
    ),
    "quick": dict(
        max_epochs=6, patience=15, batch_size=128, learning_rate=3e-3, couplings_per_scale=4,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=16, encoder_channels=32, code_prior_layers=2,
        code_prior_width=32, flow_hidden_channels=22, top_m=(1, 8), gmm_components=(1, 5),
    ),
}  # fmt: skip


@dataclass
class DigitsResult:
    """One seed's table: a title, the rows (dicts over ``COLUMNS``), a footnote and context notes."""

    title: str
    rows: list[dict] = field(default_factory=list)
    footnote: str = ""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [self.title, "", markdown_table(self.rows, COLUMNS), "", self.footnote, ""]
        return "\n".join(parts + [f"- {note}" for note in self.notes]).strip()


def load_split(seed: int) -> dict[str, np.ndarray]:
    """Integer levels (n, 64) of a fixed 80/20 split, the first 10% of the training part held out for validation."""
    levels = load_digits().data.astype(np.float64)
    order = np.random.RandomState(seed).permutation(len(levels))
    n_test = int(round(0.2 * len(levels)))
    test, train = order[:n_test], order[n_test:]
    n_val = int(round(0.1 * len(train)))
    return {"fit": levels[train[n_val:]], "val": levels[train[:n_val]], "test": levels[test]}


def dequantized(levels: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """One dequantisation draw ``p + u``, in pixel-level units."""
    return levels + rng.uniform(size=levels.shape)


def gmm_space(x: np.ndarray, alpha: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels scaled to the unit cube (``alpha=None``) or in logit space, and ``log |dspace/dx|`` per row."""
    if alpha is None:
        return x / N_LEVELS, np.full(len(x), -D * math.log(N_LEVELS))
    return logit_space(x, N_LEVELS, alpha)


def gaussian_mixture_row(label, split, x_val, x_test, components, seed, alpha) -> dict:
    """GaussianMixture (full covariance, ``reg_covar=1e-4``) on dequantised pixels, its size chosen on validation.

    Fitted in the unit cube or, with ``alpha``, in logit space; its density is
    brought back to pixel units with the space's log-Jacobian.
    """
    s_fit = gmm_space(dequantized(split["fit"], np.random.RandomState(seed + 1)), alpha)[0]
    (gmm, k), seconds = timed(
        select_gaussian_mixture, s_fit, gmm_space(x_val, alpha)[0], components, seed=seed, reg_covar=1e-4
    )
    s_test, log_jacobian = gmm_space(x_test, alpha)
    bpd = pixel_bits_per_dim(gmm.score_samples(s_test) + log_jacobian, D)
    return row(f"{label}, K={k}", f"{bpd:.3f}", "exact", seconds, gaussian_mixture_parameters(gmm))


def row(model: str, bits: str, figure: str, seconds: float, n_parameters: int) -> dict:
    return dict(zip(COLUMNS, [model, bits, figure, f"{seconds:.1f}", f"{n_parameters:,}"]))


def model_rows(codes: NVFImageDensity, x: np.ndarray) -> torch.Tensor:
    """Pixels ``x`` as the fitted engine model takes them: the estimator's fixed pixel scaling, as a tensor."""
    return torch.as_tensor(codes.preprocessor_.transform(x), dtype=next(codes.module_.parameters()).dtype)


@torch.no_grad()
def bound_log_density(codes: NVFImageDensity, x: np.ndarray, m: int) -> np.ndarray:
    """``log sum_{z in top-m} p(z) p(x | z)`` of pixels ``x``, in pixel units.

    At the estimator's own ``top_m`` this is ``score_samples``; a smaller m
    asks the fitted engine model (``module_``, a ``SequenceLatentFlowDensity``)
    for its ``log_prob_bound`` on the estimator's fixed pixel scaling.
    """
    if m == codes.top_m:
        return codes.score_samples(x)
    y = model_rows(codes, x)
    log_q = torch.cat([codes.module_.log_prob_bound(y[i : i + 64], top_m=m) for i in range(0, len(y), 64)])
    return log_q.numpy().astype(np.float64) + codes.preprocessor_.log_det


@torch.no_grad()
def code_prior_bits(codes: NVFImageDensity, x: np.ndarray) -> float:
    """Bits/dim that the code prior's ``-log p(z*)`` of each image's nearest codes contributes."""
    model = codes.module_
    return -model.prior.log_prob(model.encode(model_rows(codes, x))[0]).mean().item() / math.log(2) / D


def digits_rows(
    seed: int = 0, mode: str = "full", progress: Callable[[str], None] | None = None, **overrides
) -> DigitsResult:
    """Fit every model on one seed's split of the digits and return its table (CPU).

    ``mode`` picks the :data:`SETTINGS`; ``overrides`` replace single settings
    (e.g. ``max_epochs=1`` for a smoke test). ``progress`` receives a line per
    model as it finishes.
    """
    settings = {**SETTINGS[mode], **overrides}
    report = progress or (lambda line: None)
    split = load_split(seed)
    evaluation = np.random.RandomState(10_000 + seed)
    x_val, x_test = dequantized(split["val"], evaluation), dequantized(split["test"], evaluation)
    result = DigitsResult(
        f"Test bits/dim, dequantised pixels, 17 levels, 1x8x8 (uniform = {math.log2(N_LEVELS):.3f}); seed {seed}",
        notes=[f"digits: fit {len(split['fit'])}, validation {len(split['val'])}, test {len(split['test'])} images; "
               f"{mode} settings, seed {seed}"],
    )  # fmt: skip

    def add(new_row: dict) -> None:
        result.rows.append(new_row)
        report(" | ".join(str(value) for value in new_row.values()))

    for space, alpha in (("pixels", None), ("logit space", LOGIT_ALPHA)):
        label = f"GaussianMixture (full cov.), {space}"
        add(gaussian_mixture_row(label, split, x_val, x_test, settings["gmm_components"], seed, alpha))

    common = dict(
        image_shape=SHAPE, n_levels=N_LEVELS, n_scales=1, couplings_per_scale=settings["couplings_per_scale"],
        max_epochs=settings["max_epochs"], patience=settings["patience"], batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"], device="cpu", random_state=seed,
    )  # fmt: skip
    flow = NFImageDensity(hidden_channels=settings["flow_hidden_channels"], **common)
    _, seconds = timed(flow.fit, split["fit"], validation_data=split["val"])
    bpd = pixel_bits_per_dim(flow.score_samples(x_test), D)
    add(row(f"NFImageDensity ({flow.n_iter_} epochs)", f"{bpd:.3f}", "exact", seconds, flow.n_parameters_))

    codes = NVFImageDensity(
        settings["n_codes"], n_downsamples=settings["n_downsamples"], code_dim=settings["code_dim"],
        encoder_channels=settings["encoder_channels"], code_prior_layers=settings["code_prior_layers"],
        code_prior_width=settings["code_prior_width"], top_m=max(settings["top_m"]),
        hidden_channels=settings["hidden_channels"], **common,
    )  # fmt: skip
    _, seconds = timed(codes.fit, split["fit"], validation_data=split["val"])
    n_positions = codes.predict_codes(x_test[:1]).shape[1]
    result.notes.append(
        f"codes used on the fitting images: {codes.n_effective_codes_} of {codes.n_codes}; L = {n_positions}"
    )
    for m in sorted(settings["top_m"]):
        bpd = pixel_bits_per_dim(bound_log_density(codes, x_test, m), D)
        label = f"NVFImageDensity V={codes.n_codes}, L={n_positions}, bound top-{m} ({codes.n_iter_} epochs, 2 stages)"
        add(row(label, f"<= {bpd:.3f}", f"upper bound, m={m}", seconds, codes.n_parameters_))
    result.notes.append(f"code prior cost on test: {code_prior_bits(codes, x_test):.3f} bits/dim (of the top-1 bound)")
    with_encoder = sum(p.numel() for p in codes.module_.parameters())
    result.footnote = f"NVFImageDensity's parameters exclude its encoder (an inference aid); with it: {with_encoder:,}."
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--quick", action="store_true", help="tiny budget: about a minute")
    budget.add_argument("--long", action="store_true", help="twice the epochs of the default: about 10 minutes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = digits_rows(args.seed, "quick" if args.quick else "long" if args.long else "full", progress=print)
    print("\n" + result.markdown())


if __name__ == "__main__":
    main()
