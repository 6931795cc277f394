"""The noise schedule plot: alpha_bar_t and SNR(t) on a log axis, with a marker at t."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


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

    def set_curves(self, t: np.ndarray, alpha_bar: np.ndarray, snr: np.ndarray) -> None:
        # Log axis: leave out t = 0 where SNR is infinite.
        self.alpha_curve.setData(t[1:], alpha_bar[1:])
        self.snr_curve.setData(t[1:], snr[1:])
        self.setXRange(0, float(t[-1]), padding=0.01)

    def set_t(self, t: int) -> None:
        self._t = int(t)
        self.marker.setValue(self._t)

    def t(self) -> int:
        return self._t
