"""Checkpoints: safetensors tensors plus JSON metadata, in one file.

The metadata lives in the safetensors header (key ``studio``) so weights and
their description can never drift apart, and the single file can be written
atomically. Loading parses a header and raw tensor bytes only: no code runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
METADATA_KEY = "studio"
SUFFIX = ".safetensors"

# Tensors whose names start with these prefixes are training state, not weights.
OPTIMIZER_PREFIX = "optim/"
RNG_PREFIX = "rng/"
MODEL_PREFIX = "model/"


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and the problem."""


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


def _sniff_foreign_format(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (torch.save / pickle format)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if head[:1] == b"\x08" and head[2:3] in (b"\x12", b"\x1a", b"\x3a"):  # ir_version, then a string field
        return "an ONNX model (open the .safetensors checkpoint it was exported from)"
    return None


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file in the same folder, then rename)."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for name, arr in ckpt.weights.items():
        tensors[MODEL_PREFIX + name] = np.ascontiguousarray(arr)
    for name, arr in ckpt.training_state.items():
        tensors[name] = np.ascontiguousarray(arr)
    header = {METADATA_KEY: json.dumps(ckpt.metadata())}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    ckpt.path = path
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON metadata of a checkpoint (cheap: no tensor bytes)."""
    path = _check_file(Path(path))
    header = _read_header(path)
    return _parse_metadata(path, header)


def load_checkpoint(
    path: str | os.PathLike,
    family: str | None = None,
    with_training_state: bool = False,
) -> Checkpoint:
    """Load a checkpoint, refusing anything that is not a studio safetensors file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = _check_file(Path(path))
    header = _read_header(path)
    meta = _parse_metadata(path, header)
    _check_family(path, meta, family)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: the tensor data is corrupt or truncated ({exc})") from exc
    return _from_tensors(path, meta, tensors, with_training_state)


def load_checkpoint_bytes(
    data: bytes,
    path: str | os.PathLike,
    family: str | None = None,
    with_training_state: bool = False,
) -> Checkpoint:
    """Parse a checkpoint file already read into memory (``path`` names it in messages).

    A caller that hashes the file hashes these same bytes, so a file rewritten
    meanwhile (a training run saving) can never pair one file's digest with
    another's weights.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    _check_head(path, data[:64])
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or n > 100_000_000 or 8 + n > len(data):
        raise CheckpointError(f"{path}: not a safetensors file (bad header length)")
    meta = _parse_metadata(path, _decode_header(path, data[8:8 + n]))
    _check_family(path, meta, family)
    try:
        tensors = load(bytes(data))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: the tensor data is corrupt or truncated ({exc})") from exc
    return _from_tensors(path, meta, tensors, with_training_state)


def _check_family(path: Path, meta: dict[str, Any], family: str | None) -> None:
    if family is not None and meta["family"] != family:
        raise CheckpointError(
            f"{path}: this is a '{meta['family']}' checkpoint, but a '{family}' model was expected"
        )


def _from_tensors(path: Path, meta: dict[str, Any], tensors: dict[str, np.ndarray],
                  with_training_state: bool) -> Checkpoint:
    weights = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    state = {}
    if with_training_state:
        state = {k: v for k, v in tensors.items() if not k.startswith(MODEL_PREFIX)}
    if not weights:
        raise CheckpointError(f"{path}: the file holds no model weights")
    return Checkpoint(
        family=meta["family"],
        config=meta.get("config", {}),
        weights=weights,
        dataset=meta.get("dataset", ""),
        step=int(meta.get("step", 0)),
        metrics=meta.get("metrics", {}),
        training_state=state,
        extra=meta.get("extra", {}),
        path=path,
    )


def _check_file(path: Path) -> Path:
    if path.is_dir():
        newest = newest_checkpoint(path)
        if newest is None:
            raise CheckpointError(f"{path}: the folder holds no {SUFFIX} checkpoint")
        path = newest
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(64)
    _check_head(path, head)
    return path


def _check_head(path: Path, head: bytes) -> None:
    foreign = _sniff_foreign_format(head)
    if foreign:
        why = ", because loading a pickle can run arbitrary code" if "pickle" in foreign else ""
        raise CheckpointError(
            f"{path}: refused, this is {foreign}. Generative Studio loads only .safetensors "
            f"checkpoints{why}."
        )
    if len(head) < 8:
        raise CheckpointError(f"{path}: the file is empty or truncated")


def _read_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n <= 0 or n > 100_000_000 or 8 + n > size:
            raise CheckpointError(f"{path}: not a safetensors file (bad header length)")
        raw = f.read(n)
    return _decode_header(path, raw)


def _decode_header(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file (unreadable header)") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (unreadable header)")
    return header


def _parse_metadata(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{path}: a safetensors file, but not a Generative Studio checkpoint (no metadata)"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the checkpoint metadata is corrupt") from exc
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is not supported (expected {FORMAT_VERSION})"
        )
    if "family" not in meta:
        raise CheckpointError(f"{path}: the checkpoint metadata names no model family")
    return meta


def newest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The most recently written checkpoint in a run folder (or None)."""
    files = [p for p in Path(folder).glob("*" + SUFFIX) if p.is_file()]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
