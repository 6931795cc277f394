"""A run folder on disk: its newest valid checkpoint, its log, its temp files, who trains there.

Nothing here imports torch or Qt: the run list and the explorer call these
freely. "Newest" means what ``studio.core.checkpoint.newest_checkpoint``
means (the highest step) among the files whose header reads, so resume, the
explorer and the run list agree even when a kill landed mid-write.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from studio.training.lock import INFO_NAME, LOCK_NAME, RunFolderBusy, RunLock, is_locked, recorded_pid

LOG_NAME = "log.jsonl"  # as in studio.training.trainer (not imported here: it pulls in torch)
STOP_FILE = "stop.request"  # ask a background worker to stop (and save)
SUFFIX = ".safetensors"


def newest_valid_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, int] | None:
    """(path, step) of the run's newest valid checkpoint, or None: the one resume, the explorer
    and the run list all use (the highest step whose header reads)."""
    from studio.core.checkpoint import newest_checkpoint_step

    try:
        return newest_checkpoint_step(run_dir)
    except OSError:
        return None


def holds_run(run_dir: str | os.PathLike) -> bool:
    run_dir = Path(run_dir)
    return run_dir.is_dir() and ((run_dir / LOG_NAME).exists() or any(run_dir.glob("*" + SUFFIX)))


def is_orphan_name(name: str) -> bool:
    """A temp file of a write: ours end in ``.tmp``; safetensors' own ``save_file`` (which earlier
    versions saved with) writes through a hidden ``.tmpXXXXXX``."""
    return name.endswith(".tmp") or re.fullmatch(r"\.tmp[A-Za-z0-9]{6}", name) is not None


def clean_orphans(run_dir: str | os.PathLike, lock_held: bool = False) -> list[str]:
    """Delete the temp files killed writers left behind (``is_orphan_name``); returns their names.

    Only while nobody trains there: with the run's lock held by the caller,
    or taken for the moment of cleaning.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    lock = None
    if not lock_held:
        if is_locked(run_dir):
            return []
        try:
            lock = RunLock(run_dir).acquire(record_owner=False)
        except (RunFolderBusy, OSError):  # someone started meanwhile, or the folder is read-only
            return []
    removed = []
    try:
        try:
            entries = list(run_dir.iterdir())
        except OSError:
            entries = []
        for tmp in entries:
            if not is_orphan_name(tmp.name) or not tmp.is_file():
                continue
            try:
                tmp.unlink()
                removed.append(tmp.name)
            except OSError:
                pass
    finally:
        if lock is not None:
            lock.release(forget_owner=False)
    return sorted(removed)


def running_pid(run_dir: str | os.PathLike) -> int | None:
    """The pid training in ``run_dir`` while its lock is held, else None."""
    run_dir = Path(run_dir)
    if not (run_dir / INFO_NAME).exists() or not (run_dir / LOCK_NAME).exists():
        return None
    pid = recorded_pid(run_dir)
    return pid if pid is not None and is_locked(run_dir) else None


def request_stop(run_dir: str | os.PathLike) -> None:
    """Ask a background worker in ``run_dir`` to stop and save (it checks about once a second)."""
    (Path(run_dir) / STOP_FILE).write_text(str(time.time()))


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
