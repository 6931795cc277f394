"""The checks a checkpoint file passes before anything uses it.

Everything here treats the file as hostile: foreign formats are named, not
parsed; the metadata is checked against a typed schema; values quoted in
messages are bounded and escaped, so every refusal is one line naming the file.
"""

from __future__ import annotations

import json
import re
import reprlib
from pathlib import Path
from typing import Any

import numpy as np


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and the problem."""


FORMAT_VERSION = 1
METADATA_KEY = "studio"

# Enough bytes to recognise any format the sniffer knows, and the safetensors header length.
HEAD_BYTES = 64
# safetensors' own limit: a header larger than this is not a checkpoint.
MAX_HEADER_BYTES = 100_000_000


def parse_errors() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    # KeyError: a dtype numpy lacks (bfloat16); the rest: what the native parser and numpy raise.
    return (SafetensorError, OSError, ValueError, KeyError, TypeError, OverflowError, MemoryError)


def _could_be_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file: 8-byte little-endian header length, then a JSON object that fits the file."""
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= min(MAX_HEADER_BYTES, size - 8) and head[8:9] == b"{"


def _sniff_foreign_format(head: bytes, size: int) -> str | None:
    # Only where the safetensors header cannot be valid: a header length of 640 bytes
    # starts 0x80 0x02, the same bytes as a pickle.
    if _could_be_safetensors(head, size):
        return None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive (torch.save / pickle format, or a NumPy .npz)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array, not a checkpoint"
    if head[:1] == b"\x08" and head[2:3] in (b"\x12", b"\x1a", b"\x3a"):  # ir_version, then a string field
        return "an ONNX model (open the .safetensors checkpoint it was exported from)"
    return None


def check_head(path: Path, head: bytes, size: int) -> int:
    """Refuse what is plainly not a safetensors file; return its header length."""
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    foreign = _sniff_foreign_format(head, size)
    if foreign:
        why = ", because loading a pickle can run arbitrary code" if "pickle" in foreign else ""
        raise CheckpointError(
            f"{path}: refused, this is {foreign}. Generative Studio loads only .safetensors "
            f"checkpoints{why}."
        )
    if size < 10:
        raise CheckpointError(f"{path}: the file is truncated ({size} bytes)")
    if not _could_be_safetensors(head, size):
        n = int.from_bytes(head[:8], "little")
        if 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (its header is not a JSON object)")
        raise CheckpointError(
            f"{path}: not a safetensors file (bad header length: {n} bytes claimed, the file has {size})"
        )
    return int.from_bytes(head[:8], "little")


def invalid_safetensors(path: Path, exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"{path}: a tensor has dtype {exc.args[0]}, which cannot be read (save float32 weights)"
    if isinstance(exc, MemoryError):
        return f"{path}: the tensors do not fit in memory"
    reason = one_line(str(exc))
    for prefix in ("Error while deserializing header: ", "Error while deserializing: "):
        reason = reason.removeprefix(prefix)
    if "not fully covered" in reason:
        return f"{path}: the tensor data is truncated or has stray bytes (the header does not describe the file)"
    return f"{path}: not a valid safetensors file ({reason})"


def parse_json(path: Path, raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise CheckpointError(f"{path}: the checkpoint {what} is nested too deeply to be genuine") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise CheckpointError(f"{path}: the checkpoint {what} is not valid JSON ({one_line(str(exc))})") from exc


# The metadata a studio checkpoint carries: field -> (JSON type, required).
_SCHEMA: dict[str, tuple[type, bool]] = {
    "format_version": (int, True),
    "family": (str, True),
    "config": (dict, False),
    "dataset": (str, False),
    "step": (int, False),
    "metrics": (dict, False),
    "extra": (dict, False),
}
# Family names are package names (studio/families/<name>).
_FAMILY_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               float: "a number", bool: "true/false", type(None): "null"}


def validated_metadata(path: Path, stored: Any) -> dict[str, Any]:
    raw = stored.get(METADATA_KEY) if isinstance(stored, dict) else None
    if raw is None:
        raise CheckpointError(
            f"{path}: a safetensors file, but not a Generative Studio checkpoint (no metadata)"
        )
    if not isinstance(raw, str):
        raise CheckpointError(f"{path}: the checkpoint metadata is {_kind(raw)}, not a JSON string")
    meta = parse_json(path, raw, "metadata")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the checkpoint metadata is {_kind(meta)}, not an object")
    version = meta.get("format_version")
    if _kind(version) != "an integer" or version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {show(version)} is not supported "
                              f"(expected {FORMAT_VERSION})")
    for key, (kind, required) in _SCHEMA.items():
        if key not in meta:
            if required:
                raise CheckpointError(f"{path}: the checkpoint metadata has no '{key}'")
            continue
        if _kind(meta[key]) != _JSON_KINDS[kind]:
            raise CheckpointError(f"{path}: the checkpoint metadata's '{key}' should be "
                                  f"{_JSON_KINDS[kind]}, not {_kind(meta[key])} {show(meta[key])}")
    if not _FAMILY_NAME.fullmatch(meta["family"]):
        raise CheckpointError(f"{path}: the checkpoint metadata's family {show(meta['family'])} "
                              f"is not a model family name")
    if meta.get("step", 0) < 0:
        raise CheckpointError(f"{path}: the checkpoint metadata's 'step' is negative ({meta['step']})")
    return meta


def refuse_non_finite(path: Path, weights: dict[str, np.ndarray]) -> None:
    bad, first = 0, None
    for name, arr in weights.items():
        if arr.dtype.kind in "fc":
            n = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if n and first is None:
                first = name
            bad += n
    if bad:
        total = sum(a.size for a in weights.values())
        raise CheckpointError(
            f"{path}: {bad} of {total} weights are NaN or infinite (first in {show(first)}); the training "
            f"that wrote it diverged, so use an earlier checkpoint"
        )


def _short_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxstring, r.maxother, r.maxlong = 2, 4, 4, 60, 60, 40
    return r


# Values quoted from a file in messages: short, whatever their size or nesting.
_SHORT = _short_repr()


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A value from a file, quoted for a one-line message: bounded, escaped, no stray surrogates."""
    return _SHORT.repr(value).encode("ascii", "backslashreplace").decode("ascii")


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "…"


def same_shape(found: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether a stored tensor's shape fits the model's. A scalar (BatchNorm's batch count, Adam's step)
    stored as shape (1,) counts as the scalar: files written before 0-d tensors were kept 0-d hold
    them so, and torch loads them as the scalar."""
    return tuple(found) == tuple(expected) or (tuple(expected) == () and tuple(found) == (1,))
