"""One warning per fit that says what happened in training and names the right remedy."""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning

from ._engine import TrainingResult
from ._engine.training import still_improving


def warn_about_training(name: str, result: TrainingResult, max_epochs, max_steps: int, stacklevel: int = 2,
                        fitted_start: bool = False) -> None:  # fmt: skip
    """Warn once, or not at all when early stopping ended a stable run.

    In order of precedence: divergence (repeated non-finite losses), an
    interrupt, an unstable run (periods rolled back, a training stage whose
    loss ended above where it started, or no check better than the starting
    model on validation, unless the start is itself a fitted model:
    ``fitted_start``), and a step budget that ran out. ``max_steps`` is the
    budget that ``max_epochs`` resolved to. A budget of ``max_epochs="auto"``
    that ran out is the end of its schedule, not a warning, unless
    validation was still improving there (``still_improving``).
    """
    best = f"the model from step {result.best_step} is kept"
    never_improved = result.n_steps > 0 and result.best_step == 0 and not fitted_start
    if result.stop_reason == "diverged":
        message, category = (
            f"{name}: training diverged: {result.n_recoveries} validation periods gave a non-finite loss and were "
            f"rolled back with a halved learning rate, then training stopped; {best}. Lower learning_rate, or "
            "remove extreme outliers from X.",
            ConvergenceWarning,
        )
    elif result.stop_reason == "interrupted":
        message, category = f"{name}: fit interrupted; {best}.", UserWarning
    elif result.n_recoveries or result.loss_rose or never_improved:
        what = []
        if result.n_recoveries:
            what.append(f"{result.n_recoveries} validation period(s) gave a non-finite loss and were rolled back")
        if result.loss_rose:
            what.append("the training loss ended above where it started")
        if never_improved:
            what.append("no check scored better on validation than the starting model")
        message, category = (
            f"{name}: training was unstable ({'; '.join(what)}); {best}. Lower learning_rate.",
            ConvergenceWarning,
        )
    elif result.stop_reason == "max_steps" and (max_epochs != "auto" or still_improving(result)):
        budget = f"its budget of {max_steps} steps (max_epochs={max_epochs!r})"
        if result.n_steps > max_steps:
            budget += f" and {result.n_steps - max_steps} more in shorter cycles while it still improved"
        if result.n_stages > 1:  # the budget is per stage; steps count on across the stages
            what = (f"a training stage used {budget} before early stopping (the model kept is from step "
                    f"{result.best_step} of {result.n_steps}, counted over {result.n_stages} stages)")  # fmt: skip
        else:
            what = f"training used {budget} before early stopping (last improvement at step {result.best_step})"
        message, category = f"{name}: {what}; increase max_epochs for a better fit.", ConvergenceWarning
    else:
        return
    warnings.warn(message, category, stacklevel=stacklevel + 1)
