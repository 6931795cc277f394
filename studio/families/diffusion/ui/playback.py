"""Playback controls over a ``DiffusionState``: rewind, step back, play/pause, step forward, scrubber, speed.

The rules (replay from the start once finished, bounds, following the newest
step while recording) are the state's; this widget turns clicks, keys and
timer ticks into state calls, mirrors the state on screen with ``sync()``,
and emits ``frameChanged(index)`` whenever the frame to draw changed and
``playingChanged(on)`` when playback starts or stops.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSlider, QSpinBox, QStyle, QWidget

from studio.families.diffusion.state import DiffusionState
from studio.families.diffusion.ui.views import ElidedLabel


class PlaybackControls(QWidget):
    frameChanged = Signal(int)
    playingChanged = Signal(bool)

    def __init__(self, state: DiffusionState, parent=None):
        super().__init__(parent)
        self.state = state
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(lambda: self._apply(state.tick))
        style = self.style()
        self.rewind_button = QPushButton()
        self.rewind_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.rewind_button.setToolTip("Rewind to the first step (Home)")
        self.back_button = QPushButton("◀ step")
        self.back_button.setToolTip("Step back one recorded step (Left)")
        self.play_button = QPushButton()
        self.play_button.setToolTip("Play / pause the recorded steps; at the end, play again from the start (Space)")
        self.forward_button = QPushButton("step ▶")
        self.forward_button.setToolTip("Step forward one recorded step (Right)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Every recorded step; drag to scrub")
        self.speed = QSpinBox()
        self.speed.setRange(1, 1000)
        self.speed.setValue(state.speed)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Playback speed")
        self.loop = QPushButton("Loop")
        self.loop.setCheckable(True)
        self.loop.setToolTip("Start over at the end instead of stopping")
        self.label = ElidedLabel("no steps recorded", width_chars=24)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.rewind_button, self.back_button, self.play_button, self.forward_button):
            row.addWidget(w)
        row.addWidget(self.scrubber, 1)
        row.addWidget(self.speed)
        row.addWidget(self.loop)
        row.addWidget(self.label)
        self.rewind_button.clicked.connect(lambda: self._apply(state.rewind))
        self.back_button.clicked.connect(lambda: self._apply(lambda: state.step(-1)))
        self.forward_button.clicked.connect(lambda: self._apply(lambda: state.step(1)))
        self.play_button.clicked.connect(lambda: self._apply(state.toggle))
        self.scrubber.valueChanged.connect(lambda i: self._apply(lambda: state.seek(i)))
        self.speed.valueChanged.connect(self._speed_changed)
        self.loop.toggled.connect(lambda on: setattr(state, "loop", on))
        self._icon_playing: bool | None = None
        self.sync()

    # --- for the panel and tests ----------------------------------------------------------
    def count(self) -> int:
        return self.state.count()

    def index(self) -> int:
        return self.state.current

    def is_playing(self) -> bool:
        return self.state.playing

    def play(self) -> None:
        self._apply(self.state.play)

    def pause(self) -> None:
        self._apply(self.state.pause)

    def toggle(self) -> None:
        self._apply(self.state.toggle)

    def rewind(self) -> None:
        self._apply(self.state.rewind)

    def step(self, delta: int) -> None:
        self._apply(lambda: self.state.step(delta))

    def set_index(self, index: int) -> None:
        self._apply(lambda: self.state.seek(index))

    def set_speed(self, steps_per_s: int) -> None:
        self.speed.setValue(steps_per_s)

    def set_label(self, text: str) -> None:
        self.label.setText(text)

    def set_interval_ms(self, ms: int) -> None:
        """Tick at a fixed interval (0: as fast as the event loop allows; the benchmark)."""
        self._timer.setInterval(max(0, int(ms)))

    def sync(self) -> None:
        """Show the state: scrubber range and position, play icon, which buttons can act."""
        s = self.state
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, max(0, s.count() - 1))
        self.scrubber.setValue(s.current)
        self.scrubber.blockSignals(False)
        if s.playing != self._icon_playing:
            self._icon_playing = s.playing
            icon = QStyle.StandardPixmap.SP_MediaPause if s.playing else QStyle.StandardPixmap.SP_MediaPlay
            self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setEnabled(s.count() >= 2)
        self.rewind_button.setEnabled(s.current > 0)
        self.back_button.setEnabled(s.current > 0)
        self.forward_button.setEnabled(not s.at_end())
        if not s.count():
            self.label.setText("no steps recorded")
        if s.playing and not self._timer.isActive():
            self._timer.start(s.interval_ms())
        elif not s.playing and self._timer.isActive():
            self._timer.stop()

    # --- plumbing ------------------------------------------------------------------------
    def _apply(self, action) -> None:
        before, was_playing = self.state.current, self.state.playing
        action()
        self.sync()
        if self.state.current != before:
            self.frameChanged.emit(self.state.current)
        if self.state.playing != was_playing:
            self.playingChanged.emit(self.state.playing)

    def _speed_changed(self, value: int) -> None:
        self.state.speed = int(value)
        if self._timer.isActive():
            self._timer.setInterval(self.state.interval_ms())
