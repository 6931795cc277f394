"""The worker process itself: runs a trainer, sends events, obeys commands (see worker.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from studio.training.events import (
    CheckpointWritten,
    Event,
    Failed,
    Finished,
    Progress,
    Status,
)
from studio.training.runs import INFO_NAME, STOP_FILE

FLUSH_INTERVAL_S = 0.1  # progress events are batched at most this long
PAUSE_POLL_S = 0.2

class _Child:
    def __init__(self, commands, events):
        self.commands = commands
        self.events = events
        self.pending: list[Event] = []
        self.last_flush = time.perf_counter()
        self.paused = False
        self.stop_reason = ""
        self.headless = False  # detached or parent gone: no more events
        self.detached = False
        self.lost = False  # a pipe to the parent broke
        self.commands_closed = False
        self.terminated = False
        self.out: Path | None = None
        self._last_file_check = 0.0

    # events out
    def emit(self, ev: Event) -> None:
        if self.headless:
            return
        self.pending.append(ev)
        now = time.perf_counter()
        if not isinstance(ev, Progress) or now - self.last_flush >= FLUSH_INTERVAL_S:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        self.last_flush = now or time.perf_counter()
        if not self.pending or self.headless:
            self.pending.clear()
            return
        batch, self.pending = self.pending, []
        try:
            self.events.send(batch)
        except (BrokenPipeError, OSError):
            self.parent_gone()

    def parent_gone(self) -> None:
        # Decided in between_steps, after the commands still in the pipe are read:
        # a parent that detached sent "detach" before closing its ends.
        self.headless = True
        self.lost = True

    # commands in
    def _recv(self):
        if self.commands_closed:
            return None
        try:
            if not self.commands.poll():
                return None
            return self.commands.recv()
        except (EOFError, OSError):
            self.commands_closed = True
            self.parent_gone()
            return None

    def handle(self, cmd, trainer) -> None:
        name = cmd[0]
        if name == "pause" and not self.paused:
            self.paused = True
            self.flush()
            self.emit(Status("paused", {"step": trainer.step}))
        elif name == "resume" and self.paused:
            self.paused = False
            self.emit(Status("resumed", {"step": trainer.step}))
        elif name == "stop":
            self.stop_reason = self.stop_reason or "stopped"
        elif name == "save":
            path = trainer.save_run_checkpoint()
            self.emit(CheckpointWritten(trainer.step, str(path)))
        elif name == "lr":
            trainer.set_lr(cmd[1])
            self.emit(Status("lr", {"lr": float(cmd[1]), "step": trainer.step}))
        elif name == "detach":
            self.detached = True
            self.paused = False
            self.headless = True

    def between_steps(self, trainer) -> None:
        """Called after every step: apply commands; block here while paused."""
        while True:
            cmd = self._recv()
            if cmd is not None:
                self.handle(cmd, trainer)
                continue
            if self.lost and not self.detached and not self.stop_reason:
                self.stop_reason = "the app exited"  # no orphan: save and end
            self._check_signals()
            if self.stop_reason or not self.paused:
                return
            if self.headless:
                self.paused = False
                return
            try:
                self.commands.poll(PAUSE_POLL_S)
            except (EOFError, OSError):
                pass  # the next _recv sees it

    def _check_signals(self) -> None:
        if self.terminated and not self.stop_reason:
            self.stop_reason = "terminated"
        if self.headless and self.out is not None:
            now = time.monotonic()
            if now - self._last_file_check >= 1.0:
                self._last_file_check = now
                if (self.out / STOP_FILE).exists():
                    self.stop_reason = self.stop_reason or "stop requested"

    def on_sigterm(self, *_):
        self.terminated = True


def worker_main(options: dict, resume: str | None, commands, events) -> None:
    """The worker process: train, report, obey. Exit code 0 on finish or stop, 1 on error."""
    child = _Child(commands, events)
    signal.signal(signal.SIGTERM, child.on_sigterm)
    # Ctrl+C in the terminal reaches the whole process group; the app decides for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    step = -1
    code = 0
    try:
        step = _train(child, options, resume)
    except BaseException as exc:  # noqa: BLE001 - everything is reported, then exit 1
        child.emit(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc(), step))
        code = 1
    finally:
        try:
            child.flush()
        finally:
            if child.out is not None:
                info = child.out / INFO_NAME
                try:
                    if json.loads(info.read_text()).get("pid") == os.getpid():
                        info.unlink()
                except (OSError, ValueError):
                    pass
                (child.out / STOP_FILE).unlink(missing_ok=True)
            for conn in (commands, events):
                try:
                    conn.close()
                except OSError:
                    pass
    if code:
        sys.exit(code)


def _train(child: _Child, options: dict, resume: str | None) -> int:
    from studio.data.datasets import open_dataset
    from studio.core.threads import configure_torch_threads
    from studio.training.runs import trainer_class
    from studio.training.trainer import TrainOptions

    opts = TrainOptions(**options)
    threads = configure_torch_threads(opts.threads or None)
    dataset = open_dataset(opts.data)
    trainer = trainer_class(opts.family)(opts, dataset)
    if resume:
        trainer.resume_from(resume)
    child.out = Path(opts.out)
    child.out.mkdir(parents=True, exist_ok=True)
    (child.out / STOP_FILE).unlink(missing_ok=True)
    (child.out / INFO_NAME).write_text(json.dumps({"pid": os.getpid(), "family": opts.family,
                                                   "started": time.time()}))
    child.emit(Status("started", {
        "pid": os.getpid(), "threads": threads, "device": str(trainer.device),
        "step": trainer.step, "total_steps": opts.steps, "dataset": dataset.name,
        "qt_loaded": any(m.startswith(("PySide6", "PyQt", "pyqtgraph")) for m in sys.modules),
        "history": {k: list(v) for k, v in trainer.history.items()} if resume else {},
    }))
    child.flush()
    gen = trainer.run()
    try:
        for event in gen:
            child.emit(event)
            if isinstance(event, Progress):
                child.between_steps(trainer)
                if child.stop_reason:
                    break
    finally:
        gen.close()
    if child.stop_reason:
        path = trainer.save_run_checkpoint()
        child.emit(CheckpointWritten(trainer.step, str(path)))
        child.emit(Finished(trainer.step, str(path), stopped_early=True))
    return trainer.step
