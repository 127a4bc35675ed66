"""One warning per fit that says what happened in training and names the right remedy."""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning

from ._engine import TrainingResult


def warn_about_training(name: str, result: TrainingResult, max_epochs: int, stacklevel: int = 2) -> None:
    """Warn once, or not at all when early stopping ended a stable run.

    In order of precedence: divergence (repeated non-finite losses), an
    interrupt, an unstable run (epochs rolled back, a training stage whose
    loss ended above where it started, or no epoch better than the starting
    model on validation), and an epoch budget that ran out.
    """
    best = f"the model from epoch {result.best_epoch} is kept"
    never_improved = result.n_epochs > 0 and result.best_epoch == 0
    if result.stop_reason == "diverged":
        message, category = (
            f"{name}: training diverged: {result.n_recoveries} epochs gave a non-finite loss and were rolled "
            f"back with a halved learning rate, then training stopped; {best}. Lower learning_rate, or "
            "remove extreme outliers from X.",
            ConvergenceWarning,
        )
    elif result.stop_reason == "interrupted":
        message, category = f"{name}: fit interrupted; {best}.", UserWarning
    elif result.n_recoveries or result.loss_rose or never_improved:
        what = []
        if result.n_recoveries:
            what.append(f"{result.n_recoveries} epoch(s) gave a non-finite loss and were rolled back")
        if result.loss_rose:
            what.append("the training loss ended above where it started")
        if never_improved:
            what.append("no epoch scored better on validation than the starting model")
        message, category = (
            f"{name}: training was unstable ({'; '.join(what)}); {best}. Lower learning_rate.",
            ConvergenceWarning,
        )
    elif result.stop_reason == "max_epochs":
        if result.n_stages > 1:  # max_epochs is per stage; epochs count on across the stages
            what = (f"a training stage used all its max_epochs={max_epochs} epochs before early stopping (the "
                    f"model kept is from epoch {result.best_epoch} of {result.n_epochs}, counted over "
                    f"{result.n_stages} stages)")  # fmt: skip
        else:
            what = (f"training used all max_epochs={max_epochs} epochs before early stopping (last improvement "
                    f"at epoch {result.best_epoch})")  # fmt: skip
        message, category = f"{name}: {what}; increase max_epochs for a better fit.", ConvergenceWarning
    else:
        return
    warnings.warn(message, category, stacklevel=stacklevel + 1)
