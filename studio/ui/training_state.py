"""What the training panel knows, without Qt: the run it watches, and run folders as table rows.

``TrainingSession`` holds the phase (idle, checking, running, paused,
stopping) and what the worker has said so far; its rules (may the user
follow the run, what the progress bar and its line say) are plain Python,
tested without a window. ``RunRow`` is one run folder as the run table
shows it (name, family, step, loss, state), read from its newest valid
checkpoint, its log and its lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.training.events import Diverged, Progress
from studio.training.runs import INFO_NAME, LOG_NAME, newest_valid_checkpoint, running_pid

ACTIVE = ("running", "paused", "stopping")  # a worker is attached
PREVIEW_COLS = 8  # the trainers lay their preview samples out 8 to a row
_ENDINGS = {"paused": "(paused)", "stopping": "stopping: saving a checkpoint…", "finished": "done",
            "stopped": "stopped, checkpoint saved", "failed": "failed", "crashed": "the worker died"}


def fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(p: Progress, state: str = "running", stalled_s: float = 0.0) -> str:
    """One line about Progress event ``p``: the ETA only while it is running."""
    losses = "  ".join(f"{k} {v:.4g}" for k, v in p.losses.items())
    lrs = ("lr " + " ".join(f"{v:.3g}" for v in p.lrs.values()) if len(p.lrs) < 2 else
           "lr " + " ".join(f"{k} {v:.3g}" for k, v in p.lrs.items()))
    text = (f"step {p.step}/{p.total_steps}  epoch {p.epoch:.2f}  {losses}  "
            f"{p.examples_per_s:.0f} img/s  {lrs}")
    text += f"  ETA {fmt_eta(p.eta_s)}" if state == "running" else f"  {_ENDINGS.get(state, state)}"
    if stalled_s > 0:
        text += f"  no progress for {stalled_s:.0f} s"
    return text


def live_value(name: str, lrs: dict[str, float]) -> float | None:
    """The value live option ``name`` has now, from a Progress event's learning rates (None: not an LR)."""
    if name == "lr":
        return next(iter(lrs.values()), None)
    if name.startswith("lr."):
        return lrs.get(name[3:])
    return None


@dataclass
class TrainingSession:
    phase: str = "idle"
    family: str = ""
    run_dir: str | None = None
    last_checkpoint: str | None = None
    last_progress: Progress | None = None
    diverged: Diverged | None = None
    end_reason: str = ""  # finished, stopped, crashed, failed, refused (once the last run ended)

    def begin(self, family: str, run_dir: str) -> None:
        """A worker was started for ``run_dir``: forget the previous run."""
        self.family, self.run_dir = family, run_dir
        self.last_checkpoint, self.last_progress, self.diverged = None, None, None
        self.end_reason = ""

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    def can_follow(self, output_holds_run: bool) -> bool:
        """Follow in explorer: a run with a checkpoint, or, idle, a run in the output folder."""
        return bool(self.run_dir and self.last_checkpoint) or (self.phase == "idle" and output_holds_run)

    def progress_format(self) -> str:
        """The progress bar's text: the ETA only while running."""
        if self.phase == "running" and self.last_progress is not None:
            return f"%p%  ETA {fmt_eta(self.last_progress.eta_s)}"
        return "%p%"

    def progress_line(self, stalled_s: float = 0.0) -> str | None:
        """The line under the bar, or None before the first step."""
        p = self.last_progress
        if p is None:
            return None
        state = self.phase if self.active else (self.end_reason or self.phase)
        return progress_text(p, state, stalled_s if self.phase in ("running", "stopping") else 0.0)


