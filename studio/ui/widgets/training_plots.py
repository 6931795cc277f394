"""Live loss curves: growing numpy buffers drawn with pyqtgraph.

Points are appended cheaply (amortised O(1) into preallocated arrays) and the
plot is redrawn at most a few times a second by whoever calls ``redraw``.
Downsampling and clip-to-view keep 100k points per curve smooth.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget


_COLOURS = ["#4e9af1", "#f1a44e", "#5fc46b", "#e05050", "#b07cf0", "#40c0c0"]


class _Series:
    __slots__ = ("x", "y", "n")

    def __init__(self, capacity: int = 1024):
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def extend(self, xs, ys) -> None:
        m = len(xs)
        need = self.n + m
        if need > len(self.x):
            cap = max(need, 2 * len(self.x))
            self.x = np.resize(self.x, cap)
            self.y = np.resize(self.y, cap)
        self.x[self.n:need] = xs
        self.y[self.n:need] = ys
        self.n = need

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[: self.n], self.y[: self.n]


class LossCurves(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground(None)
        # No grid and 1-px (cosmetic) pens: both cost far more to paint than the curves
        # themselves once 100k points are on the plot.
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.log_y = QCheckBox("log scale")
        self.log_y.toggled.connect(lambda on: self.plot.setLogMode(y=on))
        title = QLabel("Loss curves")
        title.setStyleSheet("font-weight: bold;")
        title.setToolTip("every logged loss per optimisation step; the Explain pane says what each one is")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.log_y)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        self.series: dict[str, _Series] = {}
        self.items: dict[str, pg.PlotDataItem] = {}
        self._dirty = False
        self._pending: dict[str, tuple[list, list]] = {}

    # --- data ----------------------------------------------------------------------
    def clear(self) -> None:
        for item in self.items.values():
            self.plot.removeItem(item)
        self.legend.clear()
        self.series.clear()
        self.items.clear()
        self._pending.clear()
        self._dirty = False

    def append(self, step: float, losses: dict[str, float]) -> None:
        """Queue one point per loss; cheap, drawn on the next ``redraw``."""
        for k, v in losses.items():
            xs, ys = self._pending.setdefault(k, ([], []))
            xs.append(step)
            ys.append(v)
        self._dirty = True

    def set_history(self, history: dict[str, list[float]]) -> None:
        """Replace everything with whole columns ({"step": [...], "loss": [...], ...})."""
        self.clear()
        steps = np.asarray(history.get("step", []), dtype=np.float64)
        for k, v in history.items():
            if k in ("step", "time"):
                continue
            v = np.asarray(v, dtype=np.float64)
            n = min(len(v), len(steps))
            s = self._series_for(k)
            s.extend(steps[:n], v[:n])
        self._dirty = True
        self.redraw()

    def point_count(self, key: str = "loss") -> int:
        s = self.series.get(key)
        pend = len(self._pending.get(key, ([], []))[0])
        return (s.n if s else 0) + pend

    def data(self, key: str = "loss") -> tuple[np.ndarray, np.ndarray]:
        self.redraw()
        s = self.series.get(key)
        return s.view() if s else (np.empty(0), np.empty(0))

    # --- drawing -------------------------------------------------------------------
    def _series_for(self, key: str) -> _Series:
        if key not in self.series:
            self.series[key] = _Series()
            pen = pg.mkPen(_COLOURS[len(self.items) % len(_COLOURS)], width=1)
            item = self.plot.plot([], [], pen=pen, name=key)
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            self.items[key] = item
        return self.series[key]

    def redraw(self) -> None:
        if not self._dirty:
            return
        for k, (xs, ys) in self._pending.items():
            self._series_for(k).extend(xs, ys)
        self._pending.clear()
        for k, s in self.series.items():
            x, y = s.view()
            self.items[k].setData(x, y)
        self._dirty = False
