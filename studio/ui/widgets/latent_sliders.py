"""One labelled slider per latent dimension, about ±3 sigma."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider


class LatentSliders(QScrollArea):
    changed = Signal()  # any slider moved (by hand or by set_values)

    def __init__(self, span: float = 3.0, parent=None):
        super().__init__(parent)
        self.span = span
        self.sliders: list[QLabeledDoubleSlider] = []
        self._inner = QWidget()
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(2)
        self.setWidget(self._inner)
        self.setWidgetResizable(True)
        self.setMinimumWidth(220)
        self._muted = False

    def set_dims(self, n: int) -> None:
        if n == len(self.sliders):
            return
        for s in self.sliders:
            s.deleteLater()
        self.sliders = []
        for i in range(n):
            s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            s.setRange(-self.span, self.span)
            s.setDecimals(2)
            s.setSingleStep(0.05)
            s.setValue(0.0)
            s.setToolTip(f"z[{i}]: prior N(0, 1), range ±{self.span:g} sigma")
            s.setObjectName(f"z{i}")
            s.valueChanged.connect(self._on_slider)
            self._layout.addWidget(s)
            self.sliders.append(s)
        self._layout.addStretch(1)

    def _on_slider(self, _value) -> None:
        if not self._muted:
            self.changed.emit()

    def values(self) -> np.ndarray:
        return np.array([s.value() for s in self.sliders], dtype=np.float32)

    def set_values(self, z) -> None:
        """Set all sliders at once, emitting ``changed`` a single time."""
        self._muted = True
        try:
            for s, v in zip(self.sliders, z):
                s.setValue(float(np.clip(v, -self.span, self.span)))
        finally:
            self._muted = False
        self.changed.emit()
