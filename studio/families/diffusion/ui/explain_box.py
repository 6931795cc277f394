"""A foldable "Explain" section: a paragraph and equations drawn with matplotlib mathtext.

A local stand-in until the shared explain widget (studio/ui/widgets/explain.py)
lands: it takes the same ``(text, equations)`` the diffusion explain functions
return. Equations are rasterised once per distinct string (mathtext's parser
with the Agg backend, no figure, no PNG round trip) and kept; a folded section
draws nothing.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from html import escape

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

_CACHE: OrderedDict[tuple, QPixmap] = OrderedDict()
_CACHE_SIZE = 512
EQUATION_PT = 11.0
_SUBSCRIPT = re.compile(r"_([0-9A-Za-z′]+)")


def text_html(text: str) -> str:
    """Plain explain text as HTML: paragraphs at blank lines, x_t written as x with a subscript t."""
    paragraphs = [_SUBSCRIPT.sub(r"<sub>\1</sub>", escape(p)) for p in text.split("\n\n") if p]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def is_drawn(latex: str, color: QColor, point_size: float, scale: float) -> bool:
    return (latex, color.rgb(), point_size, scale) in _CACHE


def equation_pixmap(latex: str, color: QColor, point_size: float = 12.0, scale: float = 1.0) -> QPixmap:
    """``latex`` (mathtext, without dollars) as a transparent pixmap in ``color``; cached."""
    key = (latex, color.rgb(), point_size, scale)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    parsed = MathTextParser("agg").parse(f"${latex}$", dpi=96 * scale, prop=FontProperties(size=point_size))
    alpha = np.asarray(parsed.image, dtype=np.uint8)
    h, w = alpha.shape
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = color.red(), color.green(), color.blue()
    rgba[..., 3] = alpha
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(scale)
    _CACHE[key] = pixmap
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return pixmap


class ExplainBox(QWidget):
    """A titled section that folds; ``set_content(text, equations)`` is drawn only while unfolded."""

    def __init__(self, title: str, expanded: bool = True, parent=None):
        super().__init__(parent)
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setStyleSheet("QToolButton { font-weight: bold; border: none; }")
        self.body = QWidget()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._equations = QVBoxLayout()
        self._equations.setContentsMargins(8, 2, 0, 2)
        self._equations.setSpacing(4)
        body = QVBoxLayout(self.body)
        body.setContentsMargins(14, 0, 0, 4)
        body.addWidget(self.text)
        body.addLayout(self._equations)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self._content: tuple[str, list[str]] = ("", [])
        self._drawn: tuple[str, list[str]] | None = None
        self.header.toggled.connect(self._toggled)
        self._toggled(expanded)

    def is_expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, on: bool) -> None:
        self.header.setChecked(on)

    def content(self) -> tuple[str, list[str]]:
        return self._content

    def equation_labels(self) -> list[QLabel]:
        return [self._equations.itemAt(i).widget() for i in range(self._equations.count())]

    def set_content(self, text: str, equations: list[str], drawn_only: bool = False, draw: bool = True) -> None:
        """Show ``text`` and ``equations``; with ``drawn_only``, only equations already rasterised;
        without ``draw``, keep them for the next ``draw()`` (the caller has a picture to show first).

        A new equation costs milliseconds of mathtext and the text's layout ~10 ms;
        while the model runs, the numbers in the text follow and new equations wait.
        """
        self._content = (text, list(equations))
        if draw and self.is_expanded():
            self._draw(drawn_only)

    def draw(self) -> None:
        if self.is_expanded():
            self._draw()

    def _toggled(self, on: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)
        if on:
            self._draw()

    def _draw(self, drawn_only: bool = False) -> None:
        if self._drawn == self._content:
            return
        text, equations = self._content
        color = self.palette().color(self.foregroundRole())
        scale = self.devicePixelRatioF()
        if drawn_only:
            equations = [e for e in equations if is_drawn(e, color, EQUATION_PT, scale)]
        else:
            self._drawn = (text, list(equations))
        self.text.setText(text_html(text))
        labels = self.equation_labels()
        while len(labels) < len(equations):
            label = QLabel()
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self._equations.addWidget(label)
            labels.append(label)
        for label, latex in zip(labels, equations):
            label.setPixmap(equation_pixmap(latex, color, EQUATION_PT, scale))
            label.setToolTip(latex)
            label.show()
        for label in labels[len(equations):]:
            label.hide()
