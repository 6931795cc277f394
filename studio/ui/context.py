"""What every panel shares: the render bridge and the backend/device choice."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from studio.engine.setup import configure_process
from studio.ui.render_bridge import RenderBridge


class AppContext(QObject):
    backendChanged = Signal(str, str)  # backend, device
    checkpointOpened = Signal(str, str)  # family, path: "show this in the matching panel"
    checkpointUpdated = Signal(str, str)  # family, path: a training run wrote it; explorers may reload quietly

    def __init__(self, backend: str = "onnx", device: str = "auto", parent=None):
        super().__init__(parent)
        # Process-wide settings, once, before any render thread runs. ONNX Runtime's log level is
        # set by the first session the renderer opens (its import would delay the window).
        configure_process(with_onnxruntime=False)
        self.bridge = RenderBridge(self)
        self.backend = backend
        self.device = device
        self.checkpoints: dict[str, str] = {}  # family -> checkpoint path chosen at start-up

    def set_backend(self, backend: str, device: str) -> None:
        if (backend, device) != (self.backend, self.device):
            self.backend, self.device = backend, device
            self.backendChanged.emit(backend, device)
