"""The noise schedule plot: alpha_bar_t and SNR(t) on a log axis, with a marker at t.

Moving the marker repaints part of the plot (pyqtgraph: Python work on the
GUI thread), which costs more than drawing a playback frame; the marker
therefore moves at most every ``MIN_INTERVAL_MS`` (superqt's ``qthrottled``:
always ending on the newest t). While the model runs it moves ``slowly``:
twice a second, the first time after half a second, so a short sample leaves
the plot alone until it ends.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem

from superqt.utils import qthrottled

MIN_INTERVAL_MS = 33
SLOW_INTERVAL_MS = 500


class SchedulePlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground((24, 24, 28))
        self.setMinimumHeight(140)
        self.setLogMode(x=False, y=True)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "t")
        self.setTitle("Noise schedule (log scale)", size="10pt")
        self.addLegend(offset=(10, -10), labelTextColor=(220, 220, 220))  # bottom left: no curve there
        # SNR = 1 (log10 = 0): left of this line the digit outweighs the noise in x_t.
        self.snr_one = pg.InfiniteLine(pos=0, angle=0, movable=False,
                                       pen=pg.mkPen((255, 170, 60), width=1, style=Qt.PenStyle.DashLine))
        self.addItem(self.snr_one)
        self.snr_one_label = pg.TextItem("SNR = 1", color=(255, 170, 60), anchor=(0, 1))
        self.addItem(self.snr_one_label)
        self.alpha_curve = self.plot([], [], pen=pg.mkPen((90, 170, 255), width=2), name="ᾱ(t)")
        self.snr_curve = self.plot([], [], pen=pg.mkPen((255, 170, 60), width=2), name="SNR(t) = ᾱ/(1−ᾱ)")
        self.marker = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen((255, 80, 60), width=2))
        self.addItem(self.marker)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        # Moving the marker repaints what lies under it: the axes (their grid spans the plot) and the
        # curves. Drawn from a cached picture, that costs ~1 ms instead of ~5.
        cached = QGraphicsItem.CacheMode.DeviceCoordinateCache
        for name in ("left", "bottom"):
            self.getPlotItem().getAxis(name).setCacheMode(cached)
        for item in (self.alpha_curve, self.snr_curve):
            item.curve.setCacheMode(cached)
        self._t = 0
        self._move_marker = qthrottled(self._place_marker, MIN_INTERVAL_MS, parent=self)
        self._move_marker_slowly = qthrottled(self._place_marker, SLOW_INTERVAL_MS, leading=False, parent=self)

    def set_curves(self, t: np.ndarray, alpha_bar: np.ndarray, snr: np.ndarray) -> None:
        # Log axis: leave out t = 0 where SNR is infinite. ~250 points draw the smooth curves.
        idx = np.unique(np.concatenate([np.arange(1, len(t), max(1, len(t) // 250)), [len(t) - 1]]))
        self.alpha_curve.setData(t[idx], alpha_bar[idx])
        self.snr_curve.setData(t[idx], snr[idx])
        self.setXRange(0, float(t[-1]), padding=0.01)
        self.snr_one_label.setPos(float(t[-1]) * 0.5, 0.0)

    def set_t(self, t: int, now: bool = False, slowly: bool = False) -> None:
        """Move the marker to ``t``: at the throttled rate, ``now`` (a step the user stopped on), or
        ``slowly`` (while the model runs)."""
        self._t = int(t)
        if slowly:
            self._move_marker_slowly()
            return
        self._move_marker_slowly.cancel()
        self._move_marker()
        if now:
            self._move_marker.flush()

    def _place_marker(self) -> None:
        self.marker.setValue(self._t)

    def t(self) -> int:
        return self._t
