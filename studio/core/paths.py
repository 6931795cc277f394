"""Where things live, for a checkout and for ``pip install .`` alike.

Shipped checkpoints are package data (``studio/checkpoints``); runs and the
ONNX export cache go to per-user folders (platformdirs), never into the
installed package. Environment variables override each for tests and CI.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

APP_NAME = "generative-studio"


def shipped_checkpoint_dir() -> Path:
    """The folder of the shipped checkpoints (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files("studio.checkpoints")))


def cache_dir() -> Path:
    """ONNX exports and other rebuildable files."""
    override = os.environ.get("GENERATIVE_STUDIO_CACHE")
    if override:
        return Path(override)
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME, appauthor=False)


def data_dir() -> Path:
    """The user's own files: training runs."""
    override = os.environ.get("GENERATIVE_STUDIO_HOME")
    if override:
        return Path(override)
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def runs_dir() -> Path:
    return data_dir() / "runs"


def _mnist_candidates() -> list[Path]:
    found = []
    override = os.environ.get("GENERATIVE_STUDIO_MNIST")
    if override:
        found.append(Path(override))
    # The shared digits beside a checkout (the project's development and CI layout).
    checkout = Path(__file__).resolve().parents[2]
    found.append(checkout.parent / "shared" / "datasets" / "mnist")
    found.append(Path.cwd().parent / "shared" / "datasets" / "mnist")
    return found


def default_mnist() -> Path:
    """The MNIST folder used when no dataset is given: the first that exists, else the first candidate."""
    candidates = _mnist_candidates()
    return next((p for p in candidates if p.exists()), candidates[0])
