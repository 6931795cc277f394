"""The worker process itself: runs a trainer, sends events, obeys commands (see worker.py)."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from studio.training.events import (
    CheckpointWritten,
    CommandRefused,
    Detach,
    Diverged,
    Event,
    Failed,
    Finished,
    OptionChanged,
    Pause,
    Paused,
    Progress,
    Resume,
    Resumed,
    Rewound,
    SaveNow,
    SetOption,
    Started,
    Stop,
)
from studio.training.folders import STOP_FILE

FLUSH_INTERVAL_S = 0.1  # progress events are batched at most this long
PAUSE_POLL_S = 0.2
TAKEOVER_TIMEOUT_S = 10.0  # how long a detached worker waits for the app to hand over the lock


class _Child:
    def __init__(self, commands, events):
        self.commands = commands
        self.events = events
        self.pending: list[Event] = []
        self.last_flush = time.perf_counter()
        self.paused = False
        self.stop_reason = ""
        self.rewind = False  # after a divergence: go back to the last good checkpoint
        self.headless = False  # detached or parent gone: no more events
        self.detached = False
        self.lost = False  # a pipe to the parent broke
        self.commands_closed = False
        self.terminated = False
        self.out: Path | None = None
        self.lock = None  # the run folder's lock, once this process holds it
        self.trainer = None
        self.live: dict[str, float] = {}  # live options set so far (re-applied after a rewind)
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
        # a parent that detached sent Detach before closing its ends.
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
        diverged = trainer is not None and trainer.diverged is not None
        if isinstance(cmd, Pause) and not self.paused:
            self.paused = True
            self.flush()
            self.emit(Paused(trainer.step))
        elif isinstance(cmd, Resume) and self.paused:
            self.paused = False
            if diverged:
                self.rewind = True
            else:
                self.emit(Resumed(trainer.step))
        elif isinstance(cmd, Stop):
            self.stop_reason = self.stop_reason or "stopped"
        elif isinstance(cmd, SaveNow):
            if diverged:
                self.emit(CommandRefused("save", "the loss diverged: there is nothing good to save"))
            else:
                path = trainer.save_run_checkpoint()
                self.emit(CheckpointWritten(trainer.step, str(path)))
        elif isinstance(cmd, SetOption):
            try:
                if not diverged:
                    trainer.set_live_option(cmd.name, cmd.value)
            except (KeyError, ValueError) as exc:
                self.emit(CommandRefused(f"set {cmd.name}", str(exc).strip("'\"")))
            else:
                self.live[cmd.name] = cmd.value
                self.emit(OptionChanged(cmd.name, float(cmd.value), trainer.step))
        elif isinstance(cmd, Detach):
            self.detached = True
            self.headless = True
            self.paused = False
            if diverged:
                self.stop_reason = "diverged, and nobody is watching"
            self.take_lock(TAKEOVER_TIMEOUT_S)

    def take_lock(self, timeout: float) -> bool:
        """Hold the run folder's lock ourselves (the app held it for us until now)."""
        from studio.training.lock import RunFolderBusy, RunLock

        if self.lock is not None or self.out is None:
            return self.lock is not None
        try:
            self.lock = RunLock(self.out).acquire(owner_pid=os.getpid(), timeout=timeout)
        except (RunFolderBusy, OSError):
            return False
        return True

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
            if self.stop_reason or self.rewind or not self.paused:
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
    """The worker process: train, report, obey. Exit code 0 on finish or stop, 1 on error.

    The app holds the run folder's lock for this process; it is taken over
    on Detach (or when the app is gone, for the final save).
    """
    child = _Child(commands, events)
    signal.signal(signal.SIGTERM, child.on_sigterm)
    # Ctrl+C in the terminal reaches the whole process group; the app decides for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    try:
        _train(child, options, resume)
    except BaseException as exc:  # noqa: BLE001 - everything is reported, then exit 1
        step = child.trainer.step if child.trainer is not None else None
        child.emit(Failed(_one_line(exc), traceback.format_exc(), getattr(exc, "step", step)))
        code = 1
    finally:
        try:
            child.flush()
        finally:
            if child.out is not None:
                try:
                    (child.out / STOP_FILE).unlink(missing_ok=True)
                except OSError:
                    pass  # the folder is gone or unwritable: already reported
            if child.lock is not None:
                child.lock.release()
            for conn in (commands, events):
                try:
                    conn.close()
                except OSError:
                    pass
    if code:
        sys.exit(code)


def _one_line(exc: BaseException) -> str:
    from studio.core.checkpoint import CheckpointError
    from studio.data.datasets import DatasetError
    from studio.training.trainer import RunFolderError

    if isinstance(exc, (RunFolderError, DatasetError, CheckpointError)):
        return str(exc)  # already a sentence naming the file
    return f"{type(exc).__name__}: {exc}"


def _train(child: _Child, options: dict, resume: str | None) -> None:
    from studio.core.threads import configure_torch_threads
    from studio.training.folders import newest_valid_checkpoint
    from studio.training.options import TrainOptions
    from studio.training.runs import build_trainer

    opts = TrainOptions.from_dict(options)
    threads = configure_torch_threads(opts.threads or None)
    child.out = Path(opts.out)
    trainer = child.trainer = build_trainer(opts, resume)
    (child.out / STOP_FILE).unlink(missing_ok=True)
    child.emit(Started(
        os.getpid(), threads, str(trainer.device), trainer.step, opts.steps, trainer.dataset.name,
        any(m.startswith(("PySide6", "PyQt", "pyqtgraph")) for m in sys.modules),
        {k: list(v) for k, v in trainer.history.items()} if resume else {}))
    child.flush()
    while True:
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
        if trainer.diverged is None or child.stop_reason:
            break
        child.paused = True  # wait for Resume (from the last good checkpoint) or Stop
        child.emit(Paused(trainer.step, trainer.diverged.message))
        child.flush()
        child.between_steps(trainer)
        if not child.rewind:
            child.stop_reason = child.stop_reason or "diverged"  # detached: nobody can resume it
            break
        child.rewind = False
        good = newest_valid_checkpoint(child.out)
        trainer = child.trainer = build_trainer(opts, str(good[0]) if good else None)
        if good is None:
            trainer._truncate_log(0)
        for name, value in child.live.items():
            trainer.set_live_option(name, value)
        child.emit(Rewound(trainer.step, {k: list(v) for k, v in trainer.history.items()}))
        child.flush()
    if child.stop_reason:
        _stop(child, trainer)


def _stop(child: _Child, trainer) -> None:
    """End early: save where we are (never diverged weights), then say Finished."""
    if child.lost and not child.detached and not child.take_lock(0.0):
        return  # the app is gone and someone else writes in this folder now: leave it alone
    d: Diverged | None = trainer.diverged
    if d is not None:
        child.emit(Finished(d.last_good_step, d.last_good_path, stopped_early=True))
        return
    path = trainer.save_run_checkpoint()
    child.emit(CheckpointWritten(trainer.step, str(path)))
    child.emit(Finished(trainer.step, str(path), stopped_early=True))
