"""The foldable "Explain" pane every panel can show: a few sentences and the key equations.

Equations are written in TeX-like notation and drawn by matplotlib's mathtext
(its own parser and fonts: no LaTeX installation). A panel fills the pane with
live numbers as the user works, e.g.::

    pane = panel.explain                     # built on first use, above the status line
    pane.set_text("The encoder maps an image to a Gaussian q(z|x) ...")
    pane.set_equations([r"-\\mathrm{ELBO} = \\mathrm{recon} + \\mathrm{KL}",
                        rf"{neg_elbo:.1f} = {recon:.1f} + {kl:.1f}\\ \\mathrm{{nats}}"])

Formulas are drawn in a helper process (``studio.ui.mathtext``), each once (then
cached there), and only after the panel's first picture is on screen
(``release``): importing matplotlib and loading its fonts takes about a second
of pure-Python work, which must neither delay that picture nor, holding the
GIL in a thread, slow the window's frames. A changed number costs ~10 ms there.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from studio.ui import theme
from studio.ui.mathtext import EquationError, draw_all, equation_mask  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

_drawer: "ProcessPoolExecutor | None" = None


def _drawing_process() -> "ProcessPoolExecutor":
    """One helper process for every pane, started on first use ("spawn": never a fork of Qt).
    multiprocessing is imported here, after the first picture, not at the window's start."""
    global _drawer
    if _drawer is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _drawer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_background_priority)
    return _drawer


def _background_priority() -> None:
    """In the helper: yield the CPU to the app. Importing matplotlib (~1 s) and a formula (~10 ms) must
    not slow a sample the user is waiting for on a machine with few cores."""
    import os

    try:
        os.nice(10)
    except (AttributeError, OSError):  # not on this platform, or not allowed: run as is
        pass


def _restart_drawing_process() -> None:
    global _drawer
    if _drawer is not None:
        _drawer.shutdown(wait=False, cancel_futures=True)
    _drawer = None


def mask_image(mask: np.ndarray, colour: str = theme.TEXT, ratio: float = 1.0) -> QImage:
    """An ink mask in ``colour`` on a transparent ground, for a screen of pixel ratio ``ratio``."""
    c = QColor(colour)
    rgba = np.empty(mask.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = c.red(), c.green(), c.blue(), mask
    h, w = mask.shape
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    image.setDevicePixelRatio(ratio)
    return image


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
        self._row = row = QHBoxLayout(self.content)
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

    def set_stacked(self, stacked: bool) -> None:
        """Formulas below the sentences (for a narrow column) instead of beside them."""
        self._row.setDirection(QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight)
        self._row.setContentsMargins(18 if not stacked else 8, 0, 8, 6)

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
        try:
            future = _drawing_process().submit(draw_all, self._in_flight, int(round(100 * self.devicePixelRatioF())))
        except RuntimeError as exc:  # the helper process died: say so, start a new one next time
            _restart_drawing_process()
            future = Future()
            future.set_exception(exc)
        relay = self._relay
        future.add_done_callback(lambda f: _emit_safely(relay, f))

    def _drawn_on_helper(self, future: Future) -> None:
        texs, self._in_flight = self._in_flight or [], None
        ratio = self.devicePixelRatioF()
        try:
            results = future.result()
        except Exception as exc:  # matplotlib missing, or the helper process died
            _restart_drawing_process()
            results = [f"cannot draw formulas ({type(exc).__name__}: {exc})"] * len(texs)
        for label, result in zip(self.equation_labels, results):
            if isinstance(result, str):
                label.setText(result)
            else:
                label.setPixmap(QPixmap.fromImage(mask_image(result, ratio=ratio)))
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
