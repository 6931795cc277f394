"""The event protocol every trainer speaks, headless, in the worker or under torchrun.

Events are small picklable dataclasses, so the worker process can put them on
a multiprocessing queue unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: float
    losses: dict[str, float]
    examples_per_s: float
    eta_s: float
    lr: float


@dataclass
class Preview:
    step: int
    image: np.ndarray  # uint8 grid, (H, W) or (H, W, 3)


@dataclass
class CheckpointWritten:
    step: int
    path: str


@dataclass
class Finished:
    step: int
    path: str
    stopped_early: bool = False


@dataclass
class Failed:
    message: str
    traceback: str = ""
    step: int = -1


@dataclass
class Status:
    """A state change the worker reports (paused, resumed, lr changed, ...)."""

    state: str
    detail: dict = field(default_factory=dict)


Event = Progress | Preview | CheckpointWritten | Finished | Failed | Status
