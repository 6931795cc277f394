"""Qt side of the renderer: results arrive as a signal on the GUI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.engine.renderer import RenderResult, Renderer
from studio.engine.runtime import RuntimePool


class RenderBridge(QObject):
    # Emitted from the render thread; Qt queues it to receivers on the GUI thread.
    _fromThread = Signal(object)
    resultReady = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = RuntimePool()
        self.renderer = Renderer(self._fromThread.emit)
        self._fromThread.connect(self._on_result)

    def register(self, request_type: type, handler) -> None:
        self.renderer.register(request_type, handler)

    def submit(self, channel: str, request: Any, background: bool = False) -> int:
        return self.renderer.submit(channel, request, background)

    def cancel(self, channel: str) -> None:
        self.renderer.cancel(channel)

    def _on_result(self, result: RenderResult) -> None:
        # A newer request may have been submitted while this one was in flight.
        if self.renderer.is_current(result.channel, result.seq):
            self.resultReady.emit(result)

    def shutdown(self) -> None:
        """Stop rendering: a running stream stops at its next step and delivers nothing more."""
        self.renderer.shutdown()
