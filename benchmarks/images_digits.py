"""Test bits/dim on scikit-learn's digits: sequence-latent flow vs image flow vs Gaussian mixture.

Space of every figure: dequantised pixels y = (p + u) / 17 in [0, 1)^64
(p in {0..16}, the 17 levels of ``load_digits``, 1x8x8: the true
dimensionality), bits/dim = (-log q(y) + 64 log 17) / (64 log 2); lower is
better, and a uniform density scores log2(17) = 4.09. Split: a fixed 80/20
train/test split (``--seed``); model selection (early stopping, GMM size) on a
validation set carved from the training part; the test set is scored once, in
eval mode, with one fixed dequantisation draw. One seed per run.

The sequence model's figures are upper bounds on its bits/dim (lower bounds
on log p(x)), from the top-m code sequences per image; they tighten as m grows.

    OMP_NUM_THREADS=1 python benchmarks/images_digits.py            # a few minutes on CPU
    OMP_NUM_THREADS=1 python benchmarks/images_digits.py --quick    # under a minute
    OMP_NUM_THREADS=1 python benchmarks/images_digits.py --long     # about 10 minutes
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture

from nvf_sklearn._engine.bits import bits_per_dim, dequantize, logit_transform
from nvf_sklearn._engine.image_flow import ImageFlow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.sequence import sequence_latent_flow

N_LEVELS, SHAPE, D = 17, (1, 8, 8), 64

SETTINGS = {
    "full": dict(
        flow_epochs=30, joint_epochs=30, prior_epochs=20, patience=10, batch_size=128, learning_rate=2e-3,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=32, baseline_hidden_channels=44,
        n_layers_per_scale=4, prior_embd=48, top_m=(1, 16, 64), gmm_components=(1, 2, 5, 10, 20),
    ),
    "long": dict(
        flow_epochs=60, joint_epochs=60, prior_epochs=40, patience=15, batch_size=128, learning_rate=2e-3,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=32, baseline_hidden_channels=44,
        n_layers_per_scale=4, prior_embd=48, top_m=(1, 16, 128), gmm_components=(1, 2, 5, 10, 20),
    ),
    "quick": dict(
        flow_epochs=6, joint_epochs=6, prior_epochs=4, patience=15, batch_size=128, learning_rate=3e-3,
        n_codes=16, n_downsamples=2, code_dim=8, hidden_channels=16, baseline_hidden_channels=22,
        n_layers_per_scale=4, prior_embd=32, top_m=(1, 8), gmm_components=(1, 5),
    ),
}


def load_split(seed: int) -> dict[str, np.ndarray]:
    """Integer levels (n, 64) of a fixed 80/20 split, the last 10% of train held out for validation."""
    levels = load_digits().data.astype(np.int64)
    order = np.random.RandomState(seed).permutation(len(levels))
    n_test = int(round(0.2 * len(levels)))
    test, train = order[:n_test], order[n_test:]
    n_val = int(round(0.1 * len(train)))
    return {"fit": levels[train[n_val:]], "val": levels[train[:n_val]], "train": levels[train], "test": levels[test]}


def images(levels: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """One dequantisation draw, as (n, 1, 8, 8) float32 images in [0, 1)."""
    return dequantize(torch.as_tensor(levels).reshape(-1, *SHAPE), N_LEVELS, generator).float()


def count(parameters) -> int:
    return int(sum(p.numel() for p in parameters))


def fit(module, loss, validation_loss, levels_fit, x_val, epochs, settings, generator, parameters=None):
    """Adam with cosine decay; fresh dequantisation noise every epoch; best validation state kept."""
    parameters = [p for p in (parameters or module.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=settings["learning_rate"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1), eta_min=1e-5)
    best, best_state, waited = math.inf, copy.deepcopy(module.state_dict()), 0
    for epoch in range(epochs):
        module.train()
        x = images(levels_fit, generator)
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), settings["batch_size"]):
            batch = x[order[start : start + settings["batch_size"]]]
            value = loss(batch, epoch / epochs).mean()
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer.step()
        schedule.step()
        module.eval()
        with torch.no_grad():
            current = validation_loss(x_val)
        if current < best:
            best, best_state, waited = current, copy.deepcopy(module.state_dict()), 0
        else:
            waited += 1
            if waited >= settings["patience"]:
                break
    module.load_state_dict(best_state)
    module.eval()
    return epoch + 1


def bpd(log_q: torch.Tensor | np.ndarray) -> float:
    return float(np.mean(bits_per_dim(np.asarray(log_q, dtype=np.float64), D, N_LEVELS)))


def run_gmm(split, x_val, x_test, components, seed, logit_alpha=None):
    """GaussianMixture (full covariance) on the same dequantised pixels, size chosen on validation.

    With ``logit_alpha`` the mixture is fitted in logit space and its density
    brought back to [0, 1) pixel space with the logit's log-Jacobian.
    """
    generator = torch.Generator().manual_seed(seed + 1)
    x_fit = images(split["fit"], generator).reshape(-1, D).double()

    def space(x):
        x = x.reshape(-1, D).double()
        if logit_alpha is None:
            return x.numpy(), np.zeros(len(x))
        s, log_det = logit_transform(x, logit_alpha)
        return s.numpy(), log_det.numpy()

    started = time.perf_counter()
    best = None
    for k in components:
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(space(x_fit)[0])
        s_val, log_det_val = space(x_val)
        score = np.mean(gmm.score_samples(s_val) + log_det_val)
        if best is None or score > best[0]:
            best = (score, gmm)
    seconds = time.perf_counter() - started
    gmm = best[1]
    s_test, log_det_test = space(x_test)
    log_q = gmm.score_samples(s_test) + log_det_test
    n_parameters = gmm._n_parameters()
    return log_q, seconds, n_parameters, gmm.n_components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--quick", action="store_true", help="tiny budget: under a minute")
    budget.add_argument("--long", action="store_true", help="twice the epochs of the default: about 10 minutes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mode = "quick" if args.quick else "long" if args.long else "full"
    settings = SETTINGS[mode]
    torch.set_num_threads(1)
    split = load_split(args.seed)
    evaluation = torch.Generator().manual_seed(10_000 + args.seed)
    x_val, x_test = images(split["val"], evaluation), images(split["test"], evaluation)
    rows = []
    print(
        f"digits: fit {len(split['fit'])}, validation {len(split['val'])}, test {len(split['test'])} images; "
        f"{mode} settings, seed {args.seed}"
    )

    # --- Gaussian mixtures --------------------------------------------------------------------------
    for label, alpha in (("GaussianMixture (full cov.), pixels", None), ("GaussianMixture (full cov.), logit space", 0.05)):
        log_q, seconds, n_parameters, k = run_gmm(split, x_val, x_test, settings["gmm_components"], args.seed, alpha)
        rows.append((f"{label}, K={k}", f"{bpd(log_q):.3f}", "exact", seconds, n_parameters))
        print(rows[-1])

    # --- image flow, no latent ---------------------------------------------------------------------
    generator = torch.Generator().manual_seed(args.seed)
    flow = ImageFlow(
        SHAPE, n_scales=1, n_layers_per_scale=settings["n_layers_per_scale"],
        hidden_channels=settings["baseline_hidden_channels"], logit_alpha=0.05,
    )
    initialize_parameters(flow, generator)
    started = time.perf_counter()
    epochs = fit(
        flow,
        lambda x, progress: -flow.log_prob(x),
        lambda x: -flow.log_prob(x).mean().item(),
        split["fit"], x_val, settings["flow_epochs"], settings, generator,
    )
    seconds = time.perf_counter() - started
    with torch.no_grad():
        log_q = flow.log_prob(x_test).numpy()
    rows.append((f"ImageFlow, no latent ({epochs} epochs)", f"{bpd(log_q):.3f}", "exact", seconds, count(flow.parameters())))
    print(rows[-1])

    # --- sequence-latent flow ----------------------------------------------------------------------
    generator = torch.Generator().manual_seed(args.seed)
    model = sequence_latent_flow(
        SHAPE, settings["n_codes"], n_downsamples=settings["n_downsamples"], code_dim=settings["code_dim"],
        n_scales=1, n_layers_per_scale=settings["n_layers_per_scale"], hidden_channels=settings["hidden_channels"],
        logit_alpha=0.05, prior_embd=settings["prior_embd"], top_m=1,
    )
    model.reset_parameters(generator)
    model.initialize_codebook(images(split["fit"], generator), generator)
    started = time.perf_counter()
    joint_epochs = fit(
        model,
        lambda x, progress: model.training_loss(x, generator, progress),
        lambda x: -model.log_prob_bound(x, top_m=1).mean().item(),
        split["fit"], x_val, settings["joint_epochs"], settings, generator,
    )
    model.set_training_stage("prior")

    def prior_loss(x):
        return -model.prior.log_prob(model.encode(x)[0]).mean().item()

    prior_epochs = fit(
        model, lambda x, progress: model.training_loss(x, generator, progress), prior_loss,
        split["fit"], x_val, settings["prior_epochs"], settings, generator, parameters=model.prior.parameters(),
    )
    seconds = time.perf_counter() - started
    codes = model.encode(x_test)[0]
    n_used = int(model.encode(images(split["train"], evaluation))[0].unique().numel())
    print(f"codes used on train: {n_used} of {model.n_codes}; grid {model.grid}, L = {model.n_positions}")
    n_parameters = count(model.density_parameters())
    for m in settings["top_m"]:
        with torch.no_grad():
            log_q = torch.cat([model.log_prob_bound(x_test[i : i + 64], top_m=m) for i in range(0, len(x_test), 64)])
        label = f"SequenceLatentFlow V={model.n_codes}, L={model.n_positions}, bound top-{m} ({joint_epochs}+{prior_epochs} epochs)"
        rows.append((label, f"<= {bpd(log_q.numpy()):.3f}", f"upper bound, m={m}", seconds, n_parameters))
        print(rows[-1])
    with torch.no_grad():
        prior_bits = -model.prior.log_prob(codes).mean().item() / math.log(2) / D
    print(f"code prior cost on test: {prior_bits:.3f} bits/dim (of the top-1 bound)")

    print()
    print(f"Test bits/dim, dequantised [0,1) pixel space, 17 levels, 1x8x8 (uniform = {math.log2(N_LEVELS):.3f}); seed {args.seed}")
    print()
    print("| model | test bits/dim | figure | fit seconds | parameters |")
    print("|---|---|---|---|---|")
    for label, value, kind, seconds, n_parameters in rows:
        print(f"| {label} | {value} | {kind} | {seconds:.1f} | {n_parameters:,} |")
    print()
    print("Sequence model parameters exclude its encoder (an inference aid); "
          f"with it: {count(model.parameters()):,}.")


if __name__ == "__main__":
    main()
