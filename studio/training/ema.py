"""An exponential moving average of a module's weights, on torch's AveragedModel.

``decay`` is the target; with ``warmup`` the decay used at update n is
min(decay, (1 + n) / (10 + n)) (as many DDPM codebases do), so early
averages follow the weights closely and early checkpoints are usable.
Buffers (BatchNorm statistics) are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class EMA:
    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), not {decay}")
        self.decay = float(decay)
        self.warmup = warmup
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=False)
        self.averaged.requires_grad_(False).eval()
        # AveragedModel copies the weights on its first update: start the average there,
        # so update n (counted from 0 after this) averages with decay_at(n).
        self.averaged.update_parameters(model)

    @property
    def module(self) -> nn.Module:
        """The averaged copy of the model (what sampling uses)."""
        return self.averaged.module

    @property
    def updates(self) -> int:
        return int(self.averaged.n_averaged) - 1

    def decay_at(self, n: int) -> float:
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor],
                 n_averaged: torch.Tensor) -> None:
        d = self.decay_at(int(n_averaged) - 1)
        torch._foreach_lerp_(averaged, current, 1.0 - d)  # averaged = d * averaged + (1 - d) * current

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state)
        self.averaged.n_averaged.fill_(updates + 1)
