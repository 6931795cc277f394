"""The trainer protocol every family speaks: one loop, typed events, exact resume.

A family trainer names its modules (``build_modules``), its optimisers
(``build_optimizers``; each gets its own torch LambdaLR schedule, shaped by
``lr_factor``) and does one training step (``train_step``), which may run
any number of optimiser steps (a GAN: n discriminator steps per generator
step) and draw more batches (``next_batch``, also from a second unpaired
domain). Averaged weights come from :class:`studio.training.ema.EMA`
(``add_ema``). The base class owns everything else: DataLoader batches,
schedules, the loss history and log, checkpoints that resume bit for bit,
divergence checks and the event stream. It knows nothing about Qt or
processes: the same code runs headless, in the app's worker and under
torchrun, where only the main rank writes.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from studio.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from studio.data.datasets import check_dataset
from studio.training import state as run_state
from studio.training.context import RunContext
from studio.training.data import Batch, BatchStream, ImageSource, as_source
from studio.training.ema import EMA
from studio.training.events import CheckpointWritten, Diverged, Event, Finished, Metrics, Preview, Progress
from studio.training.options import TrainOptions

LOG_NAME = "log.jsonl"
MAIN = "main"  # the stream of the run's own dataset


class RunFolderError(OSError):
    """The run folder cannot be written; the message names it and the step."""

    def __init__(self, out: Path, step: int, exc: OSError):
        why = exc.strerror or str(exc)
        super().__init__(f"{out}: cannot write to the run folder at step {step} ({why}); "
                         "the last good checkpoint is kept, resume once the folder is writable")
        self.step = step

    def __str__(self) -> str:
        return self.args[0]


class Trainer:
    family = ""
    config_class: type | None = None  # the model's config dataclass: its fields are the valid options
    default_model: dict[str, Any] = {}  # family defaults merged under TrainOptions.model
    extra_domains: tuple[str, ...] = ()  # further unpaired datasets (TrainOptions.extra_data)
    shipped = "model"  # the module whose weights (its EMA's, if it has one) the checkpoint ships

    def __init__(self, options: TrainOptions, dataset, context: RunContext | None = None,
                 extra_data: dict[str, Any] | None = None):
        self.options = options
        self.context = context or RunContext.from_env(options.device)
        self.device = torch.device(self.context.device)
        self.out = Path(options.out)
        self.dataset: ImageSource = as_source(dataset)
        self.options.model = self.configure(options.model, self.dataset)
        if not 0 <= options.holdout < len(self.dataset):
            raise ValueError(f"holdout {options.holdout} must be below the dataset size {len(self.dataset)}")
        train, held = self.dataset.split(len(self.dataset) - options.holdout)
        # Metrics are measured on held-out images when there are any.
        self.eval_data = held if options.holdout else train
        torch.manual_seed(options.seed)  # every rank builds the same initial weights
        self.modules: dict[str, nn.Module] = {
            name: m.to(self.device) for name, m in self.build_modules(dict(self.options.model)).items()}
        if self.context.rank:
            torch.manual_seed(options.seed + self.context.rank)  # but draws its own noise
        self.emas: dict[str, EMA] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.schedulers = {name: LambdaLR(opt, self._lr_lambda(name)) for name, opt in self.optimizers.items()}
        ctx, workers = self.context, options.workers
        self.streams = {MAIN: BatchStream(train, options.batch_size, options.seed, 0, self.device,
                                          ctx.rank, ctx.world_size, workers)}
        extra = extra_data or {}
        for i, domain in enumerate(self.extra_domains, start=1):
            if domain not in extra:
                raise ValueError(f"the {self.family} family needs a second dataset '{domain}' (extra_data)")
            self.streams[domain] = BatchStream(as_source(extra[domain]), options.batch_size, options.seed,
                                               i, self.device, ctx.rank, ctx.world_size, workers)
        self.step = 0
        self.history: dict[str, list[float]] = {"step": []}
        self.diverged: Diverged | None = None
        self._saved_step = -1
        self._last_metrics: dict[str, Any] = {}
        self._schedules_stepped = False
        self.init_from: dict | None = None  # {"path", "step"} of the checkpoint a fine-tune started from

    # ---- what a family provides -------------------------------------------------
    @classmethod
    def model_keys(cls) -> set[str] | None:
        """The model options this family knows (None: any)."""
        if cls.config_class is None:
            return None
        return {k for k in cls.config_class.__dataclass_fields__ if k != "extra"} | set(cls.default_model)

    @classmethod
    def configure(cls, model: dict[str, Any], data: ImageSource) -> dict[str, Any]:
        """The full model config for ``data``; raises ValueError/DatasetError naming the problem.

        Runs in the app before anything is spawned, so it must stay cheap: no weights.
        """
        known = cls.model_keys()
        unknown = sorted(set(model) - known) if known is not None else []
        if unknown:
            raise ValueError(f"unknown {cls.family} model option{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown)} (valid: {', '.join(sorted(known))})")
        return {**cls.default_model, **model}

    @staticmethod
    def fit_image_shape(config: dict[str, Any], data: ImageSource) -> dict[str, Any]:
        """Channels and image size from the data unless the config sets them; they must agree."""
        c, h, _ = data.shape
        config.setdefault("channels", c)
        config.setdefault("image_size", h)
        check_dataset(data, config["channels"], config["image_size"])
        return config

    @classmethod
    def build_modules(cls, config: dict[str, Any]) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.model.parameters(), lr=self.options.lr)}

    def lr_factor(self, optimizer: str, step: int) -> float:
        """The schedule's multiplier of ``optimizer``'s base learning rate at ``step``."""
        if self.options.schedule == "cosine":
            frac = min(step / max(1, self.options.steps), 1.0)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
        return 1.0

    def train_step(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """A uint8 grid of samples showing how training is going."""
        raise NotImplementedError

    def metrics(self) -> dict[str, Any]:
        """Measured quality figures stored in the checkpoint metadata."""
        return {}

    def family_state(self) -> dict[str, torch.Tensor]:
        """Further tensors a family needs to resume exactly (a GAN's image pool, w_avg, ...)."""
        return {}

    def load_family_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def set_live_option(self, name: str, value: float) -> None:
        """Change a hyperparameter mid-run: ``lr`` (every optimiser) or ``lr.NAME`` (one)."""
        if name == "lr":
            targets = list(self.optimizers)
        elif name.startswith("lr.") and name[3:] in self.optimizers:
            targets = [name[3:]]
        else:
            raise KeyError(f"'{name}' cannot change during a {self.family} run")
        for opt_name in targets:
            self._set_base_lr(opt_name, float(value))

    # ---- helpers for families ---------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self.modules["model"]

    def add_ema(self, module: str, decay: float, warmup: bool = True) -> EMA:
        self.emas[module] = EMA(self.modules[module], decay, warmup)
        return self.emas[module]

    def next_batch(self, domain: str = MAIN) -> Batch:
        return self.streams[domain].next()

    def eval_images(self, n: int) -> torch.Tensor:
        """The first ``n`` evaluation images on the device (held-out ones when there are any)."""
        return self.eval_data.first(n).to(self.device)

    def eval_batch(self, n: int | None = None) -> Batch:
        """The first ``n`` (default: all) evaluation images with their labels, on the CPU."""
        n = len(self.eval_data) if n is None else min(n, len(self.eval_data))
        return self.eval_data.__getitems__(list(range(n)))

    @property
    def epoch(self) -> float:
        s = self.streams[MAIN]
        return s.epoch + s.position / s.sampler.batches_per_epoch

    # ---- learning rates -----------------------------------------------------------
    def _lr_lambda(self, name: str):
        return lambda step: self.lr_factor(name, step)  # a plain function: LambdaLR does not save it

    def _set_base_lr(self, name: str, lr: float) -> None:
        sched, opt = self.schedulers[name], self.optimizers[name]
        scale = lr / sched.base_lrs[0]  # further groups keep their ratio to the first
        sched.base_lrs = [b * scale for b in sched.base_lrs]
        for group, base in zip(opt.param_groups, sched.base_lrs):
            group["initial_lr"] = base
        self._sync_lrs()

    def _sync_lrs(self) -> None:
        """Each group's learning rate for the coming step (after a restore or a live change)."""
        for name, sched in self.schedulers.items():
            for group, base in zip(self.optimizers[name].param_groups, sched.base_lrs):
                group["lr"] = base * self.lr_factor(name, self.step)

    def _step_schedules(self) -> None:
        if self._schedules_stepped:
            for sched in self.schedulers.values():
                sched.step()
            return
        # torch checks only the first step for an optimiser that has not stepped yet: a GAN's
        # generator may legitimately wait for its discriminator.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for sched in self.schedulers.values():
                sched.step()
        self._schedules_stepped = True

    def current_lrs(self) -> dict[str, float]:
        return {name: float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}

    # ---- the loop -----------------------------------------------------------------
    def train_mode(self, on: bool) -> None:
        for m in self.modules.values():
            m.train(on)

    def run(self, until: int | None = None) -> Iterator[Event]:
        """Train up to step ``until`` (default options.steps), yielding events.

        A NaN or infinite loss ends the generator with a Diverged event and
        nothing saved; ``diverged`` stays set and the trainer refuses to save.
        """
        until = self.options.steps if until is None else until
        main = self.context.is_main
        self.train_mode(True)
        t0, s0 = time.perf_counter(), self.step
        while self.step < until:
            lrs = self.current_lrs()
            losses = self.train_step(self.next_batch())
            if not all(math.isfinite(v) for v in losses.values()):
                yield self._diverge(losses)
                return
            self.step += 1
            self._step_schedules()
            self._record(losses)
            elapsed = time.perf_counter() - t0
            rate = (self.step - s0) / elapsed if elapsed > 0 else 0.0
            eta = (until - self.step) / rate if rate > 0 else float("inf")
            yield Progress(self.step, until, self.epoch, losses,
                           rate * self.streams[MAIN].batch_size * self.context.world_size, eta, lrs)
            if main and self.options.preview_every and self.step % self.options.preview_every == 0:
                yield self.preview_event()
            if main and self.options.checkpoint_every and self.step % self.options.checkpoint_every == 0:
                yield from self.checkpoint_events()
        if not main:
            yield Finished(self.step, "")
            return
        if self._saved_step != self.step:
            yield from self.checkpoint_events()
        yield Finished(self.step, str(self.out / "last.safetensors"))

    def checkpoint_events(self) -> Iterator[Event]:
        path = self.save_run_checkpoint()
        yield CheckpointWritten(self.step, str(path))
        if self._last_metrics:
            yield Metrics(self.step, self._last_metrics)

    def preview_event(self) -> Preview:
        """This step's Preview (a family may send a richer subclass, such as TripletPreview)."""
        return Preview(self.step, self.render_preview())

    def render_preview(self) -> np.ndarray:
        self.train_mode(False)
        try:
            return self.preview()
        finally:
            self.train_mode(True)

    def _diverge(self, losses: dict[str, float]) -> Diverged:
        from studio.training.runs import newest_valid_checkpoint

        good = newest_valid_checkpoint(self.out) if self.context.is_main else None
        good_step = good[1] if good else 0
        self.diverged = Diverged(self.step + 1, dict(losses), good_step, str(good[0]) if good else "")
        return self.diverged

    def _record(self, losses: dict[str, float]) -> None:
        self.history["step"].append(float(self.step))
        for k, v in losses.items():
            self.history.setdefault(k, []).append(float(v))
        if self.context.is_main and self.options.log_every and self.step % self.options.log_every == 0:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                with open(self.out / LOG_NAME, "a") as f:
                    f.write(json.dumps({"step": self.step, **losses, "time": time.time()}) + "\n")
            except OSError as exc:
                raise RunFolderError(self.out, self.step, exc) from exc

    # ---- checkpoints ------------------------------------------------------------
    def to_checkpoint(self, with_training_state: bool = True) -> Checkpoint:
        if self.diverged is not None:
            raise ValueError(f"nothing saved: the loss diverged at step {self.diverged.step}")
        weights, state, extra = run_state.pack(self, with_training_state)
        self._last_metrics = self.metrics()
        return Checkpoint(family=self.family, config=dict(self.options.model), weights=weights,
                          dataset=self.dataset.name, step=self.step, metrics=self._last_metrics,
                          training_state=state, extra=extra)

    def save_run_checkpoint(self) -> Path:
        """Write a numbered checkpoint and last.safetensors; prune old numbered ones."""
        ckpt = self.to_checkpoint()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(ckpt, self.out / f"step_{self.step:07d}.safetensors")
            last = save_checkpoint(ckpt, self.out / "last.safetensors")
            old = sorted(self.out.glob("step_*.safetensors"))
            for p in old[: max(0, len(old) - max(1, self.options.keep))]:
                p.unlink(missing_ok=True)
        except OSError as exc:
            raise RunFolderError(self.out, self.step, exc) from exc
        self._saved_step = self.step
        return last

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt``: weights, optimisers, schedules, RNG, data position, history."""
        if ckpt.family != self.family:
            raise CheckpointError(f"{ckpt.path}: a '{ckpt.family}' checkpoint cannot resume a '{self.family}' run")
        run_state.unpack(self, ckpt)
        self._sync_lrs()  # a longer run (more --steps) reshapes the schedule from here on
        self.diverged = None
        self._saved_step = self.step

    def start_from_weights(self, path: str | Path) -> None:
        """Fine-tune: the shipped module (and its average) take ``path``'s weights; the rest starts fresh."""
        ckpt = load_checkpoint(path, family=self.family)
        run_state.load_shipped_weights(self, ckpt)
        # Saved with the run and its export, so "trained N steps" can count the source's steps too,
        # and those of whatever the source was itself fine-tuned from.
        earlier = ckpt.extra.get("init")
        before = int(earlier.get("step", 0)) if isinstance(earlier, dict) else 0
        self.init_from = {"path": str(path), "step": int(ckpt.step) + before}

    def resume_from(self, path: str | Path) -> None:
        self.restore(load_checkpoint(path, family=self.family, with_training_state=True))
        if self.context.is_main:
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
            try:
                tmp.write_text("".join(keep))
                tmp.replace(log)
            except OSError as exc:
                raise RunFolderError(self.out, step, exc) from exc
