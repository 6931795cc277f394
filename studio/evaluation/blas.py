"""Run numpy's BLAS on one thread for a while (best effort, stdlib only).

Why: KID makes 300 small matrix products. With OpenBLAS's default of one thread
per core, each product waits for every thread; on a small machine where another
process holds a core (the GUI, a training run) that wait dominates: KID over
5,000 x 9,000 digits measured 4-5 s with 2 BLAS threads and 1 s with one on a
2-core box. numpy has no public knob, so we call OpenBLAS's own setter when we
can find it among the loaded libraries (Linux); elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from typing import Iterator

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_lock = threading.Lock()
_api: tuple | None | bool = False  # False: not looked up yet; None: not found
_depth = 0  # blocks currently inside blas_threads
_saved = 0  # the thread count to restore when the last block leaves


def _find_openblas() -> tuple | None:
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: this returns the same handle
        except OSError:
            continue
        for setter in _SETTERS:
            getter = setter.replace("_set_", "_get_")
            if hasattr(lib, setter) and hasattr(lib, getter):
                set_fn, get_fn = getattr(lib, setter), getattr(lib, getter)
                set_fn.argtypes, set_fn.restype, get_fn.restype = [ctypes.c_int], None, ctypes.c_int
                return set_fn, get_fn
    return None


def _openblas() -> tuple | None:
    global _api
    if _api is False:
        import numpy  # noqa: F401  (make sure its BLAS is loaded before we look)

        _api = _find_openblas()
    return _api  # type: ignore[return-value]


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Limit OpenBLAS to ``n`` threads inside the block, then restore the count found.

    Nested and concurrent blocks share one limit: the first to enter saves the
    previous count, the last to leave restores it.
    """
    global _depth, _saved
    api = _openblas()
    if api is None:
        yield
        return
    set_fn, get_fn = api
    with _lock:
        if _depth == 0:
            _saved = get_fn()
            set_fn(n)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                set_fn(_saved)
