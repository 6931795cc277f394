"""Starting a run, the one way: check it (``prepare_run``), then build its trainer (``build_trainer``).

``python -m studio.train``, the app's worker and the training panel's checks
all go through these two functions. ``prepare_run`` is cheap enough for the
app's process: it opens the dataset, checks the options and the family's
config by building the model on torch's ``meta`` device (no weights, no
draw from torch's global RNG) and, for a resume, compares the checkpoint's
tensor shapes with that model. ``build_trainer`` runs where training runs.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.family import get_family, trainable_families
from studio.training.folders import (  # noqa: F401 - the run-folder helpers, re-exported
    LOG_NAME,
    STOP_FILE,
    clean_orphans,
    holds_run,
    newest_valid_checkpoint,
    read_log,
    request_stop,
    running_pid,
)
from studio.training.lock import INFO_NAME, busy_message, is_locked  # noqa: F401
from studio.training.options import TrainOptions, option_problems


class TrainingSetupError(Exception):
    """The options or the dataset cannot be trained on; the message says what to fix."""


@dataclass
class RunPlan:
    """What ``prepare_run`` checked: the options to train with and a short description."""

    options: TrainOptions  # with the family's defaults and the data's shape filled in
    resume: str | None
    dataset_name: str
    dataset_shape: tuple[int, ...]
    dataset_size: int
    start_step: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # data files left out, and why
    # The opened datasets, reused by build_trainer in the same process (never sent to a worker).
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def family_names() -> list[str]:
    """The families that can be trained (reading the descriptors imports no torch)."""
    return trainable_families()


def trainer_class(family: str):
    """The family's Trainer subclass (imports torch)."""
    return get_family(family).load("trainer")


def prepare_run(options: TrainOptions, resume: str | os.PathLike | None = None,
                writer: bool = True) -> RunPlan:
    """Check everything a run needs before it starts; raise TrainingSetupError if anything is off.

    ``writer`` False (torchrun's other ranks) skips the run folder's checks: rank 0 writes there.
    """
    o = copy.deepcopy(options)
    if o.family not in trainable_families():
        raise TrainingSetupError(
            f"unknown model family '{o.family}' (known: {', '.join(sorted(trainable_families()))})")
    problems = option_problems(o)
    if problems:
        raise TrainingSetupError("; ".join(problems))
    if writer:
        _check_folder(Path(o.out), resume)
    cls = trainer_class(o.family)
    data = {"main": _open(o.data)}
    for domain in cls.extra_domains:
        if not o.extra_data.get(domain):
            raise TrainingSetupError(f"the {o.family} family trains on two datasets: choose domain '{domain}' too")
        data[domain] = _open(o.extra_data[domain])
    main = data["main"]
    if o.holdout >= len(main):
        raise TrainingSetupError(f"holdout {o.holdout} must be below the dataset size {len(main)}")
    o.model = _check_model(cls, o, main)
    start = 0
    if resume is not None:
        start = _check_resume(cls, o, Path(resume))
        resume = str(resume)
    skipped = [s for source in data.values() for s in source.skipped]
    return RunPlan(o, resume, main.name, tuple(main.shape), len(main), start, skipped, data)


def build_trainer(options: TrainOptions, resume: str | None = None, context=None,
                  data: dict[str, Any] | None = None):
    """The family trainer for checked options, resumed from ``resume`` if given (imports torch).

    ``data`` holds datasets ``prepare_run`` opened in this process (RunPlan.data).
    """
    from studio.training.data import open_images

    o = copy.deepcopy(options)
    cls = trainer_class(o.family)
    data = data or {}
    main = data.get("main") or open_images(o.data)
    extra = {d: data.get(d) or open_images(o.extra_data[d]) for d in cls.extra_domains}
    trainer = cls(o, main, context, extra)
    if resume:
        trainer.resume_from(resume)
    elif o.init:
        trainer.start_from_weights(o.init)
    return trainer


