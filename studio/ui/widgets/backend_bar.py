"""Backend and device pickers for the window's toolbar."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from studio.engine.backends import BACKENDS, DEVICES
from studio.ui.context import AppContext


class BackendBar(QWidget):
    def __init__(self, context: AppContext, parent=None):
        super().__init__(parent)
        self.context = context
        self.backend = QComboBox()
        self.backend.addItems(BACKENDS)
        self.backend.setCurrentText(context.backend)
        self.backend.setToolTip("Inference engine: ONNX Runtime or PyTorch eager (Ctrl+B)")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(context.device)
        self.device.setToolTip("auto: the GPU when one really works, else the CPU (Ctrl+D)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Backend"))
        lay.addWidget(self.backend)
        lay.addWidget(QLabel("Device"))
        lay.addWidget(self.device)
        self.backend.currentTextChanged.connect(self._changed)
        self.device.currentTextChanged.connect(self._changed)

    def next_backend(self) -> None:
        self.backend.setCurrentIndex((self.backend.currentIndex() + 1) % self.backend.count())

    def next_device(self) -> None:
        self.device.setCurrentIndex((self.device.currentIndex() + 1) % self.device.count())

    def _changed(self, *_):
        self.context.set_backend(self.backend.currentText(), self.device.currentText())
