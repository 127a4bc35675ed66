"""Training progress for ``verbose``: one updating line, or one line per validation check.

Off by default, as in scikit-learn: an estimator is fitted hundreds of times
inside ``GridSearchCV`` and pipelines, where printing would drown the output.
``verbose=1`` rewrites one line in place (carriage return) with the step,
the validation score and an estimate of the time left; ``verbose=2`` prints
one line per validation check. Scores are shown in the units of X (nats per sample).
"""

from __future__ import annotations

import sys
import time

from ._engine import CheckReport


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}min" if seconds < 5400 else f"{seconds / 3600:.1f}h"


class ProgressDisplay:
    """An ``on_check`` callback for the engine's training loop (picklable, for spawned processes).

    Parameters
    ----------
    name : str
        Estimator name, shown at the start of the line.
    verbose : int
        1: one updating line; 2 or more: one line per validation check.
    log_det : float
        The preprocessing's log-Jacobian, to report scores in the units of X.
    """

    def __init__(self, name: str, verbose: int, log_det: float) -> None:
        self.name = name
        self.verbose = verbose
        self.log_det = log_det
        self.started = time.perf_counter()

    def __call__(self, report: CheckReport) -> None:
        elapsed = time.perf_counter() - self.started
        left = elapsed / max(report.step, 1) * (report.max_steps - report.step)
        stage = "" if report.stage == "all" else f" [{report.stage}]"
        if report.rolled_back:
            detail = "non-finite loss: rolled back, learning rate halved"
        else:
            score = report.validation_loss if report.validation_loss is not None else report.train_loss
            kind = "valid" if report.validation_loss is not None else "train"
            detail = (
                f"train {self.log_det - report.train_loss:.4f}  {kind} {self.log_det - score:.4f}  "
                f"best {self.log_det - report.best_loss:.4f}"
            )
        line = (
            f"{self.name}{stage} step {report.step}/{report.max_steps}  {detail}  "
            f"{report.seconds:.2f}s/check, at most {_duration(left)} left"
        )
        if self.verbose >= 2:
            print(line, flush=True)
        else:
            print("\r" + line.ljust(getattr(self, "_width", 0)), end="", file=sys.stdout, flush=True)
            self._width = len(line)

    def close(self) -> None:
        """End the updating line."""
        if self.verbose == 1 and getattr(self, "_width", 0):
            print(file=sys.stdout, flush=True)
