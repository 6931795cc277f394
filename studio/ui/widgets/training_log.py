"""The training log: one line per note, its paths elided in the middle to fit, the whole note in its tooltip.

A checkpoint path such as ``/home/me/.local/share/generative-studio/runs/vae-20260101-120000/step_0000500.safetensors``
fills a line by itself; shown as ``/home/…/vae-20260101-120000/step_0000500.safetensors`` (the middle folders
left out) the line keeps what it says readable. Lines are elided again when the log is resized; Ctrl+C copies the
selected notes in full, and a note of several lines (a worker's traceback) shows its
first line, the rest in the tooltip.
"""

from __future__ import annotations

import re
import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

# An absolute path (POSIX or Windows) up to the next space; a trailing comma, colon or bracket is not part of it.
PATH = re.compile(r"(?<![\w/])(?:/|[A-Za-z]:[\\/])[^\s]*[^\s,.;:)\]]")
FULL_TEXT = Qt.ItemDataRole.UserRole + 1
MIN_PATH_PX = 120  # a path is never squeezed below this (the line then ends in "…")


def elide_path(path: str, width: int, metrics) -> str:
    """``path`` in ``width`` pixels: its first folder, "…", and as many of its last parts as fit
    (``/home/…/vae-20260101-120000/last.safetensors``); failing that, Qt's middle elision."""
    if metrics.horizontalAdvance(path) <= width:
        return path
    sep = "\\" if "\\" in path and "/" not in path else "/"
    parts = path.split(sep)
    head = sep.join(parts[:2])  # "/home" (or "C:\\Users")
    for k in range(3, len(parts)):
        candidate = f"{head}{sep}…{sep}{sep.join(parts[k:])}"
        if metrics.horizontalAdvance(candidate) <= width:
            return candidate
    return metrics.elidedText(path, Qt.TextElideMode.ElideMiddle, width)


def elide_paths(text: str, width: int, metrics) -> str:
    """``text`` with its paths elided in the middle so the line fits ``width`` pixels of ``metrics``
    (a QFontMetrics); only the paths lose characters, the rest stays whole."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    paths = [m for m in PATH.finditer(text)]
    if not paths:
        return text
    rest = metrics.horizontalAdvance(PATH.sub("", text))
    room = max(MIN_PATH_PX * len(paths), width - rest)
    total = sum(metrics.horizontalAdvance(m.group()) for m in paths) or 1
    out, at = [], 0
    for m in paths:
        share = max(MIN_PATH_PX, int(room * metrics.horizontalAdvance(m.group()) / total))
        out += [text[at:m.start()], elide_path(m.group(), share, metrics)]
        at = m.end()
    out.append(text[at:])
    return "".join(out)


class RunLog(QListWidget):
    def __init__(self, max_lines: int = 1000, parent=None):
        super().__init__(parent)
        self.max_lines = max_lines
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setWordWrap(False)
        self.setUniformItemSizes(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setToolTip("")
        self._placeholder = ""

    def setPlaceholderText(self, text: str) -> None:  # noqa: N802 (QPlainTextEdit's name)
        self._placeholder = text
        self.viewport().update()

    def note(self, text: str) -> QListWidgetItem:
        """Add a note, stamped with the time; the newest is scrolled into view."""
        full = time.strftime("%H:%M:%S ") + text
        item = QListWidgetItem()
        item.setData(FULL_TEXT, full)
        item.setToolTip(full if len(full) < 4000 else full[:4000] + "…")
        self._show(item)
        self.addItem(item)
        while self.count() > self.max_lines:
            self.takeItem(0)
        self.scrollToBottom()
        return item

    def appendPlainText(self, text: str) -> None:  # noqa: N802 - the QPlainTextEdit name callers know
        self.note(text)

    def notes(self) -> list[str]:
        return [self.item(i).data(FULL_TEXT) for i in range(self.count())]

    def toPlainText(self) -> str:  # noqa: N802
        """Every note in full (paths and tracebacks whole)."""
        return "\n".join(self.notes())

    def shown_text(self, row: int) -> str:
        return self.item(row).text()

    def _show(self, item: QListWidgetItem) -> None:
        full = item.data(FULL_TEXT)
        first, _, more = full.partition("\n")
        if more:
            first += "  (more in the tooltip)"
        width = self.viewport().width() - 2 * self.spacing() - 8
        item.setText(elide_paths(first, max(width, 200), self.fontMetrics()))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            for i in range(self.count()):
                self._show(self.item(i))

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.matches(QKeySequence.StandardKey.Copy):
            rows = sorted(self.row(item) for item in self.selectedItems())
            QGuiApplication.clipboard().setText("\n".join(self.item(r).data(FULL_TEXT) for r in rows))
            return
        super().keyPressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self.count() and self._placeholder:
            from PySide6.QtGui import QPainter

            p = QPainter(self.viewport())
            p.setPen(self.palette().placeholderText().color())
            p.drawText(self.viewport().rect().adjusted(6, 4, -6, -4),
                       Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, self._placeholder)
            p.end()
