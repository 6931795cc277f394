"""Projection of a dropped picture into W or W+: progress, the loss curve, cancel, the result.

The projection runs on its own renderer thread, so the panels keep rendering
(latest request wins there as everywhere) while it optimises.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
)

from studio.engine.renderer import RenderResult
from studio.families.stylegan import ops
from studio.ui.render_bridge import RenderBridge
from studio.ui.widgets.image_view import ImageView

CHANNEL = "gan.project"


class ProjectionBox(QGroupBox):
    projected = Signal(object, object)  # the Code found, and the final ProjectionStep
    failed = Signal(str)

    def __init__(self, pool, parent=None):
        super().__init__("Project a picture: drop an image here or paste it (Ctrl+V)", parent)
        self.bridge = RenderBridge(self)  # its own thread: a projection never blocks the other views
        ops.register(self.bridge, pool, {ops.GanProject})
        self.bridge.resultReady.connect(self._on_result)
        self.space = QComboBox()
        self.space.addItem("W (one w)", "w")
        self.space.addItem("W+ (a w per layer)", "w+")
        self.space.setToolTip("W keeps the picture on the generator's manifold; W+ fits closer but edits less cleanly")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.pair = ImageView(min_size=90)
        self.pair.set_placeholder("target | projection")
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self._plot = None  # pyqtgraph, built on first use (start-up time)
        self._curve = None
        self.running = False
        self.last_step: ops.ProjectionStep | None = None
        row = QHBoxLayout()
        row.addWidget(self.space)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        self._layout = QVBoxLayout(self)
        self._layout.addLayout(row)
        self._layout.addWidget(self.pair, 1)
        self._layout.addWidget(self.info)

    @property
    def plot(self):
        if self._plot is None:
            import pyqtgraph as pg

            self._plot = pg.PlotWidget()
            self._plot.setLabel("bottom", "step")
            self._plot.setLabel("left", "loss")
            self._plot.setLogMode(y=True)
            self._plot.setMinimumHeight(110)
            self._curve = self._plot.plot([], [], pen=pg.mkPen((230, 160, 60), width=2))
            self._layout.insertWidget(2, self._plot, 1)
        return self._plot

    def start(self, target: ops.Target, source: str | bytes) -> None:
        self.plot  # noqa: B018  (shown from the first step on)
        self._curve.setData([], [])
        self.progress.setValue(0)
        self.running = True
        self.cancel_button.setEnabled(True)
        name = source if isinstance(source, str) else "pasted image"
        self.info.setText(f"projecting {name} into {self.space.currentData().upper()}…")
        self.bridge.submit(CHANNEL, ops.GanProject(target, source, space=self.space.currentData()))

    def cancel(self) -> None:
        if self.running:
            self.bridge.cancel(CHANNEL)
            self._finish("cancelled")

    def _finish(self, message: str) -> None:
        self.running = False
        self.cancel_button.setEnabled(False)
        self.info.setText(message)

    def _on_result(self, result: RenderResult) -> None:
        if result.error:
            self._finish("")
            self.failed.emit(result.error)
            return
        step: ops.ProjectionStep = result.payload
        self.pair.set_image(result.image)
        curve = np.asarray(step.loss, dtype=float)
        if len(curve):
            self._curve.setData(np.arange(1, len(curve) + 1), curve)
        self.progress.setValue(100 if result.final else int(100 * step.step / max(1, step.steps)))
        if result.final:
            self.last_step = step
            note = f"; pixel loss only ({step.classifier})" if step.classifier else ""
            self._finish(f"{step.step} steps in {step.seconds:.1f} s, loss {curve[0]:.4f} -> "
                         f"{curve[-1]:.4f}{note}")
            self.projected.emit(ops.Code(ws=step.ws, noise=step.noise), step)

    def shutdown(self) -> None:
        self.bridge.shutdown()
