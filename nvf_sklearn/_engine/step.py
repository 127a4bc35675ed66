"""The training step: forward, weighted loss, backward, clipping, Adam, running sums — one function.

:class:`TrainStep` keeps everything the step reads or writes in device
tensors (learning rate, schedule progress, optimiser moments, the epoch's
running loss and weight sums), so the step is a pure function of its batch
and has no host synchronisation. That makes it capturable: with
``compile=True`` it runs under ``torch.compile(fullgraph=True)`` (CUDA graphs
on a GPU, ``mode="reduce-overhead"``); a capture that fails falls back to the
same function run eagerly, with one warning that says why.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from .base import DensityModel
from .optim import Adam, clip_gradient_norm_, flatten

#: Maps the flat gradient (:func:`~.optim.flatten`) to the one to apply, e.g. averaged over processes.
GradientReducer = Callable[[Tensor], Tensor]


def capture(function: Callable, *, backend: str = "inductor", mode: str | None = None) -> Callable:
    """``function`` compiled as one graph (``fullgraph=True``): a graph break is an error.

    Gradients are taken inside the graph (``torch.autograd.grad``), which
    dynamo traces only with its ``trace_autograd_ops`` option, set here for
    the duration of each call. A bound method is compiled through its own
    copy of the code: dynamo keeps one cache per code object, so steps of
    different models (one per fit) neither recompile each other's entry up to
    dynamo's recompile limit nor outlive their step.
    """
    compiled = torch.compile(_own_code(function), fullgraph=True, dynamic=False, backend=backend, mode=mode)

    def run(*args):
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return compiled(*args)

    return run


def _own_code(function: Callable) -> Callable:
    """``function`` (a bound method) rebuilt on a private copy of its code object."""
    if not isinstance(function, types.MethodType):
        return function
    plain = function.__func__
    copy = types.FunctionType(
        plain.__code__.replace(), plain.__globals__, plain.__name__, plain.__defaults__, plain.__closure__
    )
    return types.MethodType(copy, function.__self__)


class TrainStep:
    """One optimisation step of ``model`` on a batch ``(x, weights, inputs)``.

    Parameters
    ----------
    model : DensityModel
    parameters : list of Tensor
        The trainable parameters (those of the current training stage).
    learning_rate : float
        Initial learning rate. The schedule moves ``step.learning_rate`` (shape
        (1,)) and ``step.progress`` (0-d) in place, so a captured step sees them.
    gradient_clip : float
        Largest joint 2-norm of the gradients.
    weight_decay : float, default=0.0
        Decoupled (AdamW) weight decay of the trained parameters that
        ``model.decayed_parameters()`` names.
    reduce_gradients : callable, optional
        Applied to the flat gradient before clipping (data-parallel averaging).
    compile : bool, default=False
        Capture the step with :func:`capture`; falls back to eager on failure.
    average_decay : float, optional
        Keep an exponential moving average of the parameters, updated after
        every step with this decay; :meth:`averaged` swaps it in.
    """

    def __init__(
        self,
        model: DensityModel,
        parameters: list[Tensor],
        learning_rate: float,
        gradient_clip: float,
        weight_decay: float = 0.0,
        reduce_gradients: GradientReducer | None = None,
        compile: bool = False,
        average_decay: float | None = None,
    ) -> None:
        self.model = model
        self.parameters = parameters
        self.gradient_clip = gradient_clip
        self.reduce_gradients = reduce_gradients
        device, dtype = parameters[0].device, parameters[0].dtype
        self.learning_rate = torch.full((1,), learning_rate, dtype=torch.float64, device=device)
        self.progress = torch.zeros((), dtype=dtype, device=device)
        #: Running sums of ``loss * weight`` and ``weight`` over the batches since :meth:`reset_totals`.
        self.totals = torch.zeros(2, dtype=dtype, device=device)
        decayed = {id(p) for p in model.decayed_parameters()}
        self.optimizer = Adam(parameters, self.learning_rate, weight_decay=weight_decay,
                              decayed=[id(p) in decayed for p in parameters])  # fmt: skip
        self.average_decay = average_decay
        self.average = [p.detach().clone() for p in parameters] if average_decay is not None else None
        self.compile_error: str | None = None
        self._run = self.run_eager
        if compile:
            mode = "reduce-overhead" if device.type == "cuda" else None
            self._run = self._first_captured_call(capture(self.run_eager, mode=mode))

    def run_eager(self, x: Tensor, weights: Tensor, inputs: Tensor | None) -> None:
        """The step itself: weighted mean loss, gradients, clipping, Adam, running sums."""
        total_weight = weights.sum()
        loss = (self.model.training_loss(x, inputs, self.progress) * weights).sum() / total_weight
        gradients = torch.autograd.grad(loss, self.parameters, allow_unused=True)
        gradient = flatten([torch.zeros_like(p) if g is None else g for p, g in zip(self.parameters, gradients)])
        if self.reduce_gradients is not None:
            gradient = self.reduce_gradients(gradient)
        clip_gradient_norm_(gradient, self.gradient_clip)
        self.optimizer.step(gradient)
        if self.average is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.average, self.parameters, 1.0 - self.average_decay)
        self.totals.add_(torch.stack([loss.detach() * total_weight, total_weight]))

    def __call__(self, x: Tensor, weights: Tensor, inputs: Tensor | None) -> None:
        self._run(x, weights, inputs)

    def _first_captured_call(self, captured: Callable) -> Callable:
        """Try the captured step on the first batch; on failure warn once and keep the eager one."""

        def first_call(x: Tensor, weights: Tensor, inputs: Tensor | None) -> None:
            try:
                captured(x, weights, inputs)
            except Exception as error:  # any failure to capture: train eagerly instead
                self.compile_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                warnings.warn(
                    f"compiling the training step failed ({self.compile_error}); training continues "
                    "without compilation (compile=False gives the same result without this attempt).",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._run = self.run_eager
                self.run_eager(x, weights, inputs)
                return
            self._run = captured

        return first_call

    # ------------------------------------------------------------ state
    def reset_totals(self) -> None:
        self.totals.zero_()

    def mean_loss(self) -> Tensor:
        """Weighted mean training loss over the batches since :meth:`reset_totals` (a device tensor)."""
        return self.totals[0] / self.totals[1]

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Within the block, the parameters hold their moving average (when one is kept)."""
        if self.average is None:
            yield
            return
        current = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            torch._foreach_copy_(self.parameters, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.parameters, current)

    @torch.no_grad()
    def restart(self) -> None:
        """Fresh optimiser moments, and a weight average that restarts at the current parameters."""
        self.optimizer.reset()
        if self.average is not None:
            torch._foreach_copy_(self.average, self.parameters)

