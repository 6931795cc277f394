"""Training in a separate process, driven from the app (never imports Qt).

The parent (the training panel) holds a :class:`WorkerHandle`. ``start``
validates the options and the dataset *in the parent* (so a bad folder or a
wrong channel count is reported before anything is spawned), then starts
:func:`worker_main` with multiprocessing's spawn context. The child runs the
family trainer, the same ``Trainer.run()`` generator ``python -m studio.train``
runs headless, and talks over two one-way pipes:

* events out: lists of :mod:`studio.training.events` objects, batched so a fast
  trainer pays for at most ~10 sends a second (previews, checkpoints, status
  changes and errors go out at once);
* commands in: ``pause``, ``resume``, ``stop``, ``save``, ``lr`` and ``detach``.

The parent closes its copies of the child's pipe ends after spawning, so a
worker that dies shows up as end-of-file on the event pipe (never a reader
blocked on a half-written message) and a parent that dies shows up as
end-of-file on the command pipe: the worker then saves a checkpoint and exits,
so nothing is left running. ``detach`` ("keep training in the background")
turns that off: the worker trains on headless to the end, writes its
checkpoints and log as usual, and stops cleanly on SIGTERM or when a file
named ``stop.request`` appears in the run folder.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.training.events import (
    CheckpointWritten,
    Event,
    Failed,
    Finished,
    Preview,
    Progress,
    Status,
)

FLUSH_INTERVAL_S = 0.1  # progress events are batched at most this long
PAUSE_POLL_S = 0.2
INFO_NAME = "worker.json"  # pid of a worker training in this run folder
STOP_FILE = "stop.request"  # ask a background worker to stop (and save)
LOG_NAME = "log.jsonl"  # as in studio.training.trainer (not imported here: it pulls in torch)


class TrainingSetupError(Exception):
    """The options or the dataset cannot be trained on; the message says what to fix."""


# ---------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------
@dataclass
class RunPlan:
    """What ``prepare_run`` checked: the options to send and a short description."""

    options: Any  # TrainOptions
    resume: str | None
    dataset_name: str
    dataset_shape: tuple[int, ...]
    dataset_size: int
    start_step: int = 0


def prepare_run(options, resume: str | os.PathLike | None = None) -> RunPlan:
    """Validate hyperparameters, dataset and model config in this process.

    Builds the family trainer once on the CPU (which runs the family's own
    dataset and config checks) and, for a resume, restores the checkpoint into
    it. Raises TrainingSetupError with a readable message on any problem.
    """
    from studio.data.datasets import DatasetError, open_dataset
    from studio.training.checkpoint import CheckpointError, load_checkpoint
    from studio.training.registry import TRAINERS, trainer_class

    o = copy.deepcopy(options)
    problems = []
    if o.family not in TRAINERS:
        problems.append(f"unknown model family '{o.family}' (known: {', '.join(sorted(TRAINERS))})")
    if not isinstance(o.steps, int) or o.steps < 1:
        problems.append("steps must be at least 1")
    if not isinstance(o.batch_size, int) or o.batch_size < 1:
        problems.append("batch size must be at least 1")
    if not (isinstance(o.lr, (int, float)) and math.isfinite(o.lr) and o.lr > 0):
        problems.append("learning rate must be a positive number")
    if o.schedule not in ("constant", "cosine"):
        problems.append(f"unknown schedule '{o.schedule}' (constant or cosine)")
    for name in ("checkpoint_every", "preview_every", "log_every", "threads"):
        if getattr(o, name) < 0:
            problems.append(f"{name.replace('_', ' ')} must not be negative")
    if o.keep < 1:
        problems.append("keep must be at least 1")
    if o.device not in ("auto", "cpu", "cuda") and not str(o.device).startswith("cuda:"):
        problems.append(f"unknown device '{o.device}'")
    if not str(o.out).strip():
        problems.append("choose an output folder")
    if problems:
        raise TrainingSetupError("; ".join(problems))
    out = Path(o.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise TrainingSetupError(f"{out}: the output folder is not writable ({exc})") from exc
    if _running_pid(out) is not None:
        raise TrainingSetupError(f"{out}: another worker (pid {_running_pid(out)}) is training in this folder")
    try:
        dataset = open_dataset(o.data)
    except DatasetError as exc:
        raise TrainingSetupError(str(exc)) from exc
    if len(dataset) == 0:
        raise TrainingSetupError(f"{dataset.name}: the dataset is empty")
    probe_opts = copy.deepcopy(o)
    if probe_opts.device == "auto":
        probe_opts.device = "cpu"
    try:
        trainer = trainer_class(o.family)(probe_opts, dataset)
    except DatasetError as exc:
        raise TrainingSetupError(str(exc)) from exc
    except Exception as exc:  # the family's config checks: a message, not a traceback
        raise TrainingSetupError(f"the {o.family} settings do not work: {exc}") from exc
    start = 0
    if resume is not None:
        try:
            ckpt = load_checkpoint(resume, family=o.family, with_training_state=True)
            trainer.restore(ckpt)
        except CheckpointError as exc:
            raise TrainingSetupError(str(exc)) from exc
        start = trainer.step
        if start >= o.steps:
            raise TrainingSetupError(
                f"{resume}: the run is already at step {start}; set more than {start} steps to continue")
        resume = str(ckpt.path)
    # What the child gets: the options after the family merged its defaults.
    o.model = dict(trainer.options.model)
    return RunPlan(o, None if resume is None else str(resume), dataset.name,
                   tuple(dataset.shape), len(dataset), start)


def family_names() -> list[str]:
    """The trainer families (the registry imports no torch)."""
    from studio.training.registry import TRAINERS

    return list(TRAINERS)


def options_for_resume(run_dir: str | os.PathLike, steps: int | None = None):
    """The options a run was started with (from its last checkpoint), to continue it.

    ``steps``, if given, replaces the run's total (it must exceed the saved step).
    Returns (TrainOptions, checkpoint path).
    """
    from studio.training.checkpoint import CheckpointError, newest_checkpoint, read_metadata
    from studio.training.trainer import TrainOptions

    run_dir = Path(run_dir)
    last = run_dir / "last.safetensors"
    if not last.exists():
        last = newest_checkpoint(run_dir) if run_dir.is_dir() else None
    if last is None:
        raise TrainingSetupError(f"{run_dir}: no checkpoint to resume from")
    try:
        meta = read_metadata(last)
    except CheckpointError as exc:
        raise TrainingSetupError(str(exc)) from exc
    saved = dict((meta.get("extra") or {}).get("options") or {})
    if not saved:
        raise TrainingSetupError(f"{last}: the checkpoint does not record its training options")
    known = set(TrainOptions.__dataclass_fields__)
    opts = TrainOptions(**{k: v for k, v in saved.items() if k in known})
    opts.out = str(run_dir)
    if steps is not None:
        opts.steps = int(steps)
    return opts, str(last)


def plan_new(values: dict):
    """Check a new run given TrainOptions fields (from the GUI form)."""
    from studio.training.trainer import TrainOptions

    return prepare_run(TrainOptions(**values))


def plan_resume(run_dir: str, steps: int):
    """Check continuing ``run_dir`` from its last checkpoint, up to ``steps`` in total."""
    opts, last = options_for_resume(run_dir, steps)
    return prepare_run(opts, resume=last)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit code {code})"
    return f"exit code {code}"


class WorkerHandle:
    """One training worker process, seen from the app. Nothing here blocks for long."""

    def __init__(self):
        self._proc = None
        self._events = None  # our reading end
        self._commands = None  # our writing end
        self.plan: RunPlan | None = None
        self.last_event: Event | None = None
        self.finished: Finished | None = None
        self.failed: Failed | None = None
        self.paused = False
        self.detached = False
        self._eof = False

    # --- life cycle ------------------------------------------------------------------
    def start(self, options, resume: str | os.PathLike | None = None, plan: RunPlan | None = None) -> RunPlan:
        """Validate (unless ``plan`` comes from ``prepare_run`` already) and spawn."""
        if self.is_alive():
            raise RuntimeError("this worker is already running")
        plan = plan or prepare_run(options, resume)
        ctx = mp.get_context("spawn")
        evt_read, evt_write = ctx.Pipe(duplex=False)
        cmd_read, cmd_write = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=(plan.options.to_dict(), plan.resume, cmd_read, evt_write),
            name=f"studio-train-{plan.options.family}",
        )
        with _main_module_hidden():
            proc.start()
        # Close the child's ends here so either side dying reads as end-of-file.
        evt_write.close()
        cmd_read.close()
        self._proc, self._events, self._commands = proc, evt_read, cmd_write
        self.plan = plan
        self.last_event = self.finished = self.failed = None
        self.paused = self.detached = self._eof = False
        return plan

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def started(self) -> bool:
        return self._proc is not None

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None if self._proc is None else self._proc.exitcode

    def exit_description(self) -> str:
        return describe_exit(self.exitcode)

    def crashed(self) -> bool:
        """The process is gone without saying Finished (killed, crashed or failed)."""
        return (self._proc is not None and not self.detached and self.exitcode is not None
                and self.finished is None)

    def join(self, timeout: float | None = None) -> bool:
        if self._proc is None:
            return True
        self._proc.join(timeout)
        return self._proc.exitcode is not None

    def kill(self) -> None:
        if self.is_alive():
            self._proc.kill()
            self._proc.join(5)

    # --- commands --------------------------------------------------------------------
    def _send(self, *cmd) -> bool:
        if self._commands is None or self.detached:
            return False
        try:
            self._commands.send(cmd)
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def pause(self) -> bool:
        return self._send("pause")

    def resume(self) -> bool:
        return self._send("resume")

    def stop(self) -> bool:
        """Finish the current step, write a checkpoint and exit."""
        return self._send("stop")

    def save_now(self) -> bool:
        return self._send("save")

    def set_lr(self, lr: float) -> bool:
        return self._send("lr", float(lr))

    def detach(self) -> None:
        """Let the worker train on after this process exits; it stops itself when done."""
        if self._proc is None or not self.is_alive():
            return
        self._send("detach")
        self.detached = True
        for conn in (self._commands, self._events):
            try:
                conn.close()
            except OSError:
                pass
        # Not ours to wait for at interpreter exit any more...
        try:
            from multiprocessing import process as _process

            _process._children.discard(self._proc)  # noqa: SLF001 - no public API for this
        except Exception:
            pass
        # ...but reaped as soon as it ends while this process lives (no zombie).
        import threading

        threading.Thread(target=self._proc.join, name="studio-train-reaper", daemon=True).start()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop (saving a checkpoint), wait up to ``timeout`` s, kill if it hangs."""
        if self._proc is None or self.detached:
            return True
        if self.is_alive():
            self.stop()
            deadline = time.monotonic() + timeout
            while self.is_alive() and time.monotonic() < deadline:
                self.poll()
                self._proc.join(0.05)
            if self.is_alive():
                self.kill()
        self.poll()
        self._proc.join(1)
        return self.finished is not None

    # --- events ----------------------------------------------------------------------
    def poll(self, max_batches: int = 1000) -> list[Event]:
        """Every event that has arrived, without blocking."""
        out: list[Event] = []
        if self._events is None or self._eof or self.detached:
            return out
        for _ in range(max_batches):
            try:
                if not self._events.poll():
                    break
                batch = self._events.recv()
            except (EOFError, OSError):
                self._eof = True  # the worker closed its end: exited or died
                break
            out.extend(batch)
        for ev in out:
            if isinstance(ev, Finished):
                self.finished = ev
            elif isinstance(ev, Failed):
                self.failed = ev
            elif isinstance(ev, Status) and ev.state in ("paused", "resumed"):
                self.paused = ev.state == "paused"
            if not isinstance(ev, Preview):
                self.last_event = ev
        return out

    def last_message(self) -> str:
        return describe_event(self.last_event) if self.last_event is not None else "nothing yet"

    def close(self) -> None:
        for conn in (self._commands, self._events):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass


