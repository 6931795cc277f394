"""What every render request names: the checkpoint and where to run it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A checkpoint file (or run folder) and the backend and device to run it on."""

    checkpoint: str
    backend: str = "onnx"  # "onnx" or "torch"
    device: str = "auto"  # "auto", "cpu" or "cuda"
