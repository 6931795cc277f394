"""Gestures for the GUI fuzz tests: real mouse and key events on real widgets, and the memory left behind.

The fuzz tests (``test_vae_fuzz.py``, ``test_diffusion_fuzz.py``) pick gestures from a
seeded ``random.Random``, so a failure replays with the same seed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import random
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QStyle, QWidget

LEFT = Qt.MouseButton.LeftButton
NO_BUTTON = Qt.MouseButton.NoButton
NO_MODIFIER = Qt.KeyboardModifier.NoModifier


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def rss_mib() -> float | None:
    """This process's resident memory in MiB, or None where /proc is missing.

    Garbage is collected and glibc's free heap pages handed back first, so the figure follows the
    memory in use rather than how fragmented the heaps of the render threads happen to be.
    """
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _mouse(widget: QWidget, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, NO_MODIFIER)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, points: list[QPointF]) -> None:
    """Press at the first point, move through the rest with the left button held, release at the last."""
    _mouse(widget, QEvent.Type.MouseButtonPress, points[0], LEFT, LEFT)
    for point in points[1:]:
        _mouse(widget, QEvent.Type.MouseMove, point, NO_BUTTON, LEFT)
    _mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], LEFT, NO_BUTTON)


def click(widget: QWidget, pos: QPointF | None = None) -> None:
    drag(widget, [pos if pos is not None else QPointF(widget.rect().center())])


def slider_handle(slider) -> QPointF:
    """The centre of a superqt slider's handle (the inner slider of a labelled one)."""
    rect = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, slider._styleOption,
                                         QStyle.SubControl.SC_SliderHandle, slider)
    return QPointF(rect.center())


def drag_slider(rng: random.Random, slider) -> None:
    """Grab the handle and move it to one to four random places along the groove."""
    start = slider_handle(slider)
    moves = [QPointF(rng.uniform(-10, slider.width() + 10), start.y()) for _ in range(rng.randint(1, 4))]
    drag(slider, [start] + moves)


def random_point(rng: random.Random, rect) -> QPointF:
    return QPointF(rng.uniform(rect.left(), rect.right()), rng.uniform(rect.top(), rect.bottom()))


def type_number(qtbot, spin_box, value: int) -> None:
    """Select the spin box's text and type ``value`` over it, then Enter."""
    spin_box.lineEdit().selectAll()
    qtbot.keyClicks(spin_box.lineEdit(), str(value))
    qtbot.keyClick(spin_box.lineEdit(), Qt.Key.Key_Return)


def combo_step(qtbot, combo, rng: random.Random) -> None:
    """Up or Down on a combo box, as a user with the keyboard changes its choice."""
    qtbot.keyClick(combo, rng.choice([Qt.Key.Key_Down, Qt.Key.Key_Up]))


def choose(qtbot, combo, index: int) -> None:
    """Bring a combo box to ``index`` with the arrow keys."""
    while combo.currentIndex() != index:
        before = combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key.Key_Down if index > before else Qt.Key.Key_Up)
        assert combo.currentIndex() != before, f"{combo.objectName() or 'a combo box'} does not move"


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    names = list(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def centre(widget: QWidget) -> QPoint:
    return widget.rect().center()
