"""A widget that shows a uint8 image, scaled crisply, and reports clicks and drags.

The picture is drawn at the largest whole-number zoom that fits (every source
pixel becomes an equal square: no blur, no uneven rows), centred, with its
title above it and, where it helps, axes or a caption below. Only the picture
is drawn on a dark well: the space a whole-number zoom leaves is the panel's
own background, never a black band. Positions are reported in normalised
image coordinates (0..1, 0..1), so a panel can map them to whatever the
picture means (a latent plane, a pixel).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.ui import theme


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


def wrap_strip(strip: np.ndarray, tile: int, rows: int, pad: int = 1) -> np.ndarray:
    """A one-row strip of square tiles (``pad`` pixels around each) laid out in ``rows`` rows."""
    n = (strip.shape[1] - pad) // (tile + pad)
    cols = -(-n // rows)
    out = np.zeros((rows * (tile + pad) + pad, cols * (tile + pad) + pad) + strip.shape[2:], strip.dtype)
    for k in range(n):
        r, c = divmod(k, cols)
        src = strip[pad: pad + tile, pad + k * (tile + pad): pad + k * (tile + pad) + tile]
        y, x = pad + r * (tile + pad), pad + c * (tile + pad)
        out[y: y + tile, x: x + tile] = src
    return out


def fit_scale(image_w: int, image_h: int, room_w: float, room_h: float) -> float:
    """The zoom for an image in a room: a whole number when it fits at 1x or more."""
    if image_w <= 0 or image_h <= 0 or room_w <= 0 or room_h <= 0:
        return 0.0
    exact = min(room_w / image_w, room_h / image_h)
    return float(math.floor(exact)) if exact >= 1.0 else exact


class ImageView(QWidget):
    clicked = Signal(float, float)
    dragged = Signal(float, float)
    painted = Signal(int)  # the frame number just painted on screen

    def __init__(self, parent=None, min_size: int = 160, smooth: bool = False, title: str = ""):
        super().__init__(parent)
        self._qimage: QImage | None = None
        self._array: np.ndarray | None = None
        self._frame = 0
        self._painted_frame = 0
        self._marker: tuple[float, float] | None = None
        self._placeholder = ""
        self._smooth = smooth
        self._title = title
        self._caption = ""
        self._axes: tuple[str, str, float] | None = None  # x label, y label, half range
        self._wrap_tile = 0  # > 0: the image is a strip of such tiles, wrapped into rows to fit
        self._wrapped: dict[int, QImage] = {}
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)

    # --- content -----------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> int:
        self._array = image
        self._qimage = to_qimage(image)
        self._wrapped = {}
        self._frame += 1
        self.update()
        return self._frame

    def clear(self, placeholder: str = "") -> None:
        """Show no picture: a view whose picture no longer holds must not keep showing it."""
        self._array = None
        self._qimage = None
        self._wrapped = {}
        self._placeholder = placeholder
        self.update()

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

    def placeholder(self) -> str:
        return self._placeholder

    def set_title(self, text: str) -> None:
        self._title = text
        self.update()

    def title(self) -> str:
        return self._title

    def set_caption(self, text: str) -> None:
        """A line under the picture; ``{zoom}`` in it becomes the zoom it is drawn at now."""
        self._caption = text
        self.update()

    def caption(self) -> str:
        return self._caption.replace("{zoom}", f"{self.scale():.3g}")

    def set_axes(self, x_label: str, y_label: str, half_range: float) -> None:
        """Tick labels -r, 0, +r along the bottom and left edges, for a picture of a plane."""
        self._axes = (x_label, y_label, half_range)
        self.update()

    def set_wrap(self, tile: int) -> None:
        """Show a one-row strip of ``tile``-pixel tiles in as many rows as make it largest
        (reading order: left to right, then down). ``image()`` stays the strip."""
        self._wrap_tile = tile
        self._wrapped = {}
        self.update()

    def rows(self) -> int:
        """How many rows the strip is shown in now (1 when not wrapped)."""
        return self._shown_rows()[0]

    def _room(self) -> tuple[float, float]:
        left, top, right, bottom = self._margins()
        return self.width() - left - right, self.height() - top - bottom

    def _shown_rows(self) -> tuple[int, QImage | None]:
        if self._qimage is None or not self._wrap_tile or self._array is None:
            return 1, self._qimage
        tile = self._wrap_tile
        n = max(1, (self._array.shape[1] - 1) // (tile + 1))
        room_w, room_h = self._room()
        best, best_scale = 1, -1.0
        for rows in range(1, n + 1):
            cols = -(-n // rows)
            scale = fit_scale(cols * (tile + 1) + 1, rows * (tile + 1) + 1, room_w, room_h)
            if scale > best_scale + 1e-9:
                best, best_scale = rows, scale
        if best == 1:
            return 1, self._qimage
        if best not in self._wrapped:
            self._wrapped[best] = to_qimage(wrap_strip(self._array, tile, best))
        return best, self._wrapped[best]

    def _shown(self) -> QImage | None:
        return self._shown_rows()[1]

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    # --- geometry ----------------------------------------------------------------
    def _margins(self) -> tuple[int, int, int, int]:
        """left, top, right, bottom room for the title, caption and axes."""
        line = QFontMetrics(self.font()).height()
        top = line + 4 if self._title else 0
        bottom = (line + 2 if self._caption else 0) + (2 * line + 4 if self._axes else 0)
        left = QFontMetrics(self.font()).horizontalAdvance("+3.0") + line + 6 if self._axes else 0
        right = QFontMetrics(self.font()).horizontalAdvance("+3") // 2 + 2 if self._axes else 0
        return left, top, right, bottom

    def scale(self) -> float:
        """The zoom the picture is drawn at now (a whole number when it fits at 1x or more)."""
        shown = self._shown()
        if shown is None:
            return 0.0
        return fit_scale(shown.width(), shown.height(), *self._room())

    def image_rect(self) -> QRectF:
        left, top, right, bottom = self._margins()
        room = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        shown = self._shown()
        if shown is None:
            return room
        s = self.scale()
        w, h = shown.width() * s, shown.height() * s
        # Whole pixels: a fractional origin would smear every edge.
        return QRectF(math.floor(room.left() + (room.width() - w) / 2),
                      math.floor(room.top() + (room.height() - h) / 2), w, h)

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
        r = self.image_rect()
        muted = QColor(theme.MUTED)
        if self._qimage is None:
            p.fillRect(r, QColor(theme.BASE))
            p.setPen(muted)
            p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            self._draw_title(p, r)
            return
        smooth = self._smooth or self.scale() < 1.0  # shrinking: average, never drop rows
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawImage(r, self._shown())
        if self._marker is not None:
            c = self.from_normalised(*self._marker)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(theme.MARKER), 2))
            p.drawEllipse(c, 7, 7)
        self._draw_title(p, r)
        self._draw_axes(p, r)
        p.end()
        if self._painted_frame != self._frame:
            self._painted_frame = self._frame
            self.painted.emit(self._frame)

    def _draw_title(self, p: QPainter, r: QRectF) -> None:
        line = QFontMetrics(self.font()).height()
        if self._title:
            p.setPen(QColor(theme.TEXT))
            p.drawText(QRectF(0, r.top() - line - 4, self.width(), line),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, self._title)
        if self._caption:
            y = r.bottom() + (2 * line + 4 if self._axes else 2)
            p.setPen(QColor(theme.MUTED))
            p.drawText(QRectF(0, y, self.width(), line), Qt.AlignmentFlag.AlignHCenter, self.caption())

    def _draw_axes(self, p: QPainter, r: QRectF) -> None:
        if self._axes is None:
            return
        x_label, y_label, half = self._axes
        fm = QFontMetrics(self.font())
        line = fm.height()
        p.setPen(QColor(theme.MUTED))
        ticks = ((-half, 0.0), (0.0, 0.5), (half, 1.0))
        for value, frac in ticks:
            text = f"{value:+g}" if value else "0"
            x = r.left() + frac * r.width()
            p.drawLine(QPointF(x, r.bottom()), QPointF(x, r.bottom() + 3))
            p.drawText(QRectF(x - 30, r.bottom() + 3, 60, line), Qt.AlignmentFlag.AlignHCenter, text)
            y = r.bottom() - frac * r.height()
            p.drawLine(QPointF(r.left() - 3, y), QPointF(r.left(), y))
            p.drawText(QRectF(r.left() - 60, y - line / 2, 56, line),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        p.setPen(QColor(theme.TEXT))
        p.drawText(QRectF(r.left(), r.bottom() + line + 3, r.width(), line),
                   Qt.AlignmentFlag.AlignHCenter, f"{x_label} →")
        p.save()
        p.translate(r.left() - fm.horizontalAdvance("+3.0") - 8, r.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-r.height() / 2, -line, r.height(), line), Qt.AlignmentFlag.AlignHCenter,
                   f"{y_label} →")
        p.restore()

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
