"""The trainer base class: one loop, one event protocol, exact resume.

A family trainer supplies the model, one optimisation step and a preview
grid. The base class owns everything else: batching, the learning-rate
schedule, checkpoints (weights, optimiser, RNG and loss history in one
safetensors file), the JSONL loss log and the event stream. It knows nothing
about Qt or processes, so the same code runs headless, in the app's worker
and under torchrun.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from studio.data.datasets import ImageDataset
from studio.core.checkpoint import (
    OPTIMIZER_PREFIX,
    RNG_PREFIX,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from studio.training.events import CheckpointWritten, Event, Finished, Preview, Progress

HISTORY_PREFIX = "history/"
LOG_NAME = "log.jsonl"


@dataclass
class TrainOptions:
    family: str
    out: str
    data: str | None = None
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
    model: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested, but torch sees no CUDA GPU")
    return torch.device(name)


class Trainer:
    family = ""
    # Per-family defaults merged under TrainOptions.model.
    default_model: dict[str, Any] = {}

    def __init__(self, options: TrainOptions, dataset: ImageDataset):
        self.options = options
        self.options.model = {**self.default_model, **options.model}
        self.dataset = dataset
        self.device = pick_device(options.device)
        self.out = Path(options.out)
        torch.manual_seed(options.seed)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.model = self.build_model(self.options.model).to(self.device)
        self.optimizer = self.build_optimizer()
        self.step = 0
        self.base_lr = options.lr
        self.history: dict[str, list[float]] = {"step": []}
        if not 0 <= options.holdout < len(dataset):
            raise ValueError(f"holdout {options.holdout} must be below the dataset size {len(dataset)}")
        n_train = len(dataset) - options.holdout
        self._images = torch.from_numpy(dataset.images[:n_train])
        # Metrics are measured on held-out images when there are any.
        self.eval_images = dataset.images[n_train:] if options.holdout else dataset.images
        self._order = torch.randperm(n_train, generator=self.generator)
        self._cursor = 0

    # ---- what a family provides -------------------------------------------------
    def build_model(self, config: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """A uint8 grid of samples showing how training is going."""
        raise NotImplementedError

    def metrics(self) -> dict[str, Any]:
        """Measured quality figures stored in the checkpoint metadata."""
        return {}

    def build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.options.lr)

    # ---- the loop ---------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        n_train = len(self._images)
        bs = min(self.options.batch_size, n_train)
        if self._cursor + bs > len(self._order):
            self._order = torch.randperm(n_train, generator=self.generator)
            self._cursor = 0
        idx = self._order[self._cursor: self._cursor + bs]
        self._cursor += bs
        return self._images[idx].to(self.device, non_blocking=True)

    def lr_at(self, step: int) -> float:
        if self.options.schedule == "cosine":
            frac = min(step / max(1, self.options.steps), 1.0)
            return self.base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        return self.base_lr

    def set_lr(self, lr: float) -> None:
        """Change the learning rate mid-run; the schedule scales from the new value."""
        self.base_lr = float(lr)

    @property
    def epoch(self) -> float:
        return self.step * self.options.batch_size / max(1, len(self._images))

    def run(self, until: int | None = None) -> Iterator[Event]:
        """Train up to step ``until`` (default options.steps), yielding events."""
        until = self.options.steps if until is None else until
        self.model.train()
        t0, s0 = time.perf_counter(), self.step
        while self.step < until:
            lr = self.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            losses = self.train_step(self.next_batch())
            self.step += 1
            self._record(losses)
            elapsed = time.perf_counter() - t0
            rate = (self.step - s0) / elapsed if elapsed > 0 else 0.0
            eta = (until - self.step) / rate if rate > 0 else float("inf")
            yield Progress(self.step, until, self.epoch, losses,
                           rate * self.options.batch_size, eta, lr)
            if self.options.preview_every and self.step % self.options.preview_every == 0:
                yield Preview(self.step, self._preview())
            if self.options.checkpoint_every and self.step % self.options.checkpoint_every == 0:
                yield CheckpointWritten(self.step, str(self.save_run_checkpoint()))
        path = self.save_run_checkpoint()
        yield Finished(self.step, str(path))

    def _preview(self) -> np.ndarray:
        self.model.eval()
        try:
            return self.preview()
        finally:
            self.model.train()

    def _record(self, losses: dict[str, float]) -> None:
        self.history["step"].append(float(self.step))
        for k, v in losses.items():
            self.history.setdefault(k, []).append(float(v))
        if self.options.log_every and self.step % self.options.log_every == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / LOG_NAME, "a") as f:
                f.write(json.dumps({"step": self.step, **losses, "time": time.time()}) + "\n")

    # ---- checkpoints ------------------------------------------------------------
    def to_checkpoint(self, with_training_state: bool = True) -> Checkpoint:
        weights = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        state: dict[str, np.ndarray] = {}
        extra: dict[str, Any] = {"options": self.options.to_dict(), "base_lr": self.base_lr}
        if with_training_state:
            opt = self.optimizer.state_dict()
            for idx, slots in opt["state"].items():
                for key, value in slots.items():
                    tensor = value if torch.is_tensor(value) else torch.tensor(value)
                    state[f"{OPTIMIZER_PREFIX}{idx}/{key}"] = tensor.detach().cpu().numpy()
            extra["param_groups"] = opt["param_groups"]
            state[RNG_PREFIX + "torch"] = torch.get_rng_state().numpy()
            state[RNG_PREFIX + "generator"] = self.generator.get_state().numpy()
            if self.device.type == "cuda":  # the noise of a CUDA step comes from the CUDA generator
                state[RNG_PREFIX + "cuda"] = torch.cuda.get_rng_state(self.device).numpy()
            state[RNG_PREFIX + "order"] = self._order.numpy()
            extra["cursor"] = self._cursor
            for k, v in self.history.items():
                state[HISTORY_PREFIX + k] = np.asarray(v, dtype=np.float32)
        return Checkpoint(
            family=self.family,
            config=self.options.model,
            weights=weights,
            dataset=self.dataset.name,
            step=self.step,
            metrics=self.metrics(),
            training_state=state,
            extra=extra,
        )

    def save_run_checkpoint(self) -> Path:
        """Write last.safetensors and a numbered copy; prune old numbered ones."""
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt = self.to_checkpoint()
        save_checkpoint(ckpt, self.out / f"step_{self.step:07d}.safetensors")
        last = save_checkpoint(ckpt, self.out / "last.safetensors")
        old = sorted(self.out.glob("step_*.safetensors"))
        for p in old[: max(0, len(old) - max(1, self.options.keep))]:
            p.unlink(missing_ok=True)
        return last

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt``: weights, optimiser, RNG, schedule and loss history."""
        if ckpt.family != self.family:
            raise CheckpointError(f"{ckpt.path}: a '{ckpt.family}' checkpoint cannot resume a '{self.family}' run")
        state = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()}
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{ckpt.path}: weights do not fit this model ({exc})") from exc
        ts = ckpt.training_state
        groups = ckpt.extra.get("param_groups")
        if groups:
            opt_state: dict[int, dict[str, torch.Tensor]] = {}
            for name, arr in ts.items():
                if name.startswith(OPTIMIZER_PREFIX):
                    idx, key = name[len(OPTIMIZER_PREFIX):].split("/", 1)
                    opt_state.setdefault(int(idx), {})[key] = torch.from_numpy(np.array(arr)).to(self.device)
            for slots in opt_state.values():  # Adam keeps its step count on the CPU
                if "step" in slots:
                    slots["step"] = slots["step"].cpu()
            self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        if RNG_PREFIX + "torch" in ts:
            torch.set_rng_state(torch.from_numpy(np.array(ts[RNG_PREFIX + "torch"])))
            self.generator.set_state(torch.from_numpy(np.array(ts[RNG_PREFIX + "generator"])))
            self._order = torch.from_numpy(np.array(ts[RNG_PREFIX + "order"]))
            self._cursor = int(ckpt.extra.get("cursor", 0))
        if RNG_PREFIX + "cuda" in ts and self.device.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(np.array(ts[RNG_PREFIX + "cuda"])), self.device)
        self.history = {
            k[len(HISTORY_PREFIX):]: [float(x) for x in v]
            for k, v in ts.items() if k.startswith(HISTORY_PREFIX)
        } or {"step": []}
        self.base_lr = float(ckpt.extra.get("base_lr", self.base_lr))
        self.step = ckpt.step

    def resume_from(self, path: str | Path) -> None:
        self.restore(load_checkpoint(path, family=self.family, with_training_state=True))
        self._truncate_log(self.step)

    def _truncate_log(self, step: int) -> None:
        """Drop log lines written after ``step`` (a run killed past its last checkpoint),
        so the resumed run's log has no repeated steps and no jump back."""
        log = self.out / LOG_NAME
        if not log.exists():
            return
        lines = log.read_text().splitlines(keepends=True)
        keep = []
        for line in lines:
            try:
                if int(json.loads(line)["step"]) > step:
                    continue
            except (ValueError, KeyError, TypeError):
                continue  # a half-written last line
            keep.append(line if line.endswith("\n") else line + "\n")
        if keep != lines:
            tmp = log.with_name(LOG_NAME + ".tmp")
            tmp.write_text("".join(keep))
            tmp.replace(log)
