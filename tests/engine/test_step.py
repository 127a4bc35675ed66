"""The training step: one graph for every model, equal to the eager step, and a fallback that changes nothing."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

import nvf_sklearn._engine.step as step_module
from nvf_sklearn import NFDensity
from nvf_sklearn._engine import (
    FlowDensity,
    ImageFlow,
    ImageFlowDensity,
    LatentFlowDensity,
    initialize_parameters,
    sequence_latent_flow,
    spline_flow,
)
from nvf_sklearn._engine.step import TrainStep, capture


def _tabular(kind):
    if kind == "NF":
        return FlowDensity(spline_flow(3, n_layers=2, hidden_size=8, lu_linear=True))
    objective, affine = kind.split()[1:3]
    flow = spline_flow(3, context_size=5, n_layers=2, hidden_size=8, lu_linear=True, state_affine=affine,
                       state_splines="splines" in kind)  # fmt: skip
    states = 3 if "subset" in kind else None
    return LatentFlowDensity(flow, 5, encoder_hidden_sizes=(8,), objective=objective, training_states=states)


def _image(kind):
    if kind == "NF image":
        return ImageFlowDensity(ImageFlow((1, 4, 4), n_layers_per_scale=2, hidden_channels=4, logit_alpha=0.05), 5)
    flow = ImageFlow((1, 4, 4), context_channels=2, n_layers_per_scale=2, hidden_channels=4, logit_alpha=0.05)
    return sequence_latent_flow(flow, 3, n_downsamples=1, encoder_channels=4, prior_layers=1, prior_embd=8, top_m=2,
                                n_levels=5)  # fmt: skip


#: The default suite captures one model of each kind of step; the slow suite, the rest
#: (each capture costs one to two seconds on the CPU: the default suite stays under 90 s).
SLOW = pytest.mark.slow
MODELS = [
    "NF", "NVF exact full splines", "NVF exact diagonal subset", "NVF elbo full",
    pytest.param("NVF exact diagonal", marks=SLOW), pytest.param("NVF elbo diagonal", marks=SLOW),
    pytest.param("NF image", marks=SLOW), pytest.param("NVF image", marks=SLOW),
]  # fmt: skip


def _model_and_rows(kind):
    model = _image(kind) if "image" in kind else _tabular(kind)
    initialize_parameters(model, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    if "image" in kind:
        return model, torch.randint(0, 5, (8, 16), generator=generator).float() / 5
    return model, torch.randn(16, 3, generator=generator)


def _steps(model, x, run, n_steps=2):
    """Run ``n_steps`` of every training stage with ``run(step)`` as the step.

    Returns the parameters, and for each a mask of the elements whose gradient
    was rounding noise in some stage (root mean square above zero and below 1e-6, e.g. an
    attention key bias, whose gradient is zero in exact arithmetic): Adam
    scales noise to a step of up to the learning rate, so two correct
    computations can move those elements differently.
    """
    generator = torch.Generator().manual_seed(2)
    weights = torch.rand(x.shape[0], generator=generator) + 0.5
    noise = {id(p): torch.zeros_like(p, dtype=torch.bool) for p in model.parameters()}
    model.begin_training(x)
    for stage in model.training_stages():
        model.set_training_stage(stage)
        trained = [p for p in model.parameters() if p.requires_grad]
        step = TrainStep(model, trained, 1e-2, 5.0)
        function = run(step)
        for _ in range(n_steps):
            function(x, weights, model.training_inputs(torch.arange(x.shape[0]), generator))
        assert torch.isfinite(step.totals).all()
        second_moment = step.optimizer.second_moment
        noisy = (second_moment > 0) & (second_moment < (1 - step.optimizer.beta2**n_steps) * 1e-12)
        for p, part in zip(trained, noisy.split([p.numel() for p in trained])):
            noise[id(p)] |= part.view_as(p)
    model.end_training()
    return [p.detach().clone() for p in model.parameters()], [noise[id(p)] for p in model.parameters()]


@pytest.mark.parametrize("kind", MODELS)
def test_the_training_step_captures_as_one_graph_and_equals_the_eager_step(kind):
    """fullgraph=True makes any graph break an error; the "eager" backend runs dynamo's capture on the CPU."""
    model, x = _model_and_rows(kind)
    reference, _ = _model_and_rows(kind)
    captured, _ = _steps(model, x, lambda step: capture(step.run_eager, backend="eager"))
    eager, noise = _steps(reference, x, lambda step: step.run_eager)
    assert sum(n.sum() for n in noise) < 0.01 * sum(n.numel() for n in noise)
    for a, b, noisy in zip(captured, eager, noise):
        torch.testing.assert_close(a[~noisy], b[~noisy], atol=1e-6, rtol=1e-5)


def test_a_failed_capture_falls_back_to_eager_with_one_warning_and_the_same_fit(monkeypatch):
    X, _ = make_moons(300, noise=0.1, random_state=0)
    settings = dict(n_layers=2, hidden_size=8, max_epochs=3, random_state=0, device="cpu")
    eager = NFDensity(compile=False, **settings).fit(X)

    def broken_capture(function, **options):
        def run(*args):
            raise RuntimeError("no compiler here")

        return run

    monkeypatch.setattr(step_module, "capture", broken_capture)
    with pytest.warns(RuntimeWarning, match="compiling the training step failed.*no compiler here") as record:
        fallback = NFDensity(compile=True, **settings).fit(X)
    assert sum("compiling" in str(w.message) for w in record) == 1
    np.testing.assert_array_equal(fallback.score_samples(X), eager.score_samples(X))


@pytest.mark.slow  # compiles the step of several fits: the default suite stays under 90 s
def test_one_process_captures_steps_for_many_fits():
    """Each fit captures its own step; dynamo's recompile limit (8 per code object) must not end a grid search."""
    for seed in range(10):
        model = FlowDensity(spline_flow(2, n_layers=1, hidden_size=4))
        initialize_parameters(model, torch.Generator().manual_seed(seed))
        step = TrainStep(model, list(model.parameters()), 1e-3, 5.0)
        capture(step.run_eager, backend="eager")(torch.randn(8, 2), torch.ones(8), None)
        assert torch.isfinite(step.totals).all()
