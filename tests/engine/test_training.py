"""The training ladder: divergence recovery, best-state restore, interruption, stages, padding."""

import math

import pytest
import torch

from nvf_sklearn._engine.flow_density import FlowDensity
from nvf_sklearn._engine.flows import spline_flow
from nvf_sklearn._engine.initialization import initialize_parameters
from nvf_sklearn._engine.training import (
    Strategy,
    TrainingConfig,
    TrainingData,
    batches,
    chain_results,
    run_epoch,
    scheduled_learning_rate,
    train,
    TrainingResult,
)
from nvf_sklearn._engine.step import TrainStep

N_ROWS, BATCH_SIZE = 200, 50


class Sabotaged(FlowDensity):
    """A flow whose loss turns NaN (or raises) on chosen epoch attempts (0-based); optionally two stages."""

    def __init__(self, bad_epochs=(), interrupt_at=None, interrupt_validation_at=None, stages=("all",)):
        super().__init__(spline_flow(2, n_layers=2, hidden_size=8))
        initialize_parameters(self, torch.Generator().manual_seed(0))
        self.bad_epochs, self.interrupt_at = set(bad_epochs), interrupt_at
        self.interrupt_validation_at, self.stages = interrupt_validation_at, stages
        self.calls, self.validations, self.entered = 0, 0, []

    def training_loss(self, x, noise, progress):
        self.epoch = self.calls // math.ceil(N_ROWS / BATCH_SIZE)
        self.calls += 1
        if self.interrupt_at is not None and self.epoch == self.interrupt_at:
            raise KeyboardInterrupt
        loss = super().training_loss(x, noise, progress)
        return loss * float("nan") if self.epoch in self.bad_epochs else loss

    def validation_loss(self, x):
        self.validations += 1
        if self.validations == self.interrupt_validation_at:
            raise KeyboardInterrupt
        return super().validation_loss(x)

    def training_stages(self):
        return self.stages

    def set_training_stage(self, stage):
        self.entered.append(stage)


def _data(generator):
    # Skewed data: the identity flow at initialisation is far from optimal.
    x = torch.randn(N_ROWS, 2, generator=generator).exp() - 1.5
    x_val = torch.randn(50, 2, generator=generator).exp() - 1.5
    return TrainingData(x, torch.ones(N_ROWS), x_val, torch.ones(50))


def _fit(module, epochs=6, **config):
    generator = torch.Generator().manual_seed(0)
    settings = {**dict(max_epochs=epochs, batch_size=BATCH_SIZE, learning_rate=1e-2, patience=100, warmup_epochs=0),
                **config}  # fmt: skip
    return train(module, _data(generator), TrainingConfig(**settings), generator)


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
    assert torch.isfinite(module.log_joint(torch.randn(10, 2))).all()


@pytest.mark.parametrize("where", ["step", "validation"])
def test_keyboard_interrupt_keeps_the_best_model(where):
    module = Sabotaged(interrupt_at=3) if where == "step" else Sabotaged(interrupt_validation_at=5)
    result = _fit(module)
    assert result.stop_reason == "interrupted"
    assert result.n_epochs == 3
    assert 1 <= result.best_epoch <= 3
    assert not module.training
    assert all(p.requires_grad for p in module.parameters())


def test_an_interrupt_skips_the_later_stages():
    module = Sabotaged(interrupt_at=3, stages=("first", "second"))
    result = _fit(module)
    assert module.entered == ["first"] and result.stop_reason == "interrupted"


def test_stages_run_in_order_and_chain_their_records():
    module = Sabotaged(stages=("first", "second"))
    result = _fit(module, epochs=3)
    assert module.entered == ["first", "second"]
    assert result.n_epochs == 6 and len(result.train_loss) == 6


def test_chain_results_keeps_the_worse_stop_reason_and_counts_epochs_on():
    first = TrainingResult(train_loss=[1.0], best_epoch=1, n_epochs=1, stop_reason="early_stopping")
    second = TrainingResult(train_loss=[0.5], best_epoch=0, n_epochs=1, stop_reason="max_epochs")
    chained = chain_results(first, second)
    assert chained.stop_reason == "max_epochs" and chained.n_epochs == 2 and chained.best_epoch == 1


