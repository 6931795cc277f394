"""GUI measurements of the GAN panels for ``python -m studio.bench`` (gui area): real windows, offscreen.

- ``gan_slider_to_pixels``: drag a z slider of the GAN explorer with real mouse
  events; each move's time until its picture is painted.
- ``style_mixing_grid``: click the coarse/middle/fine presets of the style-mixing
  panel; each click's time until the new 4x4 grid (and its sources) is painted.
"""

from __future__ import annotations

import os
import statistics
import time


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _window(family: str, checkpoint: str, panel: str):
    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow

    app = _app()
    ctx = AppContext("onnx", "auto")
    ctx.checkpoints[family] = checkpoint
    window = MainWindow(ctx, [panel])
    window.resize(1180, 780)
    window.show()
    view = window.panels[panel]
    deadline = time.perf_counter() + 60
    while not view.has_first_image() and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
    return app, ctx, window, view


def _wait_painted(app, view, frame: int, t0: float) -> float:
    while view._painted_frame <= frame:
        app.processEvents()
        if time.perf_counter() - t0 > 5:
            break
    return (time.perf_counter() - t0) * 1000.0


def _percentiles(samples: list[float], prefix: str) -> dict:
    samples = sorted(samples)
    return {f"{prefix}_ms_p50": round(statistics.median(samples), 2),
            f"{prefix}_ms_p95": round(samples[int(0.95 * (len(samples) - 1))], 2)}


def gan_slider_to_pixels(checkpoint: str, moves: int, family: str = "stylegan") -> dict:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    app, ctx, window, panel = _window(family, checkpoint, "gan")
    slider = panel.sliders.sliders[0]._slider
    centre = QPoint(slider.width() // 2, slider.height() // 2)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, pos=centre)
    samples = []
    for i in range(moves):
        frame = panel.generated.frame()
        dx = int((slider.width() // 3) * ((i % 20) - 10) / 10)
        t0 = time.perf_counter()
        QTest.mouseMove(slider, QPoint(centre.x() + dx + (1 if i % 2 else 0), centre.y()))
        samples.append(_wait_painted(app, panel.generated, frame, t0))
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=centre)
    window.close()
    ctx.bridge.shutdown()
    panel.projection.shutdown()
    return {**_percentiles(samples, "gan_slider_to_pixels"), "gan_slider_moves": len(samples)}


def style_mixing_grid(checkpoint: str, repeats: int) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    app, ctx, window, panel = _window("stylegan", checkpoint, "style-mixing")
    buttons = list(panel.layers.preset_buttons.values())
    samples = []
    for i in range(repeats):
        frame = panel.grid.frame()
        t0 = time.perf_counter()
        QTest.mouseClick(buttons[(i + 1) % len(buttons)], Qt.MouseButton.LeftButton)
        samples.append(_wait_painted(app, panel.grid, frame, t0))
    rows, cols = panel.last_grid.payload.rows, panel.last_grid.payload.cols
    window.close()
    ctx.bridge.shutdown()
    out = _percentiles(samples, "style_mixing_grid")
    return {"style_mixing_grid_ms": out["style_mixing_grid_ms_p50"],
            "style_mixing_grid_ms_p95": out["style_mixing_grid_ms_p95"],
            "style_mixing_grid_size": f"{rows}x{cols}"}
