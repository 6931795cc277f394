"""The CycleGAN panel's pictures.

``TripletViews``: the input, its translation and the round trip side by side, each titled,
with the digit classifier's reading under it. ``PictureList``: every picture of the last drop, the one on screen selected; the pictures
that could not be translated are listed too, in the error colour, with the reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio.families.cyclegan.state import CyclePanelState, failure_line
from studio.ui import theme
from studio.ui.widgets.image_view import ImageView


class TripletViews(QWidget):
    """Input | translation | round trip, with a line of numbers under them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.input = ImageView(min_size=150, title="input")
        self.translation = ImageView(min_size=150, title="translation")
        self.reconstruction = ImageView(min_size=150, title="round trip")
        self.input.setToolTip("What the model saw: the picture as fitted to its input")
        self.translation.setToolTip("The picture translated into the other domain")
        self.reconstruction.setToolTip("The translation translated back: cycle consistency says it should be the input")
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.fitting = QLabel("")
        self.fitting.setWordWrap(True)
        self.fitting.setStyleSheet(f"color: {theme.MUTED};")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for view in self.views():
            row.addWidget(view, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row, 1)
        layout.addWidget(self.metrics)
        layout.addWidget(self.fitting)

    def views(self) -> tuple[ImageView, ImageView, ImageView]:
        return self.input, self.translation, self.reconstruction

    def show_state(self, state: CyclePanelState) -> None:
        """Draw the picture the state has on screen (titles, readings and numbers included)."""
        self.set_titles(state.view_titles())
        image = state.current()
        if image is None:
            return
        for view, pixels, reading in zip(self.views(), (image.input, image.translation, image.reconstruction),
                                         state.reading_texts()):
            view.set_caption(reading)
            view.set_image(pixels)
        self.metrics.setText(state.metrics_text())
        self.fitting.setText(state.fitting_text())

    def set_titles(self, titles: tuple[str, str, str]) -> None:
        for view, title in zip(self.views(), titles):
            view.set_title(title)

    def clear(self, placeholder: str) -> None:
        for view in self.views():
            view.clear(placeholder)
            view.set_caption("")
        self.metrics.setText("")
        self.fitting.setText("")


class PictureList(QListWidget):
    """The pictures of the last drop; choosing one shows it."""

    picked = Signal(int)  # index into the translated pictures

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip("Every picture of the last drop: choose one to show it. "
                        "Red lines could not be translated (the reason follows the name).")
        self.setWordWrap(True)  # long file names wrap instead of running out of the box
        self.setMinimumHeight(90)  # five lines at least, however much the folder box below takes
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.currentRowChanged.connect(self._row_changed)
        self._rows: list[int | None] = []  # row -> picture index (None: a failed picture)

    def show_state(self, state: CyclePanelState) -> None:
        self.blockSignals(True)
        self.clear()
        self._rows = []
        result = state.result
        if result is not None:
            for i in range(len(result.images)):
                self.addItem(state.item_label(i))
                self._rows.append(i)
            for name, reason in result.failed:
                item = QListWidgetItem(failure_line(name, reason))
                item.setForeground(QColor(theme.ERROR))
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                self.addItem(item)
                self._rows.append(None)
            if result.images:
                self.setCurrentRow(state.selected)
        self.blockSignals(False)

    def failed_lines(self) -> list[str]:
        return [self.item(r).text() for r, index in enumerate(self._rows) if index is None]

    def _row_changed(self, row: int) -> None:
        if 0 <= row < len(self._rows) and self._rows[row] is not None:
            self.picked.emit(self._rows[row])
