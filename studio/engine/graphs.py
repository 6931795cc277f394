"""The interactive graphs of each family: the calls a panel makes on every gesture.

A graph is a torch module with named inputs and outputs. Several named inputs
(per-layer styles, per-layer noise) are the normal case, so every backend takes
and returns dicts of arrays. The same specs drive ONNX export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # example shape; dim 0 is the dynamic batch
    dtype: str = "float32"


@dataclass
class GraphSpec:
    name: str
    module: "nn.Module"
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(0)
        return {s.name: torch.randn((batch,) + s.shape[1:], generator=g) for s in self.inputs}
