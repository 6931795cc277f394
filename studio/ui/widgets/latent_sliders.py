"""One labelled slider per latent dimension (about ±3 sigma), listed most-used first.

``sliders[i]`` always controls z[i]; only the order on screen follows the
usage, so code that sets a dimension never has to know where it is shown.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider

from studio.ui import theme


class LatentSliders(QScrollArea):
    changed = Signal()  # any slider moved (by hand or by set_values)

    def __init__(self, span: float = 3.0, parent=None):
        super().__init__(parent)
        self.span = span
        self.sliders: list[QLabeledDoubleSlider] = []
        self.labels: list[QLabel] = []
        self._rows: list[QWidget] = []
        self._order: list[int] = []
        self._inner = QWidget()
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(2)
        self._layout.addStretch(1)  # the one stretch, always last: rows stay packed at the top
        self.setWidget(self._inner)
        self.setWidgetResizable(True)
        self.setMinimumWidth(240)
        self._muted = False

    def set_dims(self, n: int) -> None:
        if n == len(self.sliders):
            return
        for row in self._rows:
            self._layout.removeWidget(row)
            row.hide()  # gone from the screen now, not when the event loop gets to deleting it
            row.deleteLater()
        self.sliders, self.labels, self._rows = [], [], []
        for i in range(n):
            label = QLabel(f"z[{i}]")
            label.setMinimumWidth(96)
            s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            s.setRange(-self.span, self.span)
            s.setDecimals(2)
            s.setSingleStep(0.05)
            s.setValue(0.0)
            s.setObjectName(f"z{i}")
            s.valueChanged.connect(self._on_slider)
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(label)
            lay.addWidget(s, 1)
            self._layout.insertWidget(self._layout.count() - 1, row)
            self.sliders.append(s)
            self.labels.append(label)
            self._rows.append(row)
        self.set_order(range(n))

    def set_order(self, order: Sequence[int]) -> None:
        """Show the rows in ``order`` (dimension indices), top to bottom."""
        order = list(order)
        if sorted(order) != list(range(len(self._rows))):
            raise ValueError(f"{order} is not an order of {len(self._rows)} dimensions")
        for row in self._rows:
            self._layout.removeWidget(row)
        for position, dim in enumerate(order):
            self._layout.insertWidget(position, self._rows[dim])
        self._order = order

    def order(self) -> list[int]:
        return list(self._order)

    def set_labels(self, texts: Sequence[str], tooltips: Sequence[str], inactive: Sequence[bool]) -> None:
        for label, slider, text, tip, off in zip(self.labels, self.sliders, texts, tooltips, inactive):
            label.setText(text + ("  (inactive)" if off else ""))
            label.setToolTip(tip)
            slider.setToolTip(tip)
            label.setStyleSheet(f"color: {theme.INACTIVE};" if off else "")

    def row_widget(self, dim: int) -> QWidget:
        return self._rows[dim]

    def _on_slider(self, _value) -> None:
        if not self._muted:
            self.changed.emit()

    def values(self) -> np.ndarray:
        return np.array([s.value() for s in self.sliders], dtype=np.float32)

    def set_values(self, z, emit: bool = True) -> None:
        """Set all sliders at once, emitting ``changed`` a single time (or not at all)."""
        self._muted = True
        try:
            for s, v in zip(self.sliders, z):
                s.setValue(float(np.clip(v, -self.span, self.span)))
        finally:
            self._muted = False
        if emit:
            self.changed.emit()