class _main_module_hidden:
    """Spawn re-imports the parent's ``__main__`` in the child unless it cannot find it.

    The worker's entry point lives in this module, so the child needs nothing from
    ``__main__``; hiding it keeps whatever the app was launched with (a script that
    imports Qt at the top, ``python -m pytest``, a benchmark) out of the worker and
    makes it start faster.
    """

    def __enter__(self):
        self.main = sys.modules.get("__main__")
        self.saved = {}
        for name in ("__spec__", "__file__"):
            if self.main is not None and name in vars(self.main):
                self.saved[name] = vars(self.main)[name]
        if self.main is not None:
            if "__spec__" in self.saved:
                self.main.__spec__ = None
            if "__file__" in self.saved:
                del self.main.__file__
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(self.main, name, value)
        return False


def describe_event(ev: Event) -> str:
    if isinstance(ev, Progress):
        losses = " ".join(f"{k}={v:.4g}" for k, v in ev.losses.items())
        return f"step {ev.step}/{ev.total_steps} {losses}"
    if isinstance(ev, CheckpointWritten):
        return f"checkpoint at step {ev.step}: {ev.path}"
    if isinstance(ev, Finished):
        return f"finished at step {ev.step}" + (" (stopped)" if ev.stopped_early else "")
    if isinstance(ev, Failed):
        return f"failed: {ev.message}"
    if isinstance(ev, Status):
        return f"{ev.state} {ev.detail}" if ev.detail else ev.state
    return type(ev).__name__


