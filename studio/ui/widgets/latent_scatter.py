"""Scatter of a dataset's encoded means, one colour and marker shape per label (pyqtgraph)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from studio.ui import theme


class LatentScatter(pg.PlotWidget):
    pointPicked = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent, background=theme.BASE)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setAspectLocked(True)
        for axis in ("bottom", "left"):
            self.getAxis(axis).setTextPen(theme.MUTED)
            self.getAxis(axis).setPen(theme.MUTED)
        self.setTitle("Encoded means μ of a dataset", color=theme.TEXT)
        self.addLegend(offset=(5, 5), labelTextColor=theme.TEXT, brush=pg.mkBrush(23, 24, 27, 200))
        self._items: list[pg.ScatterPlotItem] = []
        self._texts: list[pg.TextItem] = []
        self._cursor = pg.ScatterPlotItem(size=16, pen=pg.mkPen(theme.MARKER, width=2), brush=None)
        self._cursor.setZValue(10)
        self.addItem(self._cursor)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.point_count = 0

    def set_points(self, xy: np.ndarray, labels: np.ndarray | None, dims: tuple[int, int]) -> None:
        for item in self._items + self._texts:
            self.removeItem(item)
        self._items, self._texts = [], []
        self.plotItem.legend.clear()
        groups = [(None, np.ones(len(xy), bool))] if labels is None else \
            [(int(k), labels == k) for k in np.unique(labels)]
        for label, mask in groups:
            k = (label or 0) % len(theme.CLASS_COLOURS)
            colour = pg.mkColor(theme.CLASS_COLOURS[k])
            colour.setAlpha(170)
            item = pg.ScatterPlotItem(xy[mask, 0], xy[mask, 1], size=5, pen=None, brush=pg.mkBrush(colour),
                                      symbol=theme.CLASS_SYMBOLS[k],
                                      name=str(label) if label is not None else "data")
            self.addItem(item)
            self._items.append(item)
            if label is not None and mask.any():
                # The label at the middle of its cluster: readable without matching colours.
                cx, cy = np.median(xy[mask, 0]), np.median(xy[mask, 1])
                text = pg.TextItem(str(label), color=theme.TEXT, anchor=(0.5, 0.5),
                                   fill=pg.mkBrush(23, 24, 27, 170))
                text.setPos(float(cx), float(cy))
                self.addItem(text)
                self._texts.append(text)
        self.point_count = len(xy)
        self.setLabel("bottom", f"μ[{dims[0]}]")
        self.setLabel("left", f"μ[{dims[1]}]")

    def set_cursor(self, x: float, y: float) -> None:
        self._cursor.setData([x], [y])

    def _clicked(self, event) -> None:
        pos = self.plotItem.vb.mapSceneToView(event.scenePos())
        self.pointPicked.emit(float(pos.x()), float(pos.y()))
