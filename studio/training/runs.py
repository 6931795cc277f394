"""Run folders: checking a run before it starts, resuming it, its log and its background worker.

Everything here runs in the app (or the CLI) before or beside a worker; none of
it imports Qt or, until a dataset is checked, torch.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.family import get_family, trainable_families

INFO_NAME = "worker.json"  # pid of a worker training in this run folder
STOP_FILE = "stop.request"  # ask a background worker to stop (and save)
LOG_NAME = "log.jsonl"  # as in studio.training.trainer (not imported here: it pulls in torch)


class TrainingSetupError(Exception):
    """The options or the dataset cannot be trained on; the message says what to fix."""



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
    from studio.core.checkpoint import CheckpointError, load_checkpoint

    o = copy.deepcopy(options)
    problems = []
    if o.family not in trainable_families():
        problems.append(f"unknown model family '{o.family}' (known: {', '.join(sorted(trainable_families()))})")
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
    """The families that can be trained (reading the descriptors imports no torch)."""
    return trainable_families()


def trainer_class(family: str):
    """The family's Trainer subclass (imports torch)."""
    return get_family(family).load("trainer")


def options_for_resume(run_dir: str | os.PathLike, steps: int | None = None):
    """The options a run was started with (from its last checkpoint), to continue it.

    ``steps``, if given, replaces the run's total (it must exceed the saved step).
    Returns (TrainOptions, checkpoint path).
    """
    from studio.core.checkpoint import CheckpointError, newest_checkpoint, read_metadata
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
