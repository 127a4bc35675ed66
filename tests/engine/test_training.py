"""The training loop: divergence recovery, best-state restore, interruption, determinism."""

import math

import pytest
import torch

from nvf_sklearn._engine.density import FlowDensity
from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.training import TrainingConfig, train


N_ROWS, BATCH_SIZE = 200, 50


class Sabotaged(FlowDensity):
    """A flow whose loss turns NaN (or raises) on chosen epoch attempts (0-based)."""

    def __init__(self, bad_epochs=(), interrupt_at=None):
        super().__init__(spline_flow(2, n_layers=2, hidden_size=8))
        initialize_parameters(self, torch.Generator().manual_seed(0))
        self.bad_epochs, self.interrupt_at = set(bad_epochs), interrupt_at
        self.calls = 0

    def training_loss(self, x, generator, progress):
        self.epoch = self.calls // math.ceil(N_ROWS / BATCH_SIZE)
        self.calls += 1
        if self.interrupt_at is not None and self.epoch == self.interrupt_at:
            raise KeyboardInterrupt
        loss = super().training_loss(x, generator, progress)
        if self.epoch in self.bad_epochs:
            loss = loss * float("nan")
        return loss


def _fit(module, epochs=6, **config):
    generator = torch.Generator().manual_seed(0)
    # Skewed data: the identity flow at initialisation is far from optimal.
    x = torch.randn(N_ROWS, 2, generator=generator).exp() - 1.5
    x_val = torch.randn(50, 2, generator=generator).exp() - 1.5
    settings = dict(max_epochs=epochs, batch_size=BATCH_SIZE, learning_rate=1e-2, patience=100, **config)
    return train(
        module, x, torch.ones(N_ROWS), x_val, torch.ones(50), TrainingConfig(**settings), generator, log=lambda s: None
    )


def test_a_nan_epoch_is_rolled_back_and_training_continues():
    module = Sabotaged(bad_epochs={2})
    result = _fit(module)
    assert result.n_recoveries == 1
    assert result.stop_reason == "max_epochs"
    assert all(math.isfinite(v) for v in result.train_loss + result.validation_loss)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    # The epoch after the roll-back ran at half the scheduled learning rate.
    assert result.learning_rate[2] < result.learning_rate[1] * 0.6


def test_repeated_divergence_stops_with_the_best_state():
    module = Sabotaged(bad_epochs=set(range(3, 100)))
    result = _fit(module, epochs=20, max_recoveries=2)
    assert result.stop_reason == "diverged"
    assert result.n_recoveries == 3
    assert result.best_epoch <= 3
    x = torch.randn(10, 2)
    assert torch.isfinite(module.log_joint(x)).all()


def test_keyboard_interrupt_keeps_the_best_model():
    module = Sabotaged(interrupt_at=3)
    result = _fit(module)
    assert result.stop_reason == "interrupted"
    assert result.n_epochs == 3
    assert 1 <= result.best_epoch <= 3
    assert not module.training


def test_validation_loss_decreases_on_easy_data():
    module = Sabotaged()
    result = _fit(module, epochs=8)
    assert result.best_loss < result.validation_loss[0]


def test_estimator_with_absurd_learning_rate_never_returns_nan(moons):
    import numpy as np

    from nvf_sklearn import NFDensity

    with pytest.warns(Warning):
        est = NFDensity(n_layers=2, hidden_size=16, max_epochs=5, learning_rate=1e4, random_state=0, device="cpu").fit(
            moons * 1e3
        )
    assert np.isfinite(est.score_samples(moons * 1e3)).all()