def _running_pid(run_dir: Path) -> int | None:
    """The pid of a live worker training in ``run_dir`` (from worker.json), else None."""
    info = run_dir / INFO_NAME
    try:
        pid = int(json.loads(info.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def running_pid(run_dir: str | os.PathLike) -> int | None:
    return _running_pid(Path(run_dir))


def request_stop(run_dir: str | os.PathLike) -> None:
    """Ask a background worker in ``run_dir`` to stop and save (it checks about once a second)."""
    (Path(run_dir) / STOP_FILE).write_text(str(time.time()))


# ---------------------------------------------------------------------------------
# Child side
# ---------------------------------------------------------------------------------
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
    from studio.engine.threads import configure_torch_threads
    from studio.training.registry import trainer_class
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


def read_log(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """A run's log.jsonl as columns: {"step": [...], "loss": [...], ...}.

    Unreadable lines (a half-written last line) are skipped; a repeated step
    (an older log from before a resume) keeps its latest value.
    """
    path = Path(run_dir) / LOG_NAME
    rows: dict[int, dict] = {}
    try:
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                    rows[int(row["step"])] = row
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        return {"step": []}
    cols: dict[str, list[float]] = {"step": []}
    steps = sorted(rows)
    keys = [k for k in dict.fromkeys(k for r in rows.values() for k in r) if k not in ("step", "time")]
    for s in steps:
        cols["step"].append(float(s))
    for k in keys:
        cols[k] = [float(rows[s].get(k, float("nan"))) for s in steps]
    return cols
