"""Process-wide settings, made once: by the entry points at start-up, else at a library's first use.

Warnings filters, ``sys.stdout``, library log levels
and torch's thread counts belong to the whole process: a render or export
thread that changed one "for the duration of a call" would change it under
every other thread too. So nothing changes them per call; ``configure_process``
sets them once (idempotent, thread-safe), and the engine calls the torch and
ONNX Runtime parts on first use so that a library never runs unconfigured.

torch is not imported at start-up unless asked (an ONNX-only start is much
faster); its threads are then set the first time the engine needs torch,
before any torch work in this process.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings

_lock = threading.Lock()
_general_done = False
_onnxruntime_done = False
_torch_threads: int | None = None


def configure_process(torch_threads: int | None = None, with_torch: bool = False,
                      with_onnxruntime: bool = True) -> None:
    """Set every process-wide setting once. ``with_torch`` imports torch now to set its threads.

    ``with_onnxruntime=False`` leaves ONNX Runtime's part to its first session (the backend
    calls ``configure_onnxruntime`` under the same lock), so a window is not kept waiting for
    that import.
    """
    global _general_done
    with _lock:
        if not _general_done:
            _quiet_exporter()
            _general_done = True
    if with_onnxruntime:
        configure_onnxruntime()
    if with_torch or "torch" in sys.modules:
        configure_torch(torch_threads)


def configure_torch(threads: int | None = None) -> int:
    """torch's thread counts (all cores but one by default), set once; returns the intra-op count."""
    global _torch_threads
    with _lock:
        if _torch_threads is None:
            from studio.core.threads import configure_torch_threads

            _torch_threads = configure_torch_threads(threads)
        return _torch_threads


def configure_onnxruntime() -> None:
    """ONNX Runtime's default logger, set once.

    Where a CUDA provider may be tried, a provider that fails to start is
    reported by the backend in one line (in the panel), so its log errors are
    silenced; elsewhere errors stay visible.
    """
    global _onnxruntime_done
    with _lock:
        if _onnxruntime_done:
            return
        import onnxruntime as ort

        from studio.engine.backends import nvidia_driver_present

        cuda_possible = "CUDAExecutionProvider" in ort.get_available_providers() and nvidia_driver_present()
        ort.set_default_logger_severity(4 if cuda_possible else 3)
        _onnxruntime_done = True


def _quiet_exporter() -> None:
    # The ONNX exporter warns about its own internals (pytree deprecations, axis
    # renaming) and logs about optional ops: not the user's concern.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"onnxscript")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
