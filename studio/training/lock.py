"""One writer per run folder: an OS file lock held for the life of the run.

The lock is ``filelock``'s (flock on Unix, msvcrt on Windows), so the
operating system drops it when its holder dies: a lock left by a killed
process never blocks. Beside it, ``worker.json`` names the process that
trains there, for the refusal message and the run list. Whoever trains in a
folder holds the lock: the CLI, the app for the worker it started (the
worker takes it over when it is detached), torchrun's rank 0.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".run.lock"
INFO_NAME = "worker.json"  # {"pid": the process training in this folder, ...}


class RunFolderBusy(Exception):
    """Another process is training in this run folder; the message names its pid."""


class RunLock:
    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / LOCK_NAME))

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self, owner_pid: int | None = None, timeout: float = 0.0, record_owner: bool = True,
                **info) -> "RunLock":
        """Take the lock (waiting up to ``timeout`` s) or raise RunFolderBusy.

        ``record_owner`` False takes it only for a moment's housekeeping.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise RunFolderBusy(busy_message(self.run_dir)) from None
        if record_owner:
            try:
                self.set_owner(owner_pid or os.getpid(), **info)
            except OSError:
                self._lock.release(force=True)
                raise
        return self

    def set_owner(self, pid: int, **info) -> None:
        """Record the pid that trains here (the worker's, when the app holds the lock for it)."""
        record = {"pid": int(pid), "holder": os.getpid(), "since": time.time(), **info}
        tmp = self.run_dir / (INFO_NAME + ".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.run_dir / INFO_NAME)

    def release(self, forget_owner: bool = True) -> None:
        if not self._lock.is_locked:
            return
        if forget_owner:
            try:
                (self.run_dir / INFO_NAME).unlink(missing_ok=True)
            except OSError:
                pass  # the folder went away or turned read-only: the lock goes anyway
        self._lock.release(force=True)


def recorded_pid(run_dir: str | os.PathLike) -> int | None:
    try:
        return int(json.loads((Path(run_dir) / INFO_NAME).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_locked(run_dir: str | os.PathLike) -> bool:
    """Whether some process holds the run folder's lock (a short probe)."""
    run_dir = Path(run_dir)
    if not (run_dir / LOCK_NAME).exists():
        return False
    probe = FileLock(str(run_dir / LOCK_NAME))
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False  # an unreadable folder: nobody can be training there
    probe.release(force=True)
    return False


def busy_message(run_dir: Path) -> str:
    pid = recorded_pid(run_dir)
    who = f"pid {pid}" if pid is not None else "another process"
    return f"{run_dir}: another run ({who}) is training in this folder; stop it first or choose another folder"