def _check_folder(out: Path, resume) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise TrainingSetupError(f"{out}: the output folder is not writable ({exc.strerror or exc})") from exc
    if is_locked(out):
        raise TrainingSetupError(busy_message(out))
    if resume is None and holds_run(out):
        found = newest_valid_checkpoint(out)
        at = f" (at step {found[1]})" if found else ""
        raise TrainingSetupError(f"{out}: holds a run already{at}; resume it, or choose a new output folder")


def _open(path):
    from studio.data.datasets import DatasetError
    from studio.training.data import open_images

    try:
        source = open_images(path)
    except DatasetError as exc:
        raise TrainingSetupError(str(exc)) from exc
    if len(source) == 0:
        raise TrainingSetupError(f"{source.name}: the dataset is empty")
    return source


def _check_model(cls, o: TrainOptions, data) -> dict:
    import torch

    from studio.data.datasets import DatasetError

    try:
        config = cls.configure(dict(o.model), data)
    except DatasetError as exc:
        raise TrainingSetupError(str(exc)) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise TrainingSetupError(f"the {o.family} settings do not work: {exc}") from exc
    try:
        with torch.device("meta"):  # shapes only: no memory, no draw from the global RNG
            cls.build_modules(dict(config))
    except Exception as exc:  # noqa: BLE001 - the family's own checks: a message, not a traceback
        raise TrainingSetupError(f"the {o.family} settings do not work: {exc}") from exc
    return config


def _check_resume(cls, o: TrainOptions, path: Path) -> int:
    from safetensors import SafetensorError, safe_open

    from studio.core.checkpoint import CheckpointError, read_metadata
    from studio.training.state import STATE_VERSION, check_shapes

    try:
        meta = read_metadata(path)
        if meta["family"] != o.family:
            raise CheckpointError(f"{path}: a '{meta['family']}' checkpoint cannot resume a '{o.family}' run")
        if (meta.get("extra") or {}).get("trainer_state") != STATE_VERSION:
            raise CheckpointError(f"{path}: holds no training state this version can resume "
                                  "(weights only, or saved by an older version); start a new run")
        try:
            with safe_open(str(path), framework="numpy") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: the tensor data is unreadable ({exc})") from exc
        check_shapes(cls, o.model, shapes, str(path))
    except CheckpointError as exc:
        raise TrainingSetupError(str(exc)) from exc
    start = int(meta.get("step", 0))
    if start >= o.steps:
        raise TrainingSetupError(
            f"{path}: the run is already at step {start}; set more than {start} steps to continue")
    return start


def options_for_resume(run_dir: str | os.PathLike, steps: int | None = None) -> tuple[TrainOptions, str]:
    """The options a run was started with (from its newest valid checkpoint), to continue it.

    ``steps``, if given, replaces the run's total (it must exceed the saved step).
    Returns (TrainOptions, checkpoint path).
    """
    from studio.core.checkpoint import read_metadata

    run_dir = Path(run_dir)
    found = newest_valid_checkpoint(run_dir) if run_dir.is_dir() else None
    if found is None:
        raise TrainingSetupError(f"{run_dir}: no checkpoint to resume from")
    path = found[0]
    saved = dict((read_metadata(path).get("extra") or {}).get("options") or {})
    if not saved:
        raise TrainingSetupError(f"{path}: the checkpoint does not record its training options")
    opts = TrainOptions.from_dict(saved)
    opts.out = str(run_dir)
    if steps is not None:
        opts.steps = int(steps)
    return opts, str(path)


def plan_new(values: dict) -> RunPlan:
    """Check a new run given TrainOptions fields (from the GUI form)."""
    return prepare_run(TrainOptions.from_dict(values))


def plan_resume(run_dir: str, steps: int) -> RunPlan:
    """Check continuing ``run_dir`` from its newest valid checkpoint, up to ``steps`` in total."""
    opts, last = options_for_resume(run_dir, steps)
    return prepare_run(opts, resume=last)
