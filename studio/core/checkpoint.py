"""Checkpoints: safetensors tensors plus JSON metadata, in one file.

The metadata lives in the safetensors header (key ``studio``) so weights and
their description can never drift apart, and the single file can be written
atomically. Loading parses a header and raw tensor bytes only: no code runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.checkpoint_checks import (
    FORMAT_VERSION, HEAD_BYTES, METADATA_KEY, CheckpointError, check_head, invalid_safetensors,
    one_line, parse_errors, parse_json, refuse_non_finite, same_shape, show, validated_metadata,
)

__all__ = [
    "FORMAT_VERSION", "METADATA_KEY", "SUFFIX", "Checkpoint", "CheckpointError", "check_fits_model",
    "load_checkpoint", "load_checkpoint_bytes", "newest_checkpoint", "read_checkpoint_file",
    "read_metadata", "save_checkpoint",
]

SUFFIX = ".safetensors"

# Tensors whose names start with these prefixes are training state, not weights.
OPTIMIZER_PREFIX = "optim/"
RNG_PREFIX = "rng/"
MODEL_PREFIX = "model/"


@dataclass
class Checkpoint:
    """Weights (numpy arrays, by parameter name) and their metadata."""

    family: str
    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    dataset: str = ""
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "config": self.config,
            "dataset": self.dataset,
            "step": self.step,
            "metrics": self.metrics,
            "extra": self.extra,
        }


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file in the same folder, then rename).

    The bytes are made in memory and written to our own temp file: safetensors' ``save_file``
    writes through a hidden temp file of its own (``.tmpXXXXXX``), which a killed writer would
    leave behind where no clean-up looks for it.
    """
    from safetensors.numpy import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    # np.require, not np.ascontiguousarray: that turns a 0-d array (a BatchNorm's batch count) into
    # shape (1,), which then no longer fits the model's shape ().
    for name, arr in ckpt.weights.items():
        tensors[MODEL_PREFIX + name] = np.require(arr, requirements="C")
    for name, arr in ckpt.training_state.items():
        tensors[name] = np.require(arr, requirements="C")
    header = {METADATA_KEY: json.dumps(ckpt.metadata())}
    data = save(tensors, metadata=header)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    ckpt.path = path
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON metadata of a checkpoint (cheap: the header, no tensor bytes)."""
    from safetensors import safe_open

    path = _resolve(Path(path))
    try:
        with open(path, "rb") as f:
            check_head(path, f.read(HEAD_BYTES), os.fstat(f.fileno()).st_size)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        with safe_open(str(path), framework="numpy") as f:
            stored = f.metadata()
    except parse_errors() as exc:
        raise CheckpointError(invalid_safetensors(path, exc)) from exc
    return validated_metadata(path, stored)


def load_checkpoint(
    path: str | os.PathLike,
    family: str | None = None,
    with_training_state: bool = False,
) -> Checkpoint:
    """Load a checkpoint, refusing anything that is not a valid studio safetensors file."""
    path = _resolve(Path(path))
    return load_checkpoint_bytes(_read_once(path), path, family, with_training_state)


def read_checkpoint_file(
    path: str | os.PathLike,
    family: str | None = None,
    with_training_state: bool = False,
) -> tuple[Checkpoint, str]:
    """Load a checkpoint and the SHA-256 of the very bytes parsed, reading the file once.

    Hashing and parsing one buffer means the digest always describes the
    weights in hand, even if the file is replaced in between.
    """
    path = _resolve(Path(path))
    data = _read_once(path)
    return load_checkpoint_bytes(data, path, family, with_training_state), hashlib.sha256(data).hexdigest()


def load_checkpoint_bytes(
    data: bytes,
    path: str | os.PathLike,
    family: str | None = None,
    with_training_state: bool = False,
) -> Checkpoint:
    """Parse a checkpoint already read into memory; ``path`` names it in messages."""
    from safetensors.numpy import load

    path = Path(path)
    header_len = check_head(path, data[:HEAD_BYTES], len(data))
    try:
        tensors = load(bytes(data))
    except parse_errors() as exc:
        raise CheckpointError(invalid_safetensors(path, exc)) from exc
    # safetensors accepted the header, so it is a JSON object of bounded depth.
    header = parse_json(path, data[8:8 + header_len], "header")
    meta = validated_metadata(path, header.get("__metadata__"))
    if family is not None and meta["family"] != family:
        raise CheckpointError(
            f"{path}: this is a {show(meta['family'])} checkpoint, but a '{family}' model was expected"
        )
    weights = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    if not weights:
        raise CheckpointError(f"{path}: the file holds no model weights")
    refuse_non_finite(path, weights)
    state = {}
    if with_training_state:
        state = {k: v for k, v in tensors.items() if not k.startswith(MODEL_PREFIX)}
    return Checkpoint(
        family=meta["family"],
        config=meta.get("config", {}),
        weights=weights,
        dataset=meta.get("dataset", ""),
        step=meta.get("step", 0),
        metrics=meta.get("metrics", {}),
        training_state=state,
        extra=meta.get("extra", {}),
        path=path,
    )


def check_fits_model(ckpt: Checkpoint, digest: str | None = None) -> None:
    """Raise CheckpointError unless the weights have exactly the names and shapes of the model
    that the checkpoint's family builds from its config.

    The model is built on torch's meta device: shapes only, no memory, no
    initialisation. Given the file's ``digest``, a pass is remembered in the
    cache (keyed also by the family's model source), so later starts with the
    same file skip importing torch, which costs more than the rest of start-up.
    """
    from studio.core.family import UnknownFamily, get_family

    where = ckpt.path or "checkpoint"
    try:
        spec = get_family(ckpt.family)
    except UnknownFamily as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    proof = _fit_proof(spec, digest) if digest else None
    if proof is not None and proof.exists():
        return
    _compare_with_model(ckpt, spec, where)
    if proof is not None:
        try:
            proof.parent.mkdir(parents=True, exist_ok=True)
            proof.touch()
        except OSError:
            pass  # an unwritable cache only means the next start checks again


def _fit_proof(spec, digest: str) -> Path | None:
    """The cache file that records that the checkpoint ``digest`` fits the family's current model code."""
    import importlib.util

    from studio.core.paths import cache_dir

    try:
        origin = importlib.util.find_spec(spec.model.partition(":")[0]).origin
        code = hashlib.sha256(Path(origin).read_bytes()).hexdigest()
    except (ImportError, AttributeError, TypeError, OSError):
        return None
    return cache_dir() / "fits" / f"{digest[:32]}-{code[:16]}"


def _compare_with_model(ckpt: Checkpoint, spec, where: Path | str) -> None:
    import torch

    try:
        with torch.device("meta"):
            model = spec.build_model(ckpt.config)
    except Exception as exc:  # each family's builder rejects a bad config in its own way
        raise CheckpointError(
            f"{where}: its config {show(ckpt.config)} does not build a '{ckpt.family}' model "
            f"({type(exc).__name__}: {one_line(str(exc))})"
        ) from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ckpt.weights.items()}
    wrong = [k for k in expected if k in found and not same_shape(found[k], expected[k])]
    missing = [k for k in expected if k not in found]
    unknown = sorted(found.keys() - expected.keys())
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {show(wrong[0])} is {found[wrong[0]]}, "
                        f"the model's is {expected[wrong[0]]})")
    if missing:
        problems.append(f"{len(missing)} missing (e.g. '{missing[0]}')")
    if unknown:
        problems.append(f"{len(unknown)} the model does not have (e.g. {show(unknown[0])})")
    if problems:
        raise CheckpointError(
            f"{where}: the weights do not fit the '{ckpt.family}' model its config describes: "
            + "; ".join(problems)
        )


