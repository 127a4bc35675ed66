"""Choosing the number of latent states
====================================

K of NVFDensity chosen by held-out likelihood with GridSearchCV, next to BIC.

Two ways, on data with four isolated crescents (two pairs of moons):

1. ``GridSearchCV`` over ``n_latent``: each candidate is scored by
   ``NVFDensity.score``, the mean log-likelihood (nats per sample) of the
   held-out fold, so the grid search picks the K that generalises best.
2. ``bic`` on the training data for each K (lower is better). BIC is an
   in-sample criterion; it penalises ``n_parameters_``, the density's
   parameter count (an ELBO encoder, if any, is not counted). A flow has
   tens of thousands of parameters and each extra state adds only a few
   hundred, so on a small data set the penalty term dominates and BIC
   favours small K; the printed table shows by how much.

For each K the script also prints ``n_effective_latent_`` (states carrying at
least one training row of posterior mass) and the test mean log-likelihood on
a fresh test set that no selection step ever saw.

Saves ``choosing_k.png``: cross-validated log-likelihood, test log-likelihood
and BIC against K.

Run ``python examples/choosing_k.py`` (about a minute on a laptop CPU) or with
``--quick`` / ``NVF_QUICK=1`` (a few seconds; its numbers only show that the
script runs). The PNG goes next to this script or into ``$NVF_EXAMPLES_OUT``.
"""

# sphinx_gallery_thumbnail_path = "images/choosing_k.png"
import argparse
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402

from nvf_sklearn import NVFDensity  # noqa: E402


# %%
# Command line and output
# -----------------------
# ``--quick`` (or ``NVF_QUICK=1``) shrinks the data and the epoch budget so
# that CI can check that the script runs; the figure goes next to the script,
# or into the directory named by ``$NVF_EXAMPLES_OUT``.
def is_quick() -> bool:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and epoch budget, for CI")
    return parser.parse_args().quick or os.environ.get("NVF_QUICK") == "1"


def output_path(name: str) -> Path:
    directory = Path(os.environ.get("NVF_EXAMPLES_OUT") or Path(__file__).resolve().parent)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


# %%
# The data
# --------
# Four isolated crescents: two pairs of moons.
def four_crescents(n_samples, seed):
    """Two pairs of moons, the second rotated by 90 degrees and moved to (4, 1)."""
    rng = np.random.RandomState(seed)
    X_first, _ = make_moons(n_samples // 2, noise=0.05, random_state=rng)
    X_second, _ = make_moons(n_samples - n_samples // 2, noise=0.05, random_state=rng)
    return np.r_[X_first, X_second @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + [4.0, 1.0]]


# %%
# Grid search, BIC and a fresh test set
# -------------------------------------
# ``GridSearchCV`` scores each ``n_latent`` by the held-out mean log-likelihood
# (:meth:`~nvf_sklearn.NVFDensity.score`); each K is then refitted on all
# training rows for :meth:`~nvf_sklearn.NVFDensity.bic`,
# ``n_effective_latent_`` and ``state_usage_``, and scored once on a test set
# that no selection step saw.
def main():
    quick = is_quick()
    n_train, n_test = (300, 1000) if quick else (800, 5000)
    candidates = [1, 2] if quick else [1, 2, 4, 8]
    n_folds = 2 if quick else 3
    # Every fit gets the same fixed epoch budget; whether early stopping ended
    # the final fit of each K is printed in the "converged" column instead.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X_train = four_crescents(n_train, seed=0)
    X_test = four_crescents(n_test, seed=1)
    base = NVFDensity(max_epochs=5 if quick else 40, learning_rate=3e-3, random_state=0)

    search = GridSearchCV(
        base,
        {"n_latent": candidates},
        cv=KFold(n_folds, shuffle=True, random_state=0),
        refit=False,  # each K is refitted on all training rows below, for BIC
    ).fit(X_train)
    cv_mean = search.cv_results_["mean_test_score"]
    cv_std = search.cv_results_["std_test_score"]

    bic, test_score = [], []
    print(f"four crescents: {n_train} training rows, {n_test} fresh test rows; seed 0; {n_folds}-fold CV")
    print(f"{'K':>3} {'CV log-lik':>11} {'test log-lik':>13} {'BIC (train)':>12} {'parameters':>11} "
          f"{'converged':>10} {'effective K':>12}  state usage")
    for k, mean, std in zip(candidates, cv_mean, cv_std):
        estimator = NVFDensity(**{**base.get_params(), "n_latent": k}).fit(X_train)
        bic.append(estimator.bic(X_train))
        test_score.append(estimator.score(X_test))
        usage = " ".join(f"{u:.2f}" for u in estimator.state_usage_)
        print(f"{k:>3} {mean:>7.3f}±{std:.2f} {test_score[-1]:>13.3f} {bic[-1]:>12.0f} "
              f"{estimator.n_parameters_:>11d} {str(estimator.converged_):>10} "
              f"{estimator.n_effective_latent_:>12d}  {usage}")
    print("log-likelihoods in nats per sample (higher is better); BIC lower is better")
    print(f"GridSearchCV picks n_latent={search.best_params_['n_latent']}; "
          f"BIC picks n_latent={candidates[int(np.argmin(bic))]}")

    figure, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    left.errorbar(candidates, cv_mean, yerr=cv_std, marker="o", capsize=3, label=f"{n_folds}-fold CV (train)")
    left.plot(candidates, test_score, marker="s", label="fresh test set")
    left.set(xscale="log", xlabel="n_latent K", ylabel="mean log-likelihood (nats/sample)")
    left.set_xticks(candidates, [str(k) for k in candidates])
    left.legend(fontsize=8)
    left.set_title("held-out log-likelihood (higher is better)", fontsize=10)
    right.plot(candidates, bic, marker="o", color="C2")
    right.set(xscale="log", xlabel="n_latent K", ylabel="BIC on training data")
    right.set_xticks(candidates, [str(k) for k in candidates])
    right.set_title("BIC (lower is better)", fontsize=10)
    for axis in (left, right):
        axis.minorticks_off()
    figure.tight_layout()
    path = output_path("choosing_k.png")
    figure.savefig(path, dpi=110)
    print(f"saved {path}")


# %%
# Results of a full run
# ---------------------
# The output of ``python examples/choosing_k.py`` with version 0.2 of the package (its
# epoch-counted training loop; this version trains on a step budget) (seed 0) on two x86 CPU
# cores shared with other jobs, one torch thread, and the figure it saved.
# Another machine or library version gives slightly different numbers.
#
# .. code-block:: text
#
#    four crescents: 800 training rows, 5000 fresh test rows; seed 0; 3-fold CV
#      K  CV log-lik  test log-lik  BIC (train)  parameters  converged  effective K  state usage
#      1  -1.707±0.03        -1.569       198575       29338      False            1  1.00
#      2  -1.359±0.08        -1.191       200380       29711      False            2  0.51 0.49
#      4  -1.282±0.03        -1.150       205292       30457       True            4  0.29 0.31 0.31 0.10
#      8  -1.358±0.07        -1.126       215129       31949       True            8  0.13 0.16 0.14 0.09 0.13 0.10 0.12 0.14
#    log-likelihoods in nats per sample (higher is better); BIC lower is better
#    GridSearchCV picks n_latent=4; BIC picks n_latent=1
#
# .. image:: /images/choosing_k.png
#    :alt: Cross-validated and test log-likelihood, and BIC, against the number of latent states
if __name__ == "__main__":
    main()
