"""Guard against a PySide6 6.12.0 reference-count bug that crashes long sessions.

In PySide6 6.12.0 on Python 3.11, every ``SignalInstance.emit()`` made from
Python drops one reference to the bool it returns, and some QPainter calls
drop references to ``None``. Python 3.11 still counts references on
``True``/``False``/``None``, so after a few thousand emits or paints
(a 1000-step DDPM run streams 1000 results, each emitted several times) the
interpreter aborts with "Fatal Python error: bool_dealloc" or "none_dealloc".

Python 3.12+ makes these singletons immortal; this does the same on 3.11 by
adding a very large count to their reference counters, once. Extra
references to singletons that are never freed are harmless, so this is safe
even on a PySide6 without the bug. Call it once, as early as possible.
"""

from __future__ import annotations

import ctypes
import sys

_BOOST = 1 << 40
_done = False


def make_singletons_immortal() -> bool:
    """Return True if the counters were raised (CPython < 3.12), False if not needed."""
    global _done
    if _done or sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object (a Py_ssize_t).
        ctypes.c_ssize_t.from_address(id(obj)).value += _BOOST
    _done = True
    return True