def preview_strip(grid: np.ndarray, cols: int = PREVIEW_COLS) -> tuple[np.ndarray, int] | None:
    """A trainer's preview grid (square tiles, ``cols`` to a row, 1-pixel gaps, as ``image_grid`` lays
    them out) as one row of tiles, and the tile size, so the view can re-wrap it to fill its box
    (16 digits as 4 x 4 at twice their size, not 2 x 8 at their own). None: not such a grid."""
    h, w = grid.shape[:2]
    tile = (w - 1) // cols - 1
    if tile < 1 or (w - 1) % cols or (h - 1) % (tile + 1):
        return None
    rows, step = (h - 1) // (tile + 1), cols * (tile + 1)
    strip = np.zeros((tile + 2, rows * step + 1) + grid.shape[2:], grid.dtype)
    for r in range(rows):
        strip[:, r * step: r * step + w] = grid[r * (tile + 1): r * (tile + 1) + tile + 2]
    return strip, tile


# ---- run folders as table rows ---------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    path: str
    name: str
    family: str  # "" when no checkpoint says
    step: int | None  # of the newest valid checkpoint, else the log's last step
    total: int | None  # the steps the run was started for
    loss: float | None  # the log's last loss
    state: str  # training, finished, stopped, no checkpoint, unreadable
    pid: int | None = None  # the worker training there
    loss_name: str = "loss"  # families without a single "loss" (GANs) show their first one, named

    def step_text(self) -> str:
        if self.step is None:
            return "–"
        return f"{self.step:,} / {self.total:,}" if self.total else f"{self.step:,}"

    def loss_text(self) -> str:
        if self.loss is None:
            return "–"
        return f"{self.loss:.4g}" if self.loss_name == "loss" else f"{self.loss_name} {self.loss:.4g}"

    def state_text(self) -> str:
        return f"training (pid {self.pid})" if self.state == "training" else self.state


def _last_log_row(run_dir: Path) -> dict:
    """The log's last complete line (a worker may be writing the one after it)."""
    log = run_dir / LOG_NAME
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            tail = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return {}
    for line in reversed(tail):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            return row
    return {}


def describe_run(run_dir: str | os.PathLike) -> RunRow:
    """The run table's row for ``run_dir`` (never raises for a broken folder: it says so)."""
    from studio.core.checkpoint import CheckpointError, read_metadata

    run_dir = Path(run_dir)
    family, step, total = "", None, None
    found = newest_valid_checkpoint(run_dir)
    if found is not None:
        try:
            meta = read_metadata(found[0])
        except (CheckpointError, OSError):
            meta = {}
        family, step = str(meta.get("family", "")), found[1]
        total = ((meta.get("extra") or {}).get("options") or {}).get("steps")
    row = _last_log_row(run_dir)
    losses = {k: v for k, v in row.items() if k not in ("step", "time") and isinstance(v, (int, float))}
    loss_name = "loss" if "loss" in losses else next(iter(losses), "loss")
    loss = losses.get(loss_name)
    if step is None and isinstance(row.get("step"), int):
        step = row["step"]
    pid = running_pid(run_dir) if (run_dir / INFO_NAME).exists() else None
    if pid is not None:
        state = "training"
    elif found is None:
        state = "unreadable" if any(run_dir.glob("*.safetensors")) else "no checkpoint"
    elif total and step is not None and step >= int(total):
        state = "finished"
    else:
        state = "stopped"  # stopped early, failed or killed: Resume continues it
    return RunRow(str(run_dir), run_dir.name, family, step, int(total) if total else None,
                  float(loss) if loss is not None else None, state, pid, loss_name)


def saved_options(run_dir: str) -> dict:
    """The TrainOptions fields a run was started with (from its newest valid checkpoint), or {}."""
    from studio.core.checkpoint import CheckpointError, read_metadata

    found = newest_valid_checkpoint(run_dir)
    try:
        meta = read_metadata(found[0]) if found else {}
    except (CheckpointError, OSError):
        return {}
    return dict((meta.get("extra") or {}).get("options") or {})


def find_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` (a log or checkpoints inside), last changed first."""
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and (
        (p / LOG_NAME).exists() or any(p.glob("*.safetensors")))]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
