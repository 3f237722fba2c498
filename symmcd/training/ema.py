"""Exponential moving average of network weights.

Diffusion denoisers sample noticeably better from an EMA of their weights than from the raw
weights. The average is a frozen copy of the network kept as a submodule, so it moves with the
module between devices, is saved in every Lightning checkpoint, and is what validation and
export use.
"""

import copy

import torch
from torch import nn


class ExponentialMovingAverage(nn.Module):
    """Frozen shadow copy of ``model`` updated as ``shadow <- decay * shadow + (1 - decay) * w``.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates so
    the average is not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model)
        self.shadow.requires_grad_(False)
        self.shadow.eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def effective_decay(self) -> float:
        """Decay used for the next update (warm-up ramp capped at ``self.decay``)."""
        n = int(self.num_updates)
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow weights one step towards ``model``'s current weights."""
        weight = 1.0 - self.effective_decay()
        shadow_params = list(self.shadow.parameters())
        model_params = [p.detach() for p in model.parameters()]
        if len(shadow_params) != len(model_params):
            raise ValueError("EMA shadow and model have different parameter lists")
        torch._foreach_lerp_(shadow_params, model_params, weight)
        for shadow_buffer, buffer in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow_buffer.copy_(buffer)
        self.num_updates += 1

    def train(self, mode: bool = True) -> "ExponentialMovingAverage":
        """Keep the shadow network in eval mode whatever the parent's mode."""
        super().train(mode)
        self.shadow.eval()
        return self
