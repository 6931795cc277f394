"""Thread budgets: inference and training leave the GUI a core."""

from __future__ import annotations

import os


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def compute_threads(requested: int | None = None) -> int:
    """All cores but one (at least one), unless the caller asks for a number."""
    if requested and requested > 0:
        return requested
    return max(1, cpu_count() - 1)


def configure_torch_threads(requested: int | None = None) -> int:
    import torch

    n = compute_threads(requested)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once, before any parallel work
        pass
    return n
