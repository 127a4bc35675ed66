"""Adam as device-side tensor arithmetic, for a training step that captures as one graph.

``torch.optim.Adam`` graph-breaks under ``torch.compile`` (its ``step`` and
``zero_grad`` are excluded from tracing), and with a tensor learning rate it
refuses ``foreach`` on the CPU. This version is a few ``torch._foreach_*``
calls with the same arithmetic as ``torch.optim.Adam``: the learning rate and
step count are 0-d tensors, so moving the learning rate neither recompiles a
captured step nor synchronises with the host.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
        self.first_moments = [torch.zeros_like(p) for p in parameters]
        self.second_moments = [torch.zeros_like(p) for p in parameters]
        # Bias corrections in float64, as torch.optim.Adam computes them on the host. Shape (1,), not 0-d:
        # torch.compile's CPU backend (torch 2.13) drops in-place updates of 0-d float64 tensors.
        self.step_count = torch.zeros(1, dtype=torch.float64, device=learning_rate.device)

    @torch.no_grad()
    def step(self, gradients: list[Tensor]) -> None:
        """One update of every parameter from its gradient."""
        dtype = self.parameters[0].dtype
        self.step_count.add_(1.0)
        step, learning_rate = self.step_count[0], self.learning_rate[0]
        if self.weight_decay and self.decayed:
            torch._foreach_mul_(self.decayed, (1.0 - learning_rate * self.weight_decay).to(dtype))
        torch._foreach_lerp_(self.first_moments, gradients, 1.0 - self.beta1)
        torch._foreach_mul_(self.second_moments, self.beta2)
        torch._foreach_addcmul_(self.second_moments, gradients, gradients, 1.0 - self.beta2)
        bias_correction1 = 1.0 - self.beta1**step
        bias_correction2_sqrt = (1.0 - self.beta2**step).sqrt()
        denominators = torch._foreach_sqrt(self.second_moments)
        torch._foreach_div_(denominators, bias_correction2_sqrt.to(dtype))
        torch._foreach_add_(denominators, self.eps)
        updates = torch._foreach_div(self.first_moments, denominators)
        torch._foreach_mul_(updates, (learning_rate / bias_correction1).to(dtype))
        torch._foreach_sub_(self.parameters, updates)

    @torch.no_grad()
    def reset(self) -> None:
        """Zero moments and step count in place, as a fresh optimiser (a captured step keeps its tensors)."""
        torch._foreach_zero_(self.first_moments)
        torch._foreach_zero_(self.second_moments)
        self.step_count.zero_()

    def state_dict(self) -> dict[str, list[Tensor] | Tensor]:
        """Copies of the moments and the step count."""
        return {
            "first_moments": [m.clone() for m in self.first_moments],
            "second_moments": [m.clone() for m in self.second_moments],
            "step_count": self.step_count.clone(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, list[Tensor] | Tensor]) -> None:
        """Restore :meth:`state_dict` in place (a captured step keeps reading the same tensors)."""
        torch._foreach_copy_(self.first_moments, state["first_moments"])
        torch._foreach_copy_(self.second_moments, state["second_moments"])
        self.step_count.copy_(state["step_count"])


def clip_gradient_norm_(gradients: list[Tensor], max_norm: float) -> Tensor:
    """Scale ``gradients`` in place so their joint 2-norm is at most ``max_norm``; return the norm.

    Same rule as ``torch.nn.utils.clip_grad_norm_``, without host synchronisation.
    """
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(gradients)))
    torch._foreach_mul_(gradients, (max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm
