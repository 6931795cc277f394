"""The foldable "Explain" pane every panel can show: a few sentences and the key equations.

Equations are written in TeX-like notation and drawn by matplotlib's mathtext
(its own parser and fonts: no LaTeX installation). A panel fills the pane with
live numbers as the user works, e.g.::

    pane = panel.explain                     # built on first use, above the status line
    pane.set_text("The encoder maps an image to a Gaussian q(z|x) ...")
    pane.set_equations([r"-\\mathrm{ELBO} = \\mathrm{recon} + \\mathrm{KL}",
                        rf"{neg_elbo:.1f} = {recon:.1f} + {kl:.1f}\\ \\mathrm{{nats}}"])

Formulas are drawn on a helper thread, each once (then cached), and only after
the panel's first picture is on screen (``release``): importing matplotlib and
loading its fonts takes about a second, which must not delay that picture or
freeze the window. A changed number costs about 10 ms there.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from studio.ui import theme

EQUATION_SIZE = 14.0  # points
_drawer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mathtext")


class EquationError(ValueError):
    """The formula is not valid mathtext; the message names it."""


@lru_cache(maxsize=512)
def equation_mask(tex: str, size: float = EQUATION_SIZE, dpi: int = 100) -> np.ndarray:
    """A TeX-like formula (without the $...$) as an ink mask: uint8 (H, W), 255 = ink."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    try:
        parsed = MathTextParser("agg").parse(f"${tex}$", dpi=dpi, prop=FontProperties(size=size))
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EquationError(f"cannot draw the formula {tex!r}: {first}") from None
    return np.array(parsed.image, dtype=np.uint8)


def equation_image(tex: str, colour: str = theme.TEXT, ratio: float = 1.0) -> QImage:
    """The formula in ``colour`` on a transparent ground, drawn for a screen of pixel ratio ``ratio``."""
    mask = equation_mask(tex, EQUATION_SIZE, int(round(100 * ratio)))
    c = QColor(colour)
    rgba = np.empty(mask.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = c.red(), c.green(), c.blue(), mask
    h, w = mask.shape
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    image.setDevicePixelRatio(ratio)
    return image


def _draw_all(texs: list[str], ratio: float) -> list[np.ndarray | str]:
    """On the helper thread: a mask per formula, or the error message of a bad one."""
    out: list[np.ndarray | str] = []
    for tex in texs:
        try:
            out.append(equation_mask(tex, EQUATION_SIZE, int(round(100 * ratio))))
        except EquationError as exc:  # a panel's bug: shown where it happens, never a crash
            out.append(str(exc))
    return out


class _Relay(QObject):
    done = Signal(object)  # emitted on the helper thread, delivered on the GUI thread


class ExplainPane(QWidget):
    toggled = Signal(bool)  # opened (True) or folded (False)
    equationsDrawn = Signal()  # the formulas on screen now match the last set_equations

    def __init__(self, title: str = "Explain", expanded: bool = True, held: bool = False, parent=None):
        super().__init__(parent)
        self.setObjectName("explainPane")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(f"#explainPane {{ background: {theme.BASE}; border-radius: 4px; }}")
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setAutoRaise(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setToolTip("Show or hide the explanation (F1)")
        self.header.toggled.connect(self.set_expanded)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.text.setMinimumWidth(280)
        self._eq_box = QVBoxLayout()
        self._eq_box.setSpacing(6)
        self.equation_labels: list[QLabel] = []
        self._tex: list[str] = []
        self._drawn: list[str] = []
        self._in_flight: list[str] | None = None
        self._held = held
        self._relay = _Relay(self)
        self._relay.done.connect(self._drawn_on_helper)
        self.content = QWidget()
        row = QHBoxLayout(self.content)
        row.setContentsMargins(18, 0, 8, 6)
        row.addWidget(self.text, 1)
        row.addSpacing(12)
        row.addLayout(self._eq_box, 0)  # formulas at their natural width; the sentences wrap
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.content)
        self._set_arrow(expanded)
        self.content.setVisible(expanded)

    # --- what it says ----------------------------------------------------------------
    def set_title(self, title: str) -> None:
        self.header.setText(title)

    def set_text(self, html: str) -> None:
        self.text.setText(html)

    def set_equations(self, equations: Sequence[str]) -> None:
        """The formulas to show, top to bottom (mathtext, without $...$)."""
        self._tex = list(equations)
        while len(self.equation_labels) < len(self._tex):
            label = QLabel()
            self._eq_box.addWidget(label)
            self.equation_labels.append(label)
        QTimer.singleShot(0, self, self._draw)

    def equations(self) -> list[str]:
        return list(self._tex)

    def drawn_equations(self) -> list[str]:
        """The formulas whose pictures are on screen now."""
        return list(self._drawn)

    def release(self) -> None:
        """Start drawing (the panel's first picture is on screen)."""
        self._held = False
        QTimer.singleShot(0, self, self._draw)

    # --- folding ---------------------------------------------------------------------
    def is_expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # comes back here through toggled
            return
        self.content.setVisible(expanded)
        self._set_arrow(expanded)
        if expanded:
            QTimer.singleShot(0, self, self._draw)
        self.toggled.emit(expanded)

    def toggle(self) -> None:
        self.set_expanded(not self.is_expanded())

    def _set_arrow(self, expanded: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)

    # --- drawing ---------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self, self._draw)

    def _draw(self) -> None:
        if self._held or not (self.isVisible() and self.is_expanded()):
            return
        if self._drawn == self._tex or self._in_flight is not None:
            return
        self._in_flight = list(self._tex)
        future = _drawer.submit(_draw_all, self._in_flight, self.devicePixelRatioF())
        relay = self._relay
        future.add_done_callback(lambda f: _emit_safely(relay, f))

    def _drawn_on_helper(self, future: Future) -> None:
        texs, self._in_flight = self._in_flight or [], None
        ratio = self.devicePixelRatioF()
        try:
            results = future.result()
        except Exception as exc:  # matplotlib missing or broken: say so in the pane
            results = [f"cannot draw formulas ({type(exc).__name__}: {exc})"] * len(texs)
        for label, tex, result in zip(self.equation_labels, texs, results):
            if isinstance(result, str):
                label.setText(result)
            else:
                label.setPixmap(QPixmap.fromImage(equation_image(tex, ratio=ratio)))
            label.show()
        for label in self.equation_labels[len(texs):]:
            label.clear()
            label.hide()
        self._drawn = texs
        if self._drawn != self._tex:
            self._draw()  # the numbers changed while drawing: draw the newest
        else:
            self.equationsDrawn.emit()


def _emit_safely(relay: _Relay, future: Future) -> None:
    try:
        relay.done.emit(future)
    except RuntimeError:  # the pane was deleted while its formulas were drawn
        pass
