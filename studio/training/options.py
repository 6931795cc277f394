"""What a run is asked to do (TrainOptions) and the checks that need no dataset and no torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEDULES = ("constant", "cosine")


@dataclass
class TrainOptions:
    family: str
    out: str
    data: str | None = None
    # Further unpaired domains a family draws from (CycleGAN: {"b": "path/to/domain_b"}).
    extra_data: dict[str, str] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    schedule: str = "constant"  # or "cosine"
    checkpoint_every: int = 500
    preview_every: int = 100
    log_every: int = 10
    keep: int = 3  # numbered checkpoints kept besides last.safetensors
    holdout: int = 0  # images kept out of training, for the metrics in the checkpoint
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # 0: leave one core free
    workers: int = 0  # DataLoader worker processes (0: decode in the training process)
    model: dict[str, Any] = field(default_factory=dict)
    # Fine-tuning: the run starts from this checkpoint's shipped weights (its other modules,
    # a GAN's discriminator, and the optimisers start fresh). None: from random weights.
    init: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainOptions":
        """Options saved by this or an older version (unknown keys are dropped)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def option_problems(o: TrainOptions) -> list[str]:
    """Every problem with the hyperparameters, as short phrases (empty: all fine)."""
    problems = []
    if not isinstance(o.steps, int) or o.steps < 1:
        problems.append("steps must be at least 1")
    if not isinstance(o.batch_size, int) or o.batch_size < 1:
        problems.append("batch size must be at least 1")
    if not (isinstance(o.lr, (int, float)) and math.isfinite(o.lr) and o.lr > 0):
        problems.append("learning rate must be a positive number")
    if o.schedule not in SCHEDULES:
        problems.append(f"unknown schedule '{o.schedule}' ({' or '.join(SCHEDULES)})")
    for name in ("checkpoint_every", "preview_every", "log_every", "threads", "workers", "holdout"):
        if not isinstance(getattr(o, name), int) or getattr(o, name) < 0:
            problems.append(f"{name.replace('_', ' ')} must be a whole number, not negative")
    if not isinstance(o.keep, int) or o.keep < 1:
        problems.append("keep must be at least 1")
    if o.device not in ("auto", "cpu", "cuda") and not str(o.device).startswith("cuda:"):
        problems.append(f"unknown device '{o.device}' (auto, cpu, cuda or cuda:N)")
    if not str(o.out).strip():
        problems.append("choose an output folder")
    if not isinstance(o.model, dict):
        problems.append("model options must be KEY=VALUE pairs")
    return problems
