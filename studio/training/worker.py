"""Training in a separate process, driven from the app (never imports Qt).

The parent (the training panel) holds a :class:`WorkerHandle`. ``start``
validates the options and the dataset *in the parent* (so a bad folder or a
wrong channel count is reported before anything is spawned), then starts
:func:`studio.training.worker_child.worker_main` with multiprocessing's spawn context. The child runs the
family trainer, the same ``Trainer.run()`` generator ``python -m studio.train``
runs headless, and talks over two one-way pipes:

* events out: lists of :mod:`studio.training.events` objects, batched so a fast
  trainer pays for at most ~10 sends a second (previews, checkpoints, status
  changes and errors go out at once);
* commands in: :mod:`studio.training.events` command dataclasses (Pause, Resume,
  Stop, SaveNow, SetOption, Detach).

The handle holds the run folder's lock (:mod:`studio.training.lock`) from
before the spawn until the worker ends, so a second writer is refused at
once, even one started a moment later; a detached worker takes it over.

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

import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import time

from studio.training.events import (
    CheckpointWritten,
    CommandRefused,
    Detach,
    Diverged,
    Event,
    Failed,
    Finished,
    Metrics,
    OptionChanged,
    Pause,
    Paused,
    Preview,
    Progress,
    Resume,
    Resumed,
    Rewound,
    SaveNow,
    SetOption,
    Started,
    Stop,
)
from studio.training.lock import RunFolderBusy, RunLock, is_locked
from studio.training.runs import RunPlan, TrainingSetupError, clean_orphans, prepare_run
from studio.training.worker_child import worker_main

TAKEOVER_WAIT_S = 5.0  # how long detach waits for the worker to hold the run's lock itself


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
        self._lock: RunLock | None = None

    # --- life cycle ------------------------------------------------------------------
    def start(self, options, resume: str | os.PathLike | None = None, plan: RunPlan | None = None) -> RunPlan:
        """Validate (unless ``plan`` comes from ``prepare_run`` already) and spawn."""
        if self.is_alive():
            raise RuntimeError("this worker is already running")
        plan = plan or prepare_run(options, resume)
        lock = RunLock(plan.options.out)
        try:
            lock.acquire()
        except RunFolderBusy as exc:
            raise TrainingSetupError(str(exc)) from None
        except OSError as exc:
            raise TrainingSetupError(f"{plan.options.out}: cannot lock the run folder ({exc})") from exc
        try:
            clean_orphans(plan.options.out, lock_held=True)
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
        except BaseException:
            lock.release()
            raise
        try:
            lock.set_owner(proc.pid, family=plan.options.family)
        except OSError:
            pass  # the folder just turned read-only: the worker reports it at its first write
        # Close the child's ends here so either side dying reads as end-of-file.
        evt_write.close()
        cmd_read.close()
        self._proc, self._events, self._commands = proc, evt_read, cmd_write
        self._lock = lock
        self.plan = dataclasses.replace(plan, data={})  # the worker opens its own copy of the data
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
        self._release_if_ended()
        return self._proc.exitcode is not None

    def kill(self) -> None:
        if self.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._release_if_ended()

    def _release_if_ended(self) -> None:
        """The worker is gone: the run folder is free again."""
        if self._lock is not None and not self.detached and self._proc is not None \
                and self._proc.exitcode is not None:
            self._lock.release()
            self._lock = None

    # --- commands --------------------------------------------------------------------
    def _send(self, cmd) -> bool:
        if self._commands is None or self.detached:
            return False
        try:
            self._commands.send(cmd)
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def pause(self) -> bool:
        return self._send(Pause())

    def resume(self) -> bool:
        """Continue after a pause (after a divergence: from the last good checkpoint)."""
        return self._send(Resume())

    def stop(self) -> bool:
        """Finish the current step, write a checkpoint and exit."""
        return self._send(Stop())

    def save_now(self) -> bool:
        return self._send(SaveNow())

    def set_option(self, name: str, value: float) -> bool:
        return self._send(SetOption(name, float(value)))

    def set_lr(self, lr: float) -> bool:
        return self.set_option("lr", lr)

    def detach(self) -> None:
        """Let the worker train on after this process exits; it stops itself when done."""
        if self._proc is None or not self.is_alive():
            return
        self._send(Detach())
        self.detached = True
        for conn in (self._commands, self._events):
            try:
                conn.close()
            except OSError:
                pass
        if self._lock is not None:  # hand the run folder over: the worker takes the lock
            self._lock.release(forget_owner=False)
            self._lock = None
            deadline = time.monotonic() + TAKEOVER_WAIT_S
            while self._proc.is_alive() and not is_locked(self.plan.options.out) \
                    and time.monotonic() < deadline:
                time.sleep(0.01)
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
        self.join(1)
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
            elif isinstance(ev, (Paused, Resumed, Rewound)):
                self.paused = isinstance(ev, Paused)
            if not isinstance(ev, Preview):
                self.last_event = ev
        if self._eof:
            self._proc.join(0.1)  # end-of-file: the process is exiting
            self._release_if_ended()
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
        self._release_if_ended()


class _main_module_hidden:
    """Spawn re-imports the parent's ``__main__`` in the child unless it cannot find it.

    The worker's entry point lives in studio.training.worker_child, so the child needs nothing from
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
    if isinstance(ev, Diverged):
        return f"diverged: {ev.message}"
    if isinstance(ev, Metrics):
        return f"metrics at step {ev.step}: " + " ".join(f"{k}={v}" for k, v in ev.values.items())
    if isinstance(ev, Started):
        return f"started at step {ev.step} on {ev.device}"
    if isinstance(ev, Paused):
        return f"paused at step {ev.step}" + (f": {ev.reason}" if ev.reason else "")
    if isinstance(ev, (Resumed, Rewound)):
        return f"{type(ev).__name__.lower()} at step {ev.step}"
    if isinstance(ev, OptionChanged):
        return f"{ev.name} set to {ev.value:g} at step {ev.step}"
    if isinstance(ev, CommandRefused):
        return f"{ev.command} refused: {ev.reason}"
    return type(ev).__name__
