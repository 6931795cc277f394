"""The shipped checkpoints (``checkpoints/`` in the repository), by family."""

from __future__ import annotations

from pathlib import Path

from studio.core.paths import shipped_checkpoint_dir
from studio.core.checkpoint import CheckpointError, read_metadata

def shipped(family: str, folder: Path | None = None) -> list[Path]:
    """Checkpoints of ``family`` in ``folder`` (default: the shipped ones), sorted by name."""
    folder = folder or shipped_checkpoint_dir()
    found = []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            if read_metadata(path)["family"] == family:
                found.append(path)
        except CheckpointError:
            continue
    return found
