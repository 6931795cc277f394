"""Benchmark measurements of the real diffusion panel, driven offscreen (``python -m studio.bench``).

Built on studio.ui.measure.common; the benchmark (studio/bench/diffusion.py)
calls them. Nothing here is used by the app.
"""

from __future__ import annotations

import time

from studio.ui.measure.common import MeasureError, offscreen_app


def _open_panel(checkpoint: str):
    from studio.families.diffusion.ui.panel import DiffusionPanel
    from studio.ui.context import AppContext

    app = offscreen_app()
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = checkpoint
    panel = DiffusionPanel(ctx)
    panel.resize(1180, 780)
    panel.show()
    deadline = time.perf_counter() + 60
    while (panel.running or not panel.has_first_image()) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
    if panel.running:
        raise MeasureError("the panel's first sample did not finish within 60 s")
    return app, ctx, panel


def _close(app, ctx, panel) -> None:
    ctx.bridge.shutdown()
    panel.close()
    panel.deleteLater()
    app.processEvents()


def measure_sample_in_app(checkpoint: str, runs: dict[tuple[str, int], int],
                          before_each=None) -> dict[tuple[str, int], list[float]]:
    """Milliseconds from a click on Sample to the finished sample painted, per (sampler, steps).

    Runs the app's own event loop (no polling) so the time is what a user waits.
    ``before_each(sampler, steps)`` runs before every sample: the benchmark
    times the model alone there, so both figures see the same load on a shared machine.
    """
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    app, ctx, panel = _open_panel(checkpoint)
    out: dict[tuple[str, int], list[float]] = {}
    try:
        for (sampler, steps), repeats in runs.items():
            panel.sampler.setCurrentIndex(panel.sampler.findData(sampler))
            panel.steps.setValue(steps)
            times = out.setdefault((sampler, steps), [])
            for _ in range(repeats):
                loop = QEventLoop()
                done: dict[str, float] = {}
                view = panel.views["x_t"]

                def final_arrived(result, done=done):
                    if result.final and result.channel == "diffusion.sample":
                        done["final"] = 1.0

                def painted(_frame, done=done, loop=loop):
                    if "final" in done and "t" not in done:
                        done["t"] = time.perf_counter()
                        loop.quit()

                panel.rendered.connect(final_arrived)
                view.painted.connect(painted)
                if before_each is not None:
                    before_each(sampler, steps)
                QTimer.singleShot(120_000, loop.quit)
                t0 = time.perf_counter()
                QTest.mouseClick(panel.sample_button, Qt.MouseButton.LeftButton)
                loop.exec()
                panel.rendered.disconnect(final_arrived)
                view.painted.disconnect(painted)
                if "t" not in done:
                    raise MeasureError(f"{sampler}-{steps}: the finished sample was not painted within 120 s")
                times.append((done["t"] - t0) * 1000.0)
    finally:
        _close(app, ctx, panel)
    return out


def measure_playback_fps(checkpoint: str, seconds: float = 2.0) -> float:
    """Frames per second the real panel paints playing a recorded trajectory as fast as it can."""
    app, ctx, panel = _open_panel(checkpoint)
    painted: list[float] = []
    panel.views["x0"].painted.connect(lambda frame: painted.append(time.perf_counter()))
    panel.playback.loop.setChecked(True)
    panel.playback.set_index(0)
    panel.playback.play()
    panel.playback.set_interval_ms(0)  # as fast as the event loop paints
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        app.processEvents()
    elapsed = time.perf_counter() - t0
    panel.playback.pause()
    _close(app, ctx, panel)
    return len(painted) / elapsed
