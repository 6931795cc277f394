"""The shipped checkpoints (``checkpoints/`` in the repository), by family."""

from __future__ import annotations

from pathlib import Path

from studio.training.checkpoint import CheckpointError, read_metadata

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


def shipped(family: str, folder: Path = CHECKPOINT_DIR) -> list[Path]:
    """Checkpoints of ``family`` in ``folder``, sorted by name."""
    found = []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            if read_metadata(path)["family"] == family:
                found.append(path)
        except CheckpointError:
            continue
    return found
