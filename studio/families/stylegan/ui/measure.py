"""The GAN panels' measurements for ``python -m studio.bench`` (gui area), built on studio.ui.measure.common.

- ``gan_slider_to_pixels``: drag a z slider of the GAN explorer with real mouse
  events; each move's time until its picture is painted.
- ``style_mixing_grid``: click the coarse/middle/fine presets of the style-mixing
  panel; each click's time until the new 4x4 grid (and its sources) is painted.
"""

from __future__ import annotations

import time

from studio.ui.measure.common import open_window, percentiles, wait_painted


def gan_slider_to_pixels(checkpoint: str, moves: int, family: str = "stylegan") -> dict:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    app, ctx, window, panel = open_window("gan", {family: checkpoint})
    slider = panel.sliders.sliders[0]._slider
    centre = QPoint(slider.width() // 2, slider.height() // 2)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, pos=centre)
    samples = []
    for i in range(moves):
        frame = panel.generated.frame()
        dx = int((slider.width() // 3) * ((i % 20) - 10) / 10)
        t0 = time.perf_counter()
        QTest.mouseMove(slider, QPoint(centre.x() + dx + (1 if i % 2 else 0), centre.y()))
        samples.append(wait_painted(app, panel.generated, frame, t0))
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=centre)
    window.close()
    ctx.bridge.shutdown()
    panel.projection.shutdown()
    return {**percentiles(samples, "gan_slider_to_pixels"), "gan_slider_moves": len(samples)}


def style_mixing_grid(checkpoint: str, repeats: int) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    app, ctx, window, panel = open_window("style-mixing", {"stylegan": checkpoint})
    buttons = list(panel.layers.preset_buttons.values())
    samples = []
    for i in range(repeats):
        frame = panel.grid.frame()
        t0 = time.perf_counter()
        QTest.mouseClick(buttons[(i + 1) % len(buttons)], Qt.MouseButton.LeftButton)
        samples.append(wait_painted(app, panel.grid, frame, t0))
    rows, cols = panel.last_grid.payload.rows, panel.last_grid.payload.cols
    window.close()
    ctx.bridge.shutdown()
    out = percentiles(samples, "style_mixing_grid")
    return {"style_mixing_grid_ms": out["style_mixing_grid_ms_p50"],
            "style_mixing_grid_ms_p95": out["style_mixing_grid_ms_p95"],
            "style_mixing_grid_size": f"{rows}x{cols}"}