def _resolve(path: Path) -> Path:
    if path.is_dir():
        newest = newest_checkpoint(path)
        if newest is None:
            raise CheckpointError(f"{path}: the folder holds no {SUFFIX} checkpoint")
        path = newest
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file")
    return path


def _read_once(path: Path) -> bytes:
    """The whole file, after its first bytes passed the format checks (a foreign file is never read in full)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            check_head(path, head, os.fstat(f.fileno()).st_size)
            return head + f.read()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def newest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest valid checkpoint of a run folder (see ``newest_checkpoint_step``), or None."""
    found = newest_checkpoint_step(folder)
    return found[0] if found else None


def newest_checkpoint_step(folder: str | os.PathLike) -> tuple[Path, int] | None:
    """(path, step) of the run folder's checkpoint with the highest step whose header reads.

    By step, not by file time: a copied or restored folder (cp, unzip, a backup) gives its files
    new times in any order. Ties (``last`` and ``step_N`` of one save) go to the last written.
    A torn or foreign file is passed over.
    """
    best = None
    for path in Path(folder).glob("*" + SUFFIX):
        try:
            if not path.is_file():
                continue
            key = (int(read_metadata(path).get("step", 0)), path.stat().st_mtime_ns, path.name)
        except (CheckpointError, OSError, ValueError, TypeError):
            continue
        if best is None or key > best[0]:
            best = (key, path)
    return (best[1], best[0][0]) if best else None
