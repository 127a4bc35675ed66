"""The :class:`DensityModel` contract, for every engine density model, in float64.

One set of tests, parametrised over the models the estimators train: the
tabular flow, the image flow, the K-state latent flow (exact objective over
all states, exact over a subset of the states, ELBO) and the sequential latent
image model. Each is built tiny with its parameters drawn away from their
zero-initialised outputs (``randomise_``), so no test passes because a layer
does nothing; the round-trip test checks that two draws score differently.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch.testing import assert_close

from nvf_sklearn._engine.base import DensityModel
from nvf_sklearn._engine.flow_density import FlowDensity, ImageFlowDensity
from nvf_sklearn._engine.latent import LatentFlowDensity
from nvf_sklearn._engine.sequence import SequenceLatentFlowDensity

from .conftest import (
    F64,
    PROGRESS,
    generator,
    grid_rows,
    randomise_,
    small_image_flow,
    small_spline_flow,
    tabular_points,
    tiny_sequence_model,
)

#: Rows per test: 7, so chunks of 3 leave a short last chunk.
N_ROWS = 7
IMAGE_SHAPE = (1, 4, 4)
N_PIXELS = 16
N_LEVELS = 17
K, D = 3, 2
#: Sequence model: V codes on a 2x2 grid (L = 4), top-m candidates.
V, L, TOP_M = 3, 4, 5


def _everything(name: str) -> bool:
    return True


@dataclass(frozen=True)
class Case:
    """One density model: how to build it and its data, and what its contract answers must be."""

    name: str
    build: Callable[[int], DensityModel]
    #: ``(n, n_features)`` rows as scored (continuous).
    points: Callable[[int], torch.Tensor]
    #: ``(n, n_features)`` rows as trained on (image models: grid points, dequantised by the loss).
    training_rows: Callable[[int], torch.Tensor]
    n_features: int
    n_states: int
    #: States (tabular) or codes (sequence) lie in ``[0, state_values)``.
    state_values: int
    #: Stage name -> which parameter names it trains.
    stages: dict[str, Callable[[str], bool]]
    training_passes: int
    validation_passes: int

    def __str__(self):
        return self.name


def _flow_density(seed):
    return FlowDensity(randomise_(small_spline_flow(3), 0.25, seed))


def _image_flow_density(seed):
    flow = small_image_flow(IMAGE_SHAPE, logit_alpha=0.05)
    return ImageFlowDensity(randomise_(flow, 0.1, seed), N_LEVELS)


def _latent(objective="exact", training_states=None):
    def build(seed):
        flow = small_spline_flow(D, K, state_affine="full")
        model = LatentFlowDensity(
            flow, K, encoder_hidden_sizes=(8,), objective=objective, training_states=training_states
        ).double()
        return randomise_(model, 0.25, seed)

    return build


def _sequence(seed):
    return tiny_sequence_model(seed, n_codes=V, top_m=TOP_M, shape=IMAGE_SHAPE, n_levels=N_LEVELS)


def _tabular(n_features):
    return lambda n: tabular_points(n, n_features)


def _pixels(n):
    return torch.rand(n, N_PIXELS, generator=generator(1), dtype=F64)


def _grid(n):
    return grid_rows(n, N_PIXELS, N_LEVELS)


ALL = {"all": _everything}

CASES = [
    Case("flow", _flow_density, _tabular(3), _tabular(3), 3, 1, 1, ALL, 1, 1),
    Case("image-flow", _image_flow_density, _pixels, _grid, N_PIXELS, 1, 1, ALL, 1, 1),
    Case("latent-exact", _latent(), _tabular(D), _tabular(D), D, K, K, ALL, K, K),
    Case("latent-exact-2-of-3", _latent(training_states=2), _tabular(D), _tabular(D), D, K, K, ALL, 2, K),
    Case("latent-elbo", _latent("elbo"), _tabular(D), _tabular(D), D, K, K, ALL, 1, K),
    Case(
        "sequence", _sequence, _pixels, _grid, N_PIXELS, TOP_M, V,
        {"joint": _everything, "prior": lambda name: name.startswith("prior.")}, 1, 1,
    ),  # fmt: skip
]

contract = pytest.mark.parametrize("case", CASES, ids=str)


def _training_batch(case, model, n=N_ROWS):
    """Rows and inputs of one training step, after ``begin_training`` on them (the training loop's order)."""
    x = case.training_rows(n)
    model.begin_training(x)
    return x, model.training_inputs(torch.arange(n), generator(4))


@contract
def test_log_joint_shape_and_finiteness(case):
    model = case.build(0)
    assert model.n_states == case.n_states
    log_joint = model.log_joint(case.points(N_ROWS))
    assert log_joint.shape == (N_ROWS, case.n_states) and log_joint.dtype == F64
    assert torch.isfinite(log_joint).all()


@contract
def test_validation_loss_is_never_below_minus_the_log_density(case):
    """``-log p(x)`` for the sum over states; the sequence model's top-1 bound can only be larger."""
    model = case.build(0).eval()
    x = case.points(N_ROWS)
    minus_log_density = -model.log_joint(x).logsumexp(-1)
    validation = model.validation_loss(x)
    assert validation.shape == (N_ROWS,) and torch.isfinite(validation).all()
    assert (validation - minus_log_density >= -1e-12).all()
    if case.validation_passes == case.n_states:
        assert_close(validation, minus_log_density, atol=1e-12, rtol=0)


@contract
def test_sample_shapes_states_and_reproducibility(case):
    model = case.build(0).eval()
    x, states = model.sample(N_ROWS, generator(3))
    assert x.shape == (N_ROWS, case.n_features) and x.dtype == F64 and torch.isfinite(x).all()
    assert states.shape[0] == N_ROWS and states.dtype == torch.long
    assert states.min() >= 0 and states.max() < case.state_values
    again, states_again = model.sample(N_ROWS, generator(3))
    assert torch.equal(x, again) and torch.equal(states, states_again)
    assert not torch.equal(model.sample(N_ROWS, generator(5))[0], x)


@contract
@pytest.mark.parametrize("chunk", [1, 3, N_ROWS])
def test_log_joint_is_invariant_to_chunking(case, chunk):
    model = case.build(0).eval()
    x = case.points(N_ROWS)
    expected = model.log_joint(x)
    chunked = torch.cat([model.log_joint(x[start : start + chunk]) for start in range(0, N_ROWS, chunk)])
    assert_close(chunked, expected, atol=1e-12, rtol=0)


@contract
def test_state_dict_round_trip_gives_identical_log_joint(case):
    model, other = case.build(0).eval(), case.build(1).eval()
    x = case.points(N_ROWS)
    expected = model.log_joint(x)
    assert (other.log_joint(x) - expected).abs().max() > 1e-3  # two draws differ: the load below matters
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert_close(other.log_joint(x), expected, atol=0, rtol=0)


@contract
def test_training_loss_shape_and_gradients_in_every_stage(case):
    """Per stage: a finite ``(n,)`` loss whose gradient reaches exactly the parameters that stage trains."""
    model = case.build(0).train()
    x, inputs = _training_batch(case, model)
    for stage in model.training_stages():
        model.set_training_stage(stage)
        model.zero_grad(set_to_none=True)
        loss = model.training_loss(x, inputs, PROGRESS)
        assert loss.shape == (N_ROWS,) and loss.dtype == F64 and torch.isfinite(loss).all(), stage
        loss.sum().backward()
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (stage, name)
            else:
                assert parameter.grad is None, (stage, name)
    model.end_training()


@contract
def test_stages_train_exactly_their_parameters_and_end_training_unfreezes(case):
    model = case.build(0)
    assert model.training_stages() == tuple(case.stages)
    names = [name for name, _ in model.named_parameters()]
    for stage, trains in case.stages.items():
        model.set_training_stage(stage)
        trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        expected = {name for name in names if trains(name)}
        assert trainable == expected, stage
        assert expected, stage  # every stage trains something
    # Whatever was frozen (by a stage, or by hand here), end_training unfreezes it all.
    next(model.parameters()).requires_grad_(False)
    model.end_training()
    frozen = [name for name, parameter in model.named_parameters() if not parameter.requires_grad]
    assert frozen == []


@contract
def test_passes_per_row(case):
    model = case.build(0)
    training, validation = model.training_passes(), model.validation_passes()
    assert type(training) is int and type(validation) is int and training > 0 and validation > 0
    assert (training, validation) == (case.training_passes, case.validation_passes)


def _engine_density_models():
    """Every concrete DensityModel subclass defined in the engine package."""
    import nvf_sklearn._engine  # noqa: F401  (imports every model module)

    found, pending = set(), [DensityModel]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("nvf_sklearn._engine.") and not getattr(
                subclass, "__abstractmethods__", None
            ):
                found.add(subclass)
    return found


def test_the_cases_cover_every_engine_density_model():
    """A new DensityModel in the engine fails here until it is added to CASES."""
    built = {type(case.build(0)) for case in CASES}
    assert built == {FlowDensity, ImageFlowDensity, LatentFlowDensity, SequenceLatentFlowDensity}
    assert _engine_density_models() == built
    subset = next(case for case in CASES if case.name == "latent-exact-2-of-3").build(0)
    assert subset.training_states == 2 and subset.objective == "exact"
