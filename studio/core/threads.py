"""Thread budgets: inference and training leave the GUI a core."""

from __future__ import annotations

import os


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


_process_default: int | None = None  # set by a command line's --threads; None: all cores but one


def set_default_threads(n: int | None) -> None:
    """Make ``n`` this process's thread budget (a headless command has no GUI to leave a core to)."""
    global _process_default
    _process_default = n if n and n > 0 else None


def compute_threads(requested: int | None = None) -> int:
    """All cores but one (at least one), unless the caller or the process asks for a number."""
    if requested and requested > 0:
        return requested
    if _process_default:
        return _process_default
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
