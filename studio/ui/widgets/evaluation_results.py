"""The evaluation panel's results: the table of figures and the gallery of sample grids."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.evaluation.tables import HEADINGS, entries, text_rows
from studio.ui.widgets.image_view import ImageView


class ResultsTable(QTableWidget):
    """One row per model (the floor first), one column per figure; tooltips hold the warnings."""

    def __init__(self, parent=None):
        super().__init__(0, len(HEADINGS), parent)
        self.setHorizontalHeaderLabels(HEADINGS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_report(self, report: dict | None) -> None:
        rows = text_rows(report) if report else []
        named = entries(report) if report else []
        self.setRowCount(len(rows))
        for r, (row, (_name, entry)) in enumerate(zip(rows, named)):
            tip = entry.get("error") or "\n".join(entry.get("warnings", []))
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if tip:
                    item.setToolTip(tip)
                self.setItem(r, c, item)

    def cell_text(self, row: int, heading: str) -> str:
        item = self.item(row, HEADINGS.index(heading))
        return item.text() if item is not None else ""


class SampleGallery(QScrollArea):
    """Sample grids side by side: the real held-out digits first, then each model's samples."""

    COLUMNS = 3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self.setWidget(self._inner)
        self.views: dict[str, ImageView] = {}

    def clear_models(self) -> None:
        """Drop every model's grid, keeping the real digits."""
        for name in [n for n in self.views if n != "real"]:
            view = self.views.pop(name)
            box = view.parentWidget()
            self._grid.removeWidget(box)
            box.deleteLater()

    def show_grid(self, name: str, title: str, grid: np.ndarray) -> ImageView:
        if name not in self.views:
            box = QWidget()
            layout = QVBoxLayout(box)
            layout.setContentsMargins(2, 2, 2, 2)
            caption = QLabel(title)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view = ImageView(box, min_size=180)
            layout.addWidget(caption)
            layout.addWidget(view, 1)
            index = len(self.views)
            self._grid.addWidget(box, index // self.COLUMNS, index % self.COLUMNS)
            self.views[name] = view
        view = self.views[name]
        view.set_image(grid)
        return view
