"""The base classes of the panels (one tab each).

``Panel`` is a plain tab: a body, a foldable Explain pane, a status line, errors
shown in red (``on_error``), and images dropped or pasted onto it (several files
and folders at once; a folder stands for its image files). ``RenderPanel`` adds
the renderer: it turns gestures into request dataclasses submitted on channels
named ``"<panel name>.<view>"``; results for its channels come back on the GUI
thread through ``on_result`` and failures through ``on_error``, never a crash.
Its status line says which backend and device ran the last render and how long
it took.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.engine.renderer import RenderResult
from studio.ui import theme
from studio.ui.context import AppContext
from studio.ui.widgets.image_view import qimage_png_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
DROP_HINT = "Drop image files or folders of images (PNG, JPEG, BMP, WebP, GIF, TIFF)."


def expand_image_paths(paths: list[str]) -> list[str]:
    """Files as given; a folder becomes its image files, sorted by name (not recursive)."""
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out += [str(f) for f in sorted(p.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            out.append(str(p))
    return out


class Panel(QWidget):
    name = ""  # short name used by --panel
    title = ""
    families: tuple[str, ...] = ()  # checkpoint families this panel can open
    accepts_images = False  # True: dropped and pasted images go to images_dropped()
    firstImage = Signal()  # emitted once, when the first real image is on screen

    def __init__(self, context: AppContext, parent=None):
        super().__init__(parent)
        self.context = context
        self.checkpoint: str | None = None  # what the window remembers for the next start
        self._first_done = False
        self._explain = None
        self.status = QLabel("")
        self.status.setObjectName("panelStatus")
        self.status.setWordWrap(True)
        self.body = QWidget()
        self._outer = QVBoxLayout(self)
        self._outer.setContentsMargins(6, 6, 6, 4)
        self._outer.addWidget(self.body, 1)
        self._outer.addWidget(self.status)
        if self.accepts_images:
            self.setAcceptDrops(True)

    # --- for subclasses ------------------------------------------------------------
    @property
    def explain(self):
        """The panel's Explain pane (built on first use, above the status line)."""
        if self._explain is None:
            from studio.ui.widgets.explain import ExplainPane

            # Formulas are drawn once the first picture is up: matplotlib must not delay it.
            self._explain = ExplainPane(f"Explain: {self.title}", held=not self._first_done)
            self.place_explain(self._explain)
        return self._explain

    def place_explain(self, pane) -> None:
        """Put the Explain pane in the layout: above the status line (a panel may place it elsewhere)."""
        self._outer.insertWidget(1, pane)

    def has_explain(self) -> bool:
        return self._explain is not None

    def refresh(self) -> None:
        """Re-render everything (the backend or the checkpoint changed)."""

    def open_checkpoint(self, path: str) -> None:
        """Show the checkpoint at ``path`` (a file or a run folder)."""
        raise NotImplementedError

    def images_dropped(self, sources: list[str | bytes]) -> None:
        """Image files or encoded image bytes the user dropped or pasted (at least one)."""
        self.image_dropped(sources[0])
        if len(sources) > 1:
            self.show_info(f"{len(sources)} images dropped: this panel shows the first")

    def image_dropped(self, source: str | bytes) -> None:
        """One file path or encoded image bytes the user dropped or pasted."""

    def confirm_close(self) -> bool:
        """May the window close now? (A panel with work in flight may ask the user.)"""
        return True

    def open_initial_checkpoint(self, picker) -> None:
        """Open the checkpoint named on the command line, else the first shipped one."""
        initial = self.context.checkpoints.get(self.families[0]) or picker.first()
        if initial:
            self.open_checkpoint(initial)
        else:
            self.show_error(f"No {self.families[0]} checkpoint found: open one with File > Open "
                            "checkpoint, or train one in the Training panel.")

    # --- errors and status ---------------------------------------------------------
    def on_error(self, view: str, message: str) -> None:
        """A request of ``view`` failed (or a gesture could not be done): say why."""
        self.show_error(message)

    def show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {theme.ERROR};")
        self.status.setText(message)

    def show_info(self, message: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(message)

    def mark_first_image(self) -> None:
        if not self._first_done:
            self._first_done = True
            self.firstImage.emit()
            if self._explain is not None:
                # After whatever the picture's arrival set off: starting the formula helper (a process)
                # must not hold up the window's first moments.
                self._explain.release()

    def has_first_image(self) -> bool:
        return self._first_done

    # --- drop and paste ------------------------------------------------------------
    def paste(self) -> None:
        """Ctrl+V, routed here by the window whatever has focus: an image or image files."""
        if not self.accepts_images:
            self.show_error(f"The {self.title} panel takes no images.")
            return
        mime = QGuiApplication.clipboard().mimeData()
        if not self._take_mime(mime, "paste"):
            self.on_error("paste", "The clipboard holds no image (copy an image or image files first).")

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if self.accepts_images and (mime.hasUrls() or mime.hasImage()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self._take_mime(event.mimeData(), "drop"):
            event.acceptProposedAction()
        else:
            self.on_error("drop", DROP_HINT)

    def _take_mime(self, mime, how: str) -> bool:
        """Hand the images in ``mime`` to images_dropped; False when it holds none."""
        if mime is None:
            return False
        sources: list[str | bytes] = []
        if mime.hasUrls():
            local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            sources = list(expand_image_paths(local))
            if local and not sources:
                self.on_error(how, f"{', '.join(Path(p).name for p in local)}: no image files there")
                return True
        if not sources and mime.hasImage():
            image = QGuiApplication.clipboard().image() if how == "paste" else mime.imageData()
            if image is not None and not image.isNull():
                sources = [qimage_png_bytes(image)]
        if not sources:
            return False
        self.images_dropped(sources)
        return True


class RenderPanel(Panel):
    """A panel whose pictures come from the background renderer."""

    rendered = Signal(object)  # every result this panel received, errors included (tests, benchmark)

    def __init__(self, context: AppContext, parent=None):
        super().__init__(context, parent)
        self.bridge = context.bridge
        self.last_result: RenderResult | None = None
        self.results: dict[str, RenderResult] = {}  # the latest successful result of each view
        self.bridge.resultReady.connect(self._on_bridge_result)
        context.backendChanged.connect(lambda *_: self.refresh())

    def submit(self, view: str, request: Any, background: bool = False) -> int:
        return self.bridge.submit(f"{self.name}.{view}", request, background)

    def cancel(self, view: str) -> None:
        self.bridge.cancel(f"{self.name}.{view}")

    def on_result(self, view: str, result: RenderResult) -> None:
        """Show a successful result of ``view``."""

    def save_view(self, view, path: str) -> Path | None:
        """Write the picture an ImageView shows to ``path`` as PNG; errors go to the status line."""
        from studio.data.images import save_png

        image = view.image()
        if image is None:
            self.on_error("save", "Nothing to save yet.")
            return None
        try:
            written = save_png(image, path)
        except OSError as exc:
            self.on_error("save", f"{path}: cannot save ({exc.strerror or exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def save_view_dialog(self, view, default_name: str) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save PNG", default_name, "PNG images (*.png)")
        if path:
            self.save_view(view, path)

    def show_render_status(self, view: str, result: RenderResult) -> None:
        # While a new checkpoint exports to ONNX in the background, torch renders: say so.
        pending = " (exporting to ONNX, torch meanwhile…)" if result.export_pending else ""
        self.show_info(f"{view}: {result.backend} on {result.device}, {result.ms:.1f} ms{pending}")

    def _on_bridge_result(self, result: RenderResult) -> None:
        prefix = self.name + "."
        if not result.channel.startswith(prefix):
            return
        view = result.channel[len(prefix):]
        if result.error:
            self.on_error(view, result.error)
            self.rendered.emit(result)
            return
        self.last_result = self.results[view] = result
        self.on_result(view, result)
        if result.backend:
            self.show_render_status(view, result)
        self.rendered.emit(result)
