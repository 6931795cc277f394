"""The base class of every panel: requests out, results in, status shown.

A panel turns gestures into request dataclasses and submits them on channels
named ``"<panel name>.<view>"``; results for its channels come back on the GUI
thread through ``on_result``. Errors become a red line in the panel's status
bar, never a crash. Each panel shows which backend and device ran its last
render and how long it took.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.engine.renderer import RenderResult
from studio.ui.context import AppContext
from studio.ui.widgets.image_view import qimage_png_bytes

DROP_HINT = "Drop an image file (PNG, JPEG, BMP, WebP, GIF, TIFF)."


class Panel(QWidget):
    name = ""  # short name used by --panel
    title = ""
    families: tuple[str, ...] = ()  # checkpoint families this panel can open
    accepts_images = False  # True: dropped and pasted (Ctrl+V) images go to image_dropped()
    firstImage = Signal()  # emitted once, when the first real image is on screen
    rendered = Signal(object)  # every result this panel accepted (tests and benchmark)

    def __init__(self, context: AppContext, parent=None):
        super().__init__(parent)
        self.context = context
        self.bridge = context.bridge
        self._first_done = False
        self.last_result: RenderResult | None = None
        self.status = QLabel("")
        self.status.setObjectName("panelStatus")
        self.status.setWordWrap(True)
        self.body = QWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(self.body, 1)
        outer.addWidget(self.status)
        self.bridge.resultReady.connect(self._on_bridge_result)
        context.backendChanged.connect(lambda *_: self.refresh())
        if self.accepts_images:
            self.setAcceptDrops(True)
            QShortcut(QKeySequence.StandardKey.Paste, self, activated=self.paste_image)

    # --- for subclasses ------------------------------------------------------------
    def submit(self, view: str, request: Any) -> int:
        return self.bridge.submit(f"{self.name}.{view}", request)

    def cancel(self, view: str) -> None:
        self.bridge.cancel(f"{self.name}.{view}")

    def on_result(self, view: str, result: RenderResult) -> None:
        """Show a successful result of ``view``."""

    def refresh(self) -> None:
        """Re-render everything (the backend or the checkpoint changed)."""

    def open_checkpoint(self, path: str) -> None:
        """Show the checkpoint at ``path`` (a file or a run folder)."""
        raise NotImplementedError

    def image_dropped(self, source: str | bytes) -> None:
        """A file path or encoded image bytes the user dropped or pasted."""

    def open_initial_checkpoint(self, picker) -> None:
        """Open the checkpoint named on the command line, else the first shipped one."""
        initial = self.context.checkpoints.get(self.families[0]) or picker.first()
        if initial:
            self.open_checkpoint(initial)
        else:
            self.show_error(f"No {self.families[0]} checkpoint found: open one with File > Open "
                            "checkpoint, or train one in the Training panel.")

    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_error("The clipboard holds no image.")
            return
        self.image_dropped(qimage_png_bytes(image))

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if self.accepts_images and (mime.hasUrls() or mime.hasImage()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if files:
            self.image_dropped(files[0])
        elif mime.hasImage():
            self.image_dropped(qimage_png_bytes(mime.imageData()))
        else:
            self.show_error(DROP_HINT)
            return
        event.acceptProposedAction()

    def mark_first_image(self) -> None:
        if not self._first_done:
            self._first_done = True
            self.firstImage.emit()

    def has_first_image(self) -> bool:
        return self._first_done

    def show_error(self, message: str) -> None:
        self.status.setStyleSheet("color: #e05050;")
        self.status.setText(message)

    def show_info(self, message: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(message)

    # --- plumbing ------------------------------------------------------------------
    def _on_bridge_result(self, result: RenderResult) -> None:
        prefix = self.name + "."
        if not result.channel.startswith(prefix):
            return
        view = result.channel[len(prefix):]
        if result.error:
            self.show_error(result.error)
            self.rendered.emit(result)
            return
        self.last_result = result
        self.on_result(view, result)
        if result.backend:
            pending = " (exporting to ONNX, torch meanwhile…)" if result.export_pending else ""
            self.show_info(f"{view}: {result.backend} on {result.device}, {result.ms:.1f} ms{pending}")
        self.rendered.emit(result)
