"""A benchmark measurement of the real CycleGAN panel, driven offscreen (``python -m studio.bench``).

``drop_to_result_ms``: real drag-enter and drop events carrying a digit file's URL (as a file
manager sends them) go to the panel of the real window; each drop is timed until its
translation is painted. Built on studio.ui.measure.common; the benchmark
(studio/bench/cyclegan.py) calls it. Nothing here is used by the app.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from studio.ui.measure.common import MeasureError, close_window, open_window, percentiles


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

    app, ctx, window, panel = open_window("cyclegan", {"cyclegan": checkpoint})
    view = panel.views.translation
    samples: list[float] = []
    try:
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
                    raise MeasureError(f"{path.name}: no translation painted within 10 s ({panel.status.text()})")
                if panel.state.current() is None or panel.state.current().name != path.name:
                    raise MeasureError(f"{path.name}: the panel painted another picture")
                if i:
                    samples.append((done["t"] - t0) * 1000.0)
    finally:
        close_window(ctx, window)
    out = percentiles(samples, "drop_to_result")
    return {"drop_to_result_ms": out["drop_to_result_ms_p50"], "drop_to_result_ms_p95": out["drop_to_result_ms_p95"],
            "drop_to_result_drops": len(samples)}
