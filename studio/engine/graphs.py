"""The interactive graphs of each family: the calls a panel makes on every gesture.

A graph is a torch module with named inputs and outputs. Several named inputs
(per-layer styles, per-layer noise) are the normal case, so every backend takes
and returns dicts of arrays. The same specs drive ONNX export.

The contract of an input is its dtype and which of its axes may vary: the
batch always, height and width where a fully convolutional graph allows it.
Axes that share a name have the same size in every call (one batch for all
inputs). ONNX export marks exactly these axes dynamic, and both backends feed
each input in its declared dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

DTYPES = ("float32", "int64")
BATCH = ((0, "batch"),)


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # an example shape (dim 0 is the batch)
    dtype: str = "float32"  # "float32" or "int64"
    dynamic: tuple[tuple[int, str], ...] = BATCH  # (axis, name) of every axis that may vary
    high: int = 2  # int64 examples are drawn from [0, high): indices must stay in range

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"input '{self.name}': dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        for axis, _ in self.dynamic:
            if not 0 <= axis < len(self.shape):
                raise ValueError(f"input '{self.name}': dynamic axis {axis} is outside its shape {self.shape}")

    @property
    def numpy_dtype(self):
        import numpy as np

        return np.dtype(self.dtype)


def spatial(batch_axis: int = 0) -> tuple[tuple[int, str], ...]:
    """Dynamic axes of an (N, C, H, W) image input: batch, height and width."""
    return ((batch_axis, "batch"), (2, "height"), (3, "width"))


@dataclass
class GraphSpec:
    name: str
    module: "nn.Module"
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    # Called many times in a row with the same shapes (a sampler's steps): on CUDA the
    # torch backend captures it once as a CUDA graph and replays it.
    cuda_graph: bool = False

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(0)
        out = {}
        for s in self.inputs:
            shape = (batch,) + tuple(s.shape[1:])
            if s.dtype == "int64":
                out[s.name] = torch.randint(0, s.high, shape, generator=g, dtype=torch.int64)
            else:
                out[s.name] = torch.randn(shape, generator=g)
        return out
