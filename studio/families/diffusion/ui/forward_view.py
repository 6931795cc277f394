"""Forward-process box: the dropped image, q(x_t | x_0) at a chosen t, and "denoise from t"."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QPushButton, QSlider, QSpinBox

from studio.families.diffusion.ui.views import ElidedLabel, TitledView


class ForwardBox(QGroupBox):
    tChanged = Signal(int)
    denoiseRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__("Forward process: drop a digit image on the panel", parent)
        self.source_cell = TitledView("x<sub>0</sub>: your image", native=(28, 28), min_zoom=3)
        self.source = self.source_cell.view
        self.source.set_placeholder("drop an image")
        self.source.setToolTip("The dropped image x_0 (as the model sees it)")
        self.noised_cell = TitledView("x<sub>t</sub> ~ q(x<sub>t</sub> | x<sub>0</sub>)", native=(28, 28), min_zoom=3)
        self.noised = self.noised_cell.view
        self.noised.set_placeholder("q(xₜ | x₀)")
        self.noised.setToolTip("A sample of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setToolTip("t: 0 is the image itself, T is (almost) pure noise")
        self.spin = QSpinBox()
        self.spin.setRange(0, 1000)
        self.spin.setPrefix("t = ")
        self.info = ElidedLabel("")
        self.denoise = QPushButton("Denoise from t")
        self.denoise.setToolTip("SDEdit: start the sampler at this noised image and denoise it back to t = 0")
        self.denoise.setEnabled(False)
        grid = QGridLayout(self)
        grid.addWidget(self.source_cell, 0, 0)
        grid.addWidget(self.noised_cell, 0, 1)
        grid.addWidget(self.slider, 1, 0, 1, 2)
        grid.addWidget(self.spin, 2, 0)
        grid.addWidget(self.denoise, 2, 1)
        grid.addWidget(self.info, 3, 0, 1, 2)
        grid.setRowStretch(0, 1)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)
        self.denoise.clicked.connect(lambda: self.denoiseRequested.emit(self.t()))
        self.set_t(300)

    def set_max_t(self, T: int) -> None:
        self.slider.setMaximum(T)
        self.spin.setMaximum(T)

    def t(self) -> int:
        return self.slider.value()

    def set_t(self, t: int) -> None:
        self.slider.setValue(int(t))

    def set_has_image(self, has: bool) -> None:
        self.denoise.setEnabled(has and self.t() > 0)

    def _slider_moved(self, value: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self.denoise.setEnabled(self.source.image() is not None and value > 0)
        self.tChanged.emit(value)

    def _spin_changed(self, value: int) -> None:
        self.slider.setValue(value)
