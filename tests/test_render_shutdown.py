"""Closing the window during a long stream (DDPM-1000) returns at once and nothing is drawn afterwards."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from studio.engine.catalog import shipped  # noqa: E402
from studio.ui.context import AppContext  # noqa: E402
from studio.ui.main_window import MainWindow  # noqa: E402

WAIT = 30000


@pytest.mark.skipif(not shipped("diffusion"), reason="no shipped diffusion checkpoint")
def test_closing_the_window_during_ddpm_1000_stops_the_stream(qtbot):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = str(shipped("diffusion")[0])
    window = MainWindow(ctx, ["diffusion"])
    qtbot.addWidget(window)
    window.show()
    panel = window.panels["diffusion"]
    qtbot.waitUntil(lambda: panel.has_first_image() and not panel.running, timeout=WAIT)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    panel.steps.setValue(1000)
    panel.start_sampling()
    qtbot.waitUntil(lambda: panel.state.count() >= 5, timeout=WAIT)
    late = []
    panel.rendered.connect(late.append)
    renderer = ctx.bridge.renderer
    window.close()
    assert not renderer._thread.is_alive()  # shutdown waited for one step at most, not the stream
    assert panel.state.count() < 1000
    qtbot.wait(200)  # results queued before the close must not be shown either
    assert late == []
