"""Pictures that fill their boxes at whole-pixel zoom, always titled, and labels that never move the layout.

A 28x28 digit shown at 9.3x is a blur of uneven pixels; at 9x every pixel is
a crisp square. ``TitledView`` gives its picture the largest whole zoom that
fits and sizes the picture's box to exactly that, so no letterbox bands
appear inside it; the title sits right above the picture.
``ElidedLabel`` keeps its size whatever its text, so a longer step label or
status never shifts the pictures.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from studio.ui.widgets.image_view import ImageView, to_qimage


class ElidedLabel(QLabel):
    """One line of text whose size never depends on the text: too long, it ends in '…' (full text in the tooltip).

    The eliding happens when the text or the width changes, so Qt paints it like any label.
    """

    def __init__(self, text: str = "", width_chars: int = 0, parent=None):
        super().__init__(parent)
        self._full = ""
        self._width_chars = width_chars
        self.setSizePolicy(QSizePolicy.Policy.Ignored if not width_chars else QSizePolicy.Policy.Fixed,
                           QSizePolicy.Policy.Fixed)
        if width_chars:
            self.setFixedWidth(QFontMetrics(self.font()).horizontalAdvance("0") * width_chars)
        self.setFixedHeight(QFontMetrics(self.font()).height() + 4)
        self.setText(text)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.setToolTip(text)
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.width() if self._width_chars else 10, self.height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideRight, max(1, width))
        super().setText(shown)


class PixelView(ImageView):
    """An ImageView that draws at the largest whole zoom fitting its box (its box is sized to match)."""

    def __init__(self, native: tuple[int, int] = (30, 30), parent=None):
        super().__init__(parent, min_size=1)
        self._native = native
        self._zoomed: QPixmap | None = None
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def native_size(self) -> tuple[int, int]:
        """(width, height) of the picture in image pixels."""
        image = self.image()
        return (image.shape[1], image.shape[0]) if image is not None else self._native

    def set_native_size(self, width: int, height: int) -> None:
        self._native = (int(width), int(height))

    def zoom(self) -> int:
        w, h = self.native_size()
        return max(1, min(self.width() // w, self.height() // h))

    def image_rect(self) -> QRectF:
        w, h = self.native_size()
        z = self.zoom()
        return QRectF((self.width() - w * z) // 2, (self.height() - h * z) // 2, w * z, h * z)

    def set_image(self, image) -> int:
        resized = self.image() is None or self.image().shape[:2] != image.shape[:2]
        self._zoomed = None
        frame = super().set_image(image)
        if resized and isinstance(self.parentWidget(), TitledView):
            self.parentWidget().place()  # another batch size: another zoom
        return frame

    def paintEvent(self, event) -> None:  # noqa: N802
        # Scaling a QImage on every paint is the slow path; a pixmap blown up once per frame
        # (nearest neighbour: whole zoom keeps every pixel square) is a plain copy to the screen.
        image = self.image()
        if image is None or self._marker is not None:
            super().paintEvent(event)
            return
        rect = self.image_rect().toRect()
        if self._zoomed is None or self._zoomed.size() != rect.size():
            zoom = self.zoom()  # numpy repeats in microseconds what QImage.scaled does in milliseconds
            self._zoomed = QPixmap.fromImage(to_qimage(np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)))
        p = QPainter(self)
        if rect != self.rect():
            p.fillRect(self.rect(), QColor(24, 24, 28))
        p.drawPixmap(rect.topLeft(), self._zoomed)
        p.end()
        if self._painted_frame != self._frame:
            self._painted_frame = self._frame
            self.painted.emit(self._frame)


class TitledView(QWidget):
    """A title above a PixelView; the view gets the largest whole zoom the cell allows, centred."""

    def __init__(self, title: str, native: tuple[int, int] = (30, 30), min_zoom: int = 4, parent=None):
        super().__init__(parent)
        self.title = QLabel(title, self)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
        self.title.setStyleSheet("font-weight: bold;")
        self.view = PixelView(native, self)
        self._min_zoom = min_zoom
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        w, h = native
        self.setMinimumSize(w * min_zoom, h * min_zoom + self._title_height())

    def _title_height(self) -> int:
        return QFontMetrics(self.title.font()).height() + 6

    def sizeHint(self) -> QSize:  # noqa: N802
        w, h = self.view.native_size()
        return QSize(w * 8, h * 8 + self._title_height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        self.place()

    def place(self) -> None:
        """Size the picture's box to the largest whole zoom that fits under the title, centred."""
        w, h = self.view.native_size()
        title_h = self._title_height()
        zoom = max(1, min(self.width() // w, (self.height() - title_h) // h))
        vw, vh = w * zoom, h * zoom
        top = max(0, (self.height() - title_h - vh) // 2)
        self.title.setGeometry(0, top, self.width(), title_h)
        self.view.setGeometry((self.width() - vw) // 2, top + title_h, vw, vh)
