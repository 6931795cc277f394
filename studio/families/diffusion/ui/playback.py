"""Playback controls for a recorded trajectory: play/pause, step, scrubber, speed.

The widget knows only frame indices. It emits ``frameChanged(index)`` whenever
the shown frame should change (scrubber drag, a step button, a timer tick);
the panel draws that frame. While frames are still arriving, playback follows
the newest frame if the scrubber sits at the end.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QStyle, QWidget


class PlaybackControls(QWidget):
    frameChanged = Signal(int)
    playingChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._count = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        style = self.style()
        self.back_button = QPushButton()
        self.back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.back_button.setToolTip("Step back one recorded step (Left)")
        self.play_button = QPushButton()
        self.play_button.setToolTip("Play / pause the recorded steps (Space)")
        self.play_button.setCheckable(True)
        self.forward_button = QPushButton()
        self.forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.forward_button.setToolTip("Step forward one recorded step (Right)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Every recorded step; drag to scrub")
        self.speed = QSpinBox()
        self.speed.setRange(1, 240)
        self.speed.setValue(30)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Playback speed")
        self.loop = QPushButton("Loop")
        self.loop.setCheckable(True)
        self.label = QLabel("no steps recorded")
        self.label.setMinimumWidth(220)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.back_button, self.play_button, self.forward_button):
            row.addWidget(w)
        row.addWidget(self.scrubber, 1)
        row.addWidget(self.speed)
        row.addWidget(self.loop)
        row.addWidget(self.label)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.play_button.toggled.connect(self._play_toggled)
        self.scrubber.valueChanged.connect(self.frameChanged.emit)
        self.speed.valueChanged.connect(self._speed_changed)
        self._update_icon()

    # --- state -----------------------------------------------------------------------
    def count(self) -> int:
        return self._count

    def index(self) -> int:
        return self.scrubber.value()

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_count(self, count: int, follow: bool = True) -> None:
        """``count`` frames are recorded; with ``follow`` an index at the old end moves to the new end."""
        at_end = self._count == 0 or self.index() >= self._count - 1
        self._count = max(0, int(count))
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, max(0, self._count - 1))
        self.scrubber.blockSignals(False)
        if self._count and follow and at_end and not self.is_playing():
            self.set_index(self._count - 1)

    def set_index(self, index: int) -> None:
        index = max(0, min(int(index), max(0, self._count - 1)))
        if index == self.scrubber.value():
            self.frameChanged.emit(index)  # redraw anyway (new frame content at this index)
        else:
            self.scrubber.setValue(index)

    def set_label(self, text: str) -> None:
        self.label.setText(text)

    def clear(self) -> None:
        self.pause()
        self._count = 0
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, 0)
        self.scrubber.setValue(0)
        self.scrubber.blockSignals(False)
        self.label.setText("no steps recorded")

    # --- actions ---------------------------------------------------------------------
    def step(self, delta: int) -> None:
        self.pause()
        self.set_index(self.index() + delta)

    def play(self) -> None:
        if self._count < 2:
            return
        if self.index() >= self._count - 1:
            self.set_index(0)  # play again from the start
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def set_speed(self, steps_per_s: int) -> None:
        self.speed.setValue(steps_per_s)

    def set_interval_ms(self, ms: int) -> None:
        """Run the timer at a fixed interval (0: as fast as the event loop allows; benchmark)."""
        self._timer.setInterval(max(0, int(ms)))

    def _play_toggled(self, on: bool) -> None:
        if on and self._count >= 2:
            self._timer.start(self._interval())
        else:
            self._timer.stop()
            if on:
                self.play_button.setChecked(False)
                return
        self._update_icon()
        self.playingChanged.emit(self._timer.isActive())

    def _interval(self) -> int:
        return max(1, int(round(1000.0 / self.speed.value())))

    def _speed_changed(self) -> None:
        if self._timer.isActive():
            self._timer.setInterval(self._interval())

    def _tick(self) -> None:
        nxt = self.index() + 1
        if nxt >= self._count:
            if self.loop.isChecked():
                nxt = 0
            else:
                self.pause()
                return
        self.scrubber.setValue(nxt)

    def _update_icon(self) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if self._timer.isActive() else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
