"""Translating files and folders into PNG files, batched, with per-file errors (the CLI and the panel)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from studio.core.imaging import to_uint8
from studio.data.images import ImageLoadError, save_png
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.cyclegan.graphs import DIRECTIONS
from studio.families.cyclegan.ops.pictures import (
    DEFAULT_OVERLAP, FITS, model_facts, failure_reason, translate_prepared, prepare,
)


@dataclass(frozen=True)
class CycleTranslateFolder:
    target: Target
    inputs: tuple[str, ...]  # files and folders (folders are walked; their layout is kept under out_dir)
    out_dir: str
    direction: str = "AtoB"
    fit: str = "pad"
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 64
    save_reconstruction: bool = False  # also write NAME.cycle.png


@dataclass(frozen=True)
class FolderProgress:
    done: int  # inputs handled (written or failed)
    total: int
    written: tuple[str, ...]  # files written by this batch
    failed: tuple[tuple[str, str], ...]  # every failure so far: (input, one-line reason)
    images_per_s: float  # translated pictures per second so far (loading and writing included)
    seconds: float
    finished: bool = False



# ---- folders ------------------------------------------------------------------------------
def collect_inputs(inputs: Iterable[str | Path], out_dir: str | Path | None = None
                   ) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Files to translate, each with its output path relative to the output folder; and the inputs
    that are not there. Folders are walked (hidden files and anything under ``out_dir`` left out)
    and their layout kept; every other file in them is an input, so a stray text file is reported."""
    inputs = list(inputs)
    out = Path(out_dir).resolve() if out_dir is not None else None
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    for given in inputs:
        p = Path(given)
        if not p.exists():
            missing.append((str(given), "no such file or folder"))
        elif p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if out is not None and out in f.resolve().parents:
                    continue  # earlier outputs in a folder under the input: not inputs
                found.append((f, Path(p.name) / rel if len(inputs) > 1 else rel))
        else:
            found.append((p, Path(p.name)))
    return found, missing


def _output_names(files: list[tuple[Path, Path]]) -> list[Path]:
    """The PNG each input becomes, relative to the output folder: NAME.png, except where that
    name belongs to another input (a.jpg beside a.png: a.png keeps "a.png", a.jpg becomes "a.jpg.png")."""
    own = {rel for _, rel in files if rel.suffix.lower() == ".png"}
    names = []
    for _, rel in files:
        name = rel if rel.suffix.lower() == ".png" else rel.with_suffix(".png")
        if name in own and name != rel:
            name = rel.with_name(rel.name + ".png")
        names.append(name)
    return names


def translate_folder(pool: RuntimePool, target: Target, inputs: Iterable[str | Path], out_dir: str | Path,
                     direction: str = "AtoB", fit: str = "pad", overlap: int = DEFAULT_OVERLAP,
                     batch_size: int = 64, save_reconstruction: bool = False) -> Iterator[FolderProgress]:
    """Translate files and folders into PNGs under ``out_dir``, one FolderProgress per batch.

    A file that fails (not an image, truncated, unwritable output) is listed with its reason and
    the others go on. Raises ValueError (one line) for what stops everything: a bad direction or
    fit, an output folder that cannot be made.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}' (AtoB or BtoA)")
    if fit not in FITS:
        raise ValueError(f"unknown fit '{fit}' (choose {', '.join(FITS)})")
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    runtime = pool.get(target.checkpoint, family="cyclegan")
    size, channels, digits = model_facts(runtime)
    out_dir = Path(out_dir)
    inputs = list(inputs)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    files, failed = collect_inputs(inputs, out_dir)
    names = _output_names(files)
    total = len(files) + len(failed)
    t0, done, translated = time.perf_counter(), len(failed), 0
    for start in range(0, len(files), batch_size):
        chunk = files[start: start + batch_size]
        items, outputs = [], []
        for (path, _), name in zip(chunk, names[start: start + batch_size]):
            try:
                items.append(prepare(str(path), str(path), size, channels, digits, fit, overlap))
                outputs.append(out_dir / name)
            except (ImageLoadError, ValueError, OSError) as exc:
                failed.append((str(path), failure_reason(exc, str(path))))
        written = []
        if items:
            pairs, _, _ = translate_prepared(runtime, target, items, direction, wait=True)
            for item, (fake, rec), dest in zip(items, pairs, outputs):
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    written.append(str(save_png(to_uint8(fake), dest)))
                    if save_reconstruction:
                        save_png(to_uint8(rec), dest.with_name(dest.stem + ".cycle.png"))
                    translated += 1
                except OSError as exc:
                    failed.append((item.name, f"cannot write {dest} ({exc.strerror or exc})"))
        done += len(chunk)
        seconds = time.perf_counter() - t0
        yield FolderProgress(done, total, tuple(written), tuple(failed), translated / seconds if seconds > 0 else 0.0,
                             seconds, finished=done >= total)
    if not files:
        yield FolderProgress(done, total, (), tuple(failed), 0.0, time.perf_counter() - t0, finished=True)


def translate_folder_stream(pool: RuntimePool, req: CycleTranslateFolder) -> Iterator[Output]:
    """The renderer's view of ``translate_folder``: one Output per batch (cancel by superseding)."""
    for progress in translate_folder(pool, req.target, req.inputs, req.out_dir, req.direction, req.fit,
                                     req.overlap, req.batch_size, req.save_reconstruction):
        yield Output(None, progress, req.target.backend, req.target.device, final=progress.finished)
