"""Scatter of a dataset's encoded means, coloured by label (pyqtgraph)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class LatentScatter(pg.PlotWidget):
    pointPicked = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground((24, 24, 28))
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setAspectLocked(True)
        self.addLegend(offset=(5, 5))
        self._items: list[pg.ScatterPlotItem] = []
        self._cursor = pg.ScatterPlotItem(size=14, pen=pg.mkPen((255, 80, 60), width=2), brush=None)
        self.addItem(self._cursor)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.point_count = 0

    def set_points(self, xy: np.ndarray, labels: np.ndarray | None, dims: tuple[int, int]) -> None:
        for item in self._items:
            self.removeItem(item)
        self._items = []
        self.plotItem.legend.clear()
        groups = [(None, np.ones(len(xy), bool))] if labels is None else \
            [(int(k), labels == k) for k in np.unique(labels)]
        for label, mask in groups:
            colour = _COLOURS[(label or 0) % len(_COLOURS)]
            item = pg.ScatterPlotItem(xy[mask, 0], xy[mask, 1], size=4, pen=None,
                                      brush=pg.mkBrush(*colour, 160), name=str(label) if label is not None else "data")
            self.addItem(item)
            self._items.append(item)
        self.point_count = len(xy)
        self.setLabel("bottom", f"z[{dims[0]}]")
        self.setLabel("left", f"z[{dims[1]}]")

    def set_cursor(self, x: float, y: float) -> None:
        self._cursor.setData([x], [y])

    def _clicked(self, event) -> None:
        pos = self.plotItem.vb.mapSceneToView(event.scenePos())
        self.pointPicked.emit(float(pos.x()), float(pos.y()))
