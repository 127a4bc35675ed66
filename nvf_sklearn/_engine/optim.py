"""Adam as device-side tensor arithmetic on one flat vector, for a training step that captures as one graph.

``torch.optim.Adam`` graph-breaks under ``torch.compile`` (its ``step`` and
``zero_grad`` are excluded from tracing), and with a tensor learning rate it
refuses ``foreach`` on the CPU. This version has the same arithmetic as
``torch.optim.Adam``, with the learning rate and step count held in tensors,
so moving the learning rate neither recompiles a captured step nor
synchronises with the host.

The moments live in one flat vector over all parameters, and the step takes
the gradient as one flat vector (:func:`flatten`): a dozen operations per step
whatever the number of parameter tensors. Per-tensor (``foreach``) arithmetic
costs one dispatch per tensor and operation on a CPU, which for the 50 to 100
small tensors of a spline flow was a twentieth of a training step.
"""

from __future__ import annotations

import torch
from torch import Tensor


def flatten(tensors: list[Tensor]) -> Tensor:
    """The tensors' elements in one vector, in order (what :meth:`Adam.step` and the clipping take)."""
    return torch.cat([t.reshape(-1) for t in tensors])


class Adam:
    """Adam (Kingma & Ba, 2015) over a fixed list of tensors, with decoupled weight decay.

    Parameters
    ----------
    parameters : list of Tensor
        Updated in place by :meth:`step`.
    learning_rate : Tensor
        Float64 tensor of shape (1,) read at every step (the caller moves it
        in place); float64 keeps the update within a rounding error of
        ``torch.optim.Adam``.
    betas, eps : as in ``torch.optim.Adam``.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW): ``p -= lr * weight_decay * p`` before the update.
    decayed : list of bool, optional
        Which of ``parameters`` weight decay acts on (default: all).
    """

    def __init__(
        self,
        parameters: list[Tensor],
        learning_rate: Tensor,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decayed: list[bool] | None = None,
    ) -> None:
        self.parameters = parameters
        self.decayed = parameters if decayed is None else [p for p, d in zip(parameters, decayed) if d]
        self.learning_rate = learning_rate
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.sizes = [p.numel() for p in parameters]
        reference = parameters[0]
        self.first_moment = reference.new_zeros(sum(self.sizes))
        self.second_moment = reference.new_zeros(sum(self.sizes))
        # Bias corrections in float64, as torch.optim.Adam computes them on the host. Shape (1,), not 0-d:
        # torch.compile's CPU backend (torch 2.13) drops in-place updates of 0-d float64 tensors.
        self.step_count = torch.zeros(1, dtype=torch.float64, device=learning_rate.device)

    @torch.no_grad()
    def step(self, gradient: Tensor) -> None:
        """One update of every parameter from the flat ``gradient`` (:func:`flatten` of the parameters' gradients)."""
        dtype = self.first_moment.dtype
        self.step_count.add_(1.0)
        step, learning_rate = self.step_count[0], self.learning_rate[0]
        if self.weight_decay and self.decayed:
            torch._foreach_mul_(self.decayed, (1.0 - learning_rate * self.weight_decay).to(dtype))
        self.first_moment.lerp_(gradient, 1.0 - self.beta1)
        self.second_moment.mul_(self.beta2).addcmul_(gradient, gradient, value=1.0 - self.beta2)
        bias_correction1 = 1.0 - self.beta1**step
        bias_correction2_sqrt = (1.0 - self.beta2**step).sqrt()
        denominator = (self.second_moment.sqrt() / bias_correction2_sqrt.to(dtype)).add_(self.eps)
        update = (self.first_moment / denominator).mul_((learning_rate / bias_correction1).to(dtype))
        torch._foreach_sub_(self.parameters, [u.view_as(p) for u, p in zip(update.split(self.sizes), self.parameters)])

    @torch.no_grad()
    def reset(self) -> None:
        """Zero moments and step count in place, as a fresh optimiser (a captured step keeps its tensors)."""
        self.first_moment.zero_()
        self.second_moment.zero_()
        self.step_count.zero_()

    def state_dict(self) -> dict[str, Tensor]:
        """Copies of the moments and the step count."""
        return {
            "first_moment": self.first_moment.clone(),
            "second_moment": self.second_moment.clone(),
            "step_count": self.step_count.clone(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore :meth:`state_dict` in place (a captured step keeps reading the same tensors)."""
        self.first_moment.copy_(state["first_moment"])
        self.second_moment.copy_(state["second_moment"])
        self.step_count.copy_(state["step_count"])


def clip_gradient_norm_(gradient: Tensor, max_norm: float) -> Tensor:
    """Scale the flat ``gradient`` in place so its 2-norm is at most ``max_norm``; return the norm.

    Same rule as ``torch.nn.utils.clip_grad_norm_``, without host synchronisation.
    """
    norm = torch.linalg.vector_norm(gradient)
    gradient.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm
