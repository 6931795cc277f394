"""What a trainer and its worker say (events) and what the app tells a worker (commands).

Both are small picklable dataclasses, so the worker process puts them on its
pipes unchanged; each kind of news has its own type (no catch-all status dict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ---- events: trainer and worker -> app ---------------------------------------------


@dataclass
class Progress:
    """One optimisation step done."""

    step: int
    total_steps: int
    epoch: float
    losses: dict[str, float]
    examples_per_s: float
    eta_s: float
    lrs: dict[str, float] = field(default_factory=dict)  # per optimiser, as used in this step

    @property
    def lr(self) -> float:
        return next(iter(self.lrs.values()), float("nan"))


@dataclass
class Preview:
    step: int
    image: np.ndarray  # uint8 grid, (H, W) or (H, W, 3)


@dataclass
class TripletPreview(Preview):
    """A translation model's preview: for each direction ("AtoB", "BtoA") the real pictures, their
    translations and their round trips, each uint8 (N, H, W) or (N, H, W, 3); ``image`` shows all."""

    triplets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class Metrics:
    """Quality figures measured when a checkpoint was written (also stored in it)."""

    step: int
    values: dict[str, Any]


@dataclass
class CheckpointWritten:
    step: int
    path: str


@dataclass
class Diverged:
    """A loss became NaN or infinite: nothing is saved past ``last_good_step``."""

    step: int
    losses: dict[str, float]
    last_good_step: int
    last_good_path: str

    @property
    def message(self) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in self.losses.items() if not np.isfinite(v))
        kept = (f"the last good checkpoint is step {self.last_good_step} ({self.last_good_path})"
                if self.last_good_path else "no checkpoint was written yet")
        return f"the loss is not finite at step {self.step} ({bad}); nothing was saved, {kept}"


@dataclass
class Started:
    pid: int
    threads: int
    device: str
    step: int
    total_steps: int
    dataset: str
    qt_loaded: bool
    history: dict[str, list[float]] = field(default_factory=dict)  # a resumed run's losses


@dataclass
class Paused:
    step: int
    reason: str = ""  # empty: the user paused


@dataclass
class Resumed:
    step: int


@dataclass
class Rewound:
    """After a divergence the run went back to its last good checkpoint (or its start)."""

    step: int
    history: dict[str, list[float]]


@dataclass
class OptionChanged:
    name: str
    value: float
    step: int


@dataclass
class Finished:
    step: int
    path: str
    stopped_early: bool = False


@dataclass
class Failed:
    message: str
    traceback: str = ""
    step: int | None = None  # None: before the first step was known


@dataclass
class CommandRefused:
    """A command the worker could not carry out (the run goes on)."""

    command: str
    reason: str


Event = (Progress | Preview | Metrics | CheckpointWritten | Diverged | Started | Paused | Resumed
         | Rewound | OptionChanged | CommandRefused | Finished | Failed)


# ---- commands: app -> worker ---------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    """Continue after a pause (after a divergence: from the last good checkpoint)."""


@dataclass(frozen=True)
class Stop:
    """Finish the current step, save a checkpoint and exit."""


@dataclass(frozen=True)
class SaveNow:
    pass


@dataclass(frozen=True)
class SetOption:
    """Change a live option (the family descriptor's ``live_options``), e.g. ``lr``."""

    name: str
    value: float


@dataclass(frozen=True)
class Detach:
    """Train on headless after the app exits."""


Command = Pause | Resume | Stop | SaveNow | SetOption | Detach
