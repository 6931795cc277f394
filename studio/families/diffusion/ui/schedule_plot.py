"""The noise schedule plot: alpha_bar_t and SNR(t) on a log axis, with a marker at t.

Moving the marker repaints the whole plot, which costs more than drawing a
playback frame; during fast playback the marker therefore moves at most
every ``MIN_INTERVAL_MS`` (always to the newest t), so playback keeps its rate.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer

MIN_INTERVAL_MS = 33


class SchedulePlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground((24, 24, 28))
        self.setMinimumHeight(140)
        self.setLogMode(x=False, y=True)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "t")
        self.addLegend(offset=(-10, 10))
        self.alpha_curve = self.plot([], [], pen=pg.mkPen((90, 170, 255), width=2), name="alpha_bar(t)")
        self.snr_curve = self.plot([], [], pen=pg.mkPen((255, 170, 60), width=2), name="SNR(t)")
        self.marker = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen((255, 80, 60), width=2))
        self.addItem(self.marker)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self._t = 0
        self._last_move = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._apply)

    def set_curves(self, t: np.ndarray, alpha_bar: np.ndarray, snr: np.ndarray) -> None:
        # Log axis: leave out t = 0 where SNR is infinite. ~250 points draw the smooth curves.
        idx = np.unique(np.concatenate([np.arange(1, len(t), max(1, len(t) // 250)), [len(t) - 1]]))
        self.alpha_curve.setData(t[idx], alpha_bar[idx])
        self.snr_curve.setData(t[idx], snr[idx])
        self.setXRange(0, float(t[-1]), padding=0.01)

    def set_t(self, t: int) -> None:
        self._t = int(t)
        wait_ms = MIN_INTERVAL_MS - (time.perf_counter() - self._last_move) * 1000.0
        if wait_ms <= 0:
            self._apply()
        elif not self._timer.isActive():
            self._timer.start(int(wait_ms) + 1)

    def _apply(self) -> None:
        self._last_move = time.perf_counter()
        self.marker.setValue(self._t)

    def t(self) -> int:
        return self._t
