"""A widget that shows a uint8 image, scaled crisply, and reports clicks and drags.

Positions are reported in normalised image coordinates (0..1, 0..1), so a
panel can map them to whatever the picture means (a latent plane, a pixel).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_qimage(image: np.ndarray) -> QImage:
    """uint8 (H, W) or (H, W, 3) -> QImage that owns a copy of the pixels."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_RGB888).copy()


def qimage_png_bytes(image: QImage) -> bytes:
    """Encode a QImage (clipboard, drag and drop) as PNG bytes for the one image loader."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


class ImageView(QWidget):
    clicked = Signal(float, float)
    dragged = Signal(float, float)
    painted = Signal(int)  # the frame number just painted on screen

    def __init__(self, parent=None, min_size: int = 160, smooth: bool = False):
        super().__init__(parent)
        self._qimage: QImage | None = None
        self._array: np.ndarray | None = None
        self._frame = 0
        self._painted_frame = 0
        self._marker: tuple[float, float] | None = None
        self._placeholder = ""
        self._smooth = smooth
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)

    # --- content -----------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> int:
        self._array = image
        self._qimage = to_qimage(image)
        self._frame += 1
        self.update()
        return self._frame

    def image(self) -> np.ndarray | None:
        return self._array

    def frame(self) -> int:
        return self._frame

    def set_marker(self, u: float | None, v: float | None = None) -> None:
        self._marker = None if u is None else (u, v)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    # --- geometry ----------------------------------------------------------------
    def image_rect(self) -> QRectF:
        if self._qimage is None:
            return QRectF(self.rect())
        iw, ih = self._qimage.width(), self._qimage.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_normalised(self, pos: QPointF) -> tuple[float, float] | None:
        r = self.image_rect()
        if r.width() <= 0 or r.height() <= 0:
            return None
        u = (pos.x() - r.left()) / r.width()
        v = (pos.y() - r.top()) / r.height()
        if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
            return None
        return u, v

    def from_normalised(self, u: float, v: float) -> QPointF:
        r = self.image_rect()
        return QPointF(r.left() + u * r.width(), r.top() + v * r.height())

    # --- events ------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        if self._qimage is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        p.drawImage(self.image_rect(), self._qimage)
        if self._marker is not None:
            c = self.from_normalised(*self._marker)
            p.setPen(QPen(QColor(255, 80, 60), 2))
            p.drawEllipse(c, 6, 6)
        p.end()
        if self._painted_frame != self._frame:
            self._painted_frame = self._frame
            self.painted.emit(self._frame)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            uv = self.to_normalised(event.position())
            if uv is not None:
                self.clicked.emit(*uv)

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            uv = self.to_normalised(event.position())
            if uv is not None:
                self.dragged.emit(*uv)
