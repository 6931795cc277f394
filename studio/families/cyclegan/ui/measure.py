"""A benchmark measurement of the real CycleGAN panel, driven offscreen (``python -m studio.bench``).

``drop_to_result_ms``: real drag-enter and drop events carrying a digit file's URL (as a file
manager sends them) go to the panel of the real window; each drop is timed until its
translation is painted. It lives beside the panel because it drives its widgets; the
benchmark (studio/bench/cyclegan.py) calls it. Nothing here is used by the app.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path


class PanelMeasureError(RuntimeError):
    """The panel did not get where the measurement needs it."""


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _digit_files(folder: Path, count: int) -> list[Path]:
    """``count`` different held-out digits of the model's input domain, as PNG files."""
    from studio.families.cyclegan.ui.samples import available, sample_digit

    domain = "handwritten" if available("handwritten") else "printed"
    files = []
    for i in range(count):
        data, _ = sample_digit(domain, i)
        path = folder / f"digit_{i:03d}.png"
        path.write_bytes(data)
        files.append(path)
    return files


def drop(panel, path: Path) -> None:
    """Drag a file over the panel and drop it, as a file manager does."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPoint(panel.width() // 2, panel.height() // 2)
    QApplication.sendEvent(panel, QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                                  Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(panel, QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                             Qt.KeyboardModifier.NoModifier))


def _settle(app, panel, seconds: float = 10.0) -> None:
    """Wait until the panel is idle: the Explain pane's formulas for the picture on screen drawn.

    A person drops one picture at a time; the pane's follow-up work for the last one (its
    formulas drawn in a helper process) is done before the next, so each drop is timed from rest.
    """
    deadline = time.perf_counter() + seconds
    pane = panel.explain
    while time.perf_counter() < deadline and (panel._explain_stale or pane.drawn_equations() != pane.equations()):
        app.processEvents()
        time.sleep(0.002)
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def drop_to_result_ms(checkpoint: str, drops: int = 20) -> dict:
    """Milliseconds from a dropped digit file to its translation painted: median and p95 of ``drops``."""
    from PySide6.QtCore import QEventLoop, QTimer

    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow

    app = _app()
    ctx = AppContext("onnx", "auto")
    ctx.checkpoints["cyclegan"] = checkpoint
    window = MainWindow(ctx, ["cyclegan"], remember=False)
    window.resize(1180, 780)
    window.show()
    panel = window.panels["cyclegan"]
    view = panel.views.translation
    samples: list[float] = []
    try:
        deadline = time.perf_counter() + 60
        while not panel.has_first_image() and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)
        if not panel.has_first_image():
            raise PanelMeasureError(f"the panel showed no translation within 60 s ({panel.status.text()})")
        with tempfile.TemporaryDirectory() as folder:
            files = _digit_files(Path(folder), drops + 1)
            for i, path in enumerate(files):  # the first drop warms up, unmeasured
                _settle(app, panel, 60.0 if i == 0 else 10.0)  # the first: matplotlib loads in the helper
                loop = QEventLoop()
                done: dict[str, float] = {}
                frame = view.frame()

                def painted(shown: int, done=done, loop=loop, frame=frame) -> None:
                    if shown > frame and "t" not in done:
                        done["t"] = time.perf_counter()
                        loop.quit()

                view.painted.connect(painted)
                QTimer.singleShot(10_000, loop.quit)
                t0 = time.perf_counter()
                drop(panel, path)
                loop.exec()
                view.painted.disconnect(painted)
                if "t" not in done:
                    raise PanelMeasureError(f"{path.name}: no translation painted within 10 s ({panel.status.text()})")
                if panel.state.current() is None or panel.state.current().name != path.name:
                    raise PanelMeasureError(f"{path.name}: the panel painted another picture")
                if i:
                    samples.append((done["t"] - t0) * 1000.0)
    finally:
        window.close()
        ctx.bridge.shutdown()
    samples.sort()
    return {"drop_to_result_ms": round(statistics.median(samples), 2),
            "drop_to_result_ms_p95": round(samples[int(0.95 * (len(samples) - 1))], 2),
            "drop_to_result_drops": len(samples)}