def test_validation_loss_decreases_on_easy_data():
    result = _fit(Sabotaged(), epochs=8)
    assert result.best_loss < result.validation_loss[0]


@pytest.mark.parametrize("pad", [False, True])
def test_batches_cover_every_row_once_and_padding_has_weight_zero(pad):
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    weights = torch.arange(1.0, 24.0)
    seen, total = [], 0.0
    for index, batch_weights in batches(order, weights, 5, pad):
        assert index.shape == batch_weights.shape and (index.shape[0] == 5 or not pad)
        real = batch_weights > 0
        seen += index[real].tolist()
        total += batch_weights.sum().item()
    assert sorted(seen) == list(range(23)) and total == weights.sum().item()


def test_a_padded_epoch_has_the_exact_weighted_objective():
    """Static batch shapes (compiled steps) pad the last batch with rows of weight zero: the epoch's loss is exact."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(23, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(23, generator=generator, dtype=torch.float64) + 0.5
    model = FlowDensity(spline_flow(2, n_layers=1, hidden_size=4)).double()
    initialize_parameters(model, generator)
    data = TrainingData(x, weights)
    step = TrainStep(model, list(model.parameters()), 0.0, 5.0)  # a zero learning rate: parameters stay put
    step.captured = True  # as after a successful capture: the last batch is padded
    padded = run_epoch(step, data, TrainingConfig(batch_size=5), generator, Strategy(), 0)
    with torch.no_grad():
        exact = ((-model.log_joint(x)[:, 0] * weights).sum() / weights.sum()).item()
    assert padded == pytest.approx(exact, rel=1e-12)


def test_the_eager_epoch_computes_what_the_torch_optim_loop_computed():
    """The step (own Adam, clipping, weighted loss) reproduces the pre-redesign loop to float32 rounding.

    That loop was torch.optim.Adam(foreach=True) with clip_grad_norm_(5) and a cosine learning rate per epoch.
    """
    config = TrainingConfig(max_epochs=3, batch_size=50, learning_rate=1e-2, schedule="cosine")
    data = _data(torch.Generator().manual_seed(0))
    ours, reference = Sabotaged(), Sabotaged()
    step = TrainStep(ours, list(ours.parameters()), config.learning_rate, config.gradient_clip)
    generator = torch.Generator().manual_seed(1)
    for epoch in range(config.max_epochs):
        step.learning_rate.fill_(scheduled_learning_rate(config, epoch))
        run_epoch(step, data, config, generator, Strategy(), epoch)

    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate, foreach=True)
    generator = torch.Generator().manual_seed(1)
    for epoch in range(config.max_epochs):
        for group in optimizer.param_groups:
            group["lr"] = scheduled_learning_rate(config, epoch)
        order = torch.randperm(N_ROWS, generator=generator)
        for start in range(0, N_ROWS, config.batch_size):
            index = order[start : start + config.batch_size]
            loss = (reference.training_loss(data.x[index], None, None) * data.weights[index]).sum() / data.weights[index].sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), config.gradient_clip, foreach=True)
            optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5)


def test_warm_up_then_halving_on_plateaus():
    config = TrainingConfig(learning_rate=1.0, warmup_epochs=4, schedule="plateau")
    assert [scheduled_learning_rate(config, epoch) for epoch in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    # A model that never improves on validation: the rate halves every patience // 4 epochs.
    module = Sabotaged()
    module.validation_loss = lambda x: torch.full((x.shape[0],), 1e9)
    result = _fit(module, epochs=9, patience=8, schedule="plateau")
    assert result.learning_rate == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3, 1.25e-3, 1.25e-3])
    assert result.stop_reason == "early_stopping" and result.best_epoch == 0


def test_the_kept_model_is_the_weight_average_the_validation_scored():
    module = Sabotaged()
    result = _fit(module, epochs=4, weight_averaging=0.9)
    data = _data(torch.Generator().manual_seed(0))
    with torch.no_grad():
        kept = module.validation_loss(data.x_validation).mean().item()
    assert kept == pytest.approx(result.best_loss, rel=1e-6)
    assert result.best_loss == min(result.validation_loss)
