"""The run controls (start, resume, pause, stop, save now, the family's live options)
and the question asked when the app closes during a run."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from studio.ui import theme

RESUME_TIPS = {
    "paused": "continue the paused run",
    "idle": "continue the run in the output folder from its newest checkpoint",
}


def live_label(name: str) -> str:
    """"lr" -> "Live LR", "lr.disc" -> "Live LR (disc)", "beta" -> "Live beta"."""
    if name == "lr":
        return "Live LR"
    if name.startswith("lr."):
        return f"Live LR ({name[3:]})"
    return f"Live {name}"


class LiveOption(QWidget):
    """One hyperparameter that can change mid-run: its value now, a spin box and its Set button.

    Without a run there is no value to show: the row says "no run" (disabled) instead of a
    number that looks real, such as "Live LR 0.000000".
    """

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.name = name
        self.spin = QDoubleSpinBox()
        is_lr = name == "lr" or name.startswith("lr.")
        if is_lr:
            self.spin.setDecimals(6)  # as the form's learning rate
            self.spin.setRange(1e-6, 1.0)
            self.spin.setSingleStep(1e-4)
        else:
            self.spin.setDecimals(3)
            self.spin.setRange(0.0, 1000.0)
            self.spin.setSingleStep(0.1)
        self.spin.setToolTip(f"the {name} the running job uses now; change it and press Set")
        self.idle = QLabel("no run: start or resume one")
        self.idle.setEnabled(False)
        self.idle.setToolTip("live options change a run while it trains")
        self.value_box = QStackedWidget()
        self.value_box.addWidget(self.idle)
        self.value_box.addWidget(self.spin)
        self.value_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.value_box.setFixedHeight(self.spin.sizeHint().height())
        self.button = QPushButton("Set")
        self.button.setToolTip(f"change {name} of the running job")
        self.label = QLabel(live_label(name))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.value_box, 1)
        row.addWidget(self.button)
        self.set_active(False)

    def set_active(self, active: bool) -> None:
        """A run is training (the value is real and can be set) or not."""
        self.value_box.setCurrentWidget(self.spin if active else self.idle)
        self.spin.setEnabled(active)
        self.button.setEnabled(active)
        self.label.setEnabled(active)

    def is_active(self) -> bool:
        return self.value_box.currentWidget() is self.spin

    def shown_value(self) -> str:
        """What the row reads: the number while a run trains, else "no run"."""
        return self.spin.text() if self.is_active() else self.idle.text()

    def follow(self, value: float) -> None:
        """Show the value the run uses now (a schedule moves the LR), unless the user is editing it."""
        if not self.spin.hasFocus():
            self.spin.setValue(float(value))


LIVE_TITLE = "<b>Live options</b> <span style='color: {grey}'>{hint}</span>"
LIVE_HINTS = {"idle": "change a run while it trains", "active": "Set applies from the next step"}


class TrainingControls(QWidget):
    liveOptionSet = Signal(str, float)  # name, value

    def __init__(self, parent=None):
        super().__init__(parent)
        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("start a new run with these settings")
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip(RESUME_TIPS["idle"])
        self.pause_btn = QPushButton("Pause")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("finish the current step, save a checkpoint and stop")
        self.save_btn = QPushButton("Save now")
        self.save_btn.setToolTip("write a checkpoint now and go on training")
        self.follow_btn = QPushButton("Follow in explorer")
        self.follow_btn.setToolTip("open this run in its explorer panel; it then shows every new checkpoint")
        grid = QGridLayout()
        for i, b in enumerate((self.start_btn, self.resume_btn, self.pause_btn, self.stop_btn, self.save_btn,
                               self.follow_btn)):
            grid.addWidget(b, i // 2, i % 2)
        self.live_title = QLabel()
        self.live_box = QVBoxLayout()
        self.live: dict[str, LiveOption] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addSpacing(6)
        layout.addWidget(self.live_title)
        layout.addLayout(self.live_box)
        self._state = "idle"
        self._resumable = False

    def set_live_options(self, names: tuple[str, ...] | list[str]) -> None:
        """One row per live option of the family (its descriptor's ``live_options``)."""
        if list(names) == list(self.live):
            return
        for row in self.live.values():
            self.live_box.removeWidget(row)
            row.deleteLater()
        self.live = {}
        for name in names:
            row = LiveOption(name, self)
            row.button.clicked.connect(lambda _=False, r=row: self.liveOptionSet.emit(r.name, r.spin.value()))
            self.live_box.addWidget(row)
            self.live[name] = row
        self.live_title.setVisible(bool(self.live))
        self.set_state(self._state)

    def set_live_values(self, values: dict[str, float | None]) -> None:
        for name, value in values.items():
            if name in self.live and value is not None:
                self.live[name].spin.setValue(float(value))

    def follow_live_values(self, values: dict[str, float | None]) -> None:
        """The values the run uses now (from its progress), for rows the user is not editing."""
        for name, value in values.items():
            if name in self.live and value is not None:
                self.live[name].follow(value)

    def set_resumable(self, resumable: bool) -> None:
        """Whether the output folder holds a run that Resume can continue."""
        self._resumable = resumable
        self.set_state(self._state)

    def set_state(self, state: str) -> None:
        """idle, checking, running, paused or stopping."""
        self._state = state
        running = state in ("running", "paused")
        self.start_btn.setEnabled(state == "idle")
        self.resume_btn.setEnabled(state == "paused" or (state == "idle" and self._resumable))
        self.resume_btn.setToolTip(RESUME_TIPS["paused" if state == "paused" else "idle"])
        self.pause_btn.setEnabled(state == "running")
        self.stop_btn.setEnabled(running)
        self.save_btn.setEnabled(running)
        for row in self.live.values():
            row.set_active(running)
        self.live_title.setText(LIVE_TITLE.format(grey=theme.MUTED, hint=LIVE_HINTS["active" if running else "idle"]))


def ask_close_choice(parent) -> str:
    """'stop', 'background' or 'cancel', asked when the app closes during a run."""
    box = QMessageBox(parent)
    box.setWindowTitle("Training is running")
    box.setText("A training run is in progress.")
    box.setInformativeText("Stop it (a checkpoint is saved, then the window closes), or keep it training "
                           "in the background? A background run writes its checkpoints and log as usual, "
                           "ends by itself, and can be stopped from the run list later.")
    stop = box.addButton("Stop and save", QMessageBox.AcceptRole)
    keep = box.addButton("Keep training in background", QMessageBox.ActionRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(stop)
    box.exec()
    clicked = box.clickedButton()
    return "stop" if clicked is stop else "background" if clicked is keep else "cancel"
