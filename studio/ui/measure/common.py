"""What every GUI measurement shares: an offscreen application, a real window opened on one
panel, waiting for a frame to be painted, and medians with p95."""

from __future__ import annotations

import os
import statistics
import time


class MeasureError(RuntimeError):
    """The window did not get where the measurement needs it."""


def offscreen_app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def open_window(panel: str, checkpoints: dict[str, str] | None = None, timeout: float = 60.0):
    """The main window on ``panel`` (its first picture on screen), never with the user's settings.

    Returns ``(app, context, window, the panel)``.
    """
    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow

    app = offscreen_app()
    ctx = AppContext("onnx", "auto")
    ctx.checkpoints.update(checkpoints or {})
    window = MainWindow(ctx, [panel], remember=False)
    window.resize(1180, 780)
    window.show()
    view = window.panels[panel]
    if not wait_until(app, view.has_first_image, timeout):
        window.close()
        ctx.bridge.shutdown()
        raise MeasureError(f"the {panel} panel showed no picture within {timeout:.0f} s")
    return app, ctx, window, view


def close_window(ctx, window) -> None:
    window.close()
    ctx.bridge.shutdown()


def wait_until(app, condition, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def wait_painted(app, view, frame: int, t0: float, timeout: float = 5.0) -> float:
    """Milliseconds from ``t0`` until ``view`` has painted a frame newer than ``frame``."""
    while view._painted_frame <= frame:
        app.processEvents()
        if time.perf_counter() - t0 > timeout:
            break
    return (time.perf_counter() - t0) * 1000.0


def percentiles(samples: list[float], prefix: str) -> dict:
    samples = sorted(samples)
    return {f"{prefix}_ms_p50": round(statistics.median(samples), 2),
            f"{prefix}_ms_p95": round(samples[int(0.95 * (len(samples) - 1))], 2)}
