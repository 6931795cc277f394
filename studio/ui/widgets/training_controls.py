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
    QVBoxLayout,
    QWidget,
)

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
    """One hyperparameter that can change mid-run: a spin box and its Set button."""

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.name = name
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(6)
        is_lr = name == "lr" or name.startswith("lr.")
        if is_lr:
            self.spin.setRange(1e-7, 1.0)
            self.spin.setSingleStep(1e-4)
        else:
            self.spin.setRange(0.0, 1000.0)
            self.spin.setSingleStep(0.1)
        self.button = QPushButton("Set")
        self.button.setToolTip(f"change {name} of the running job")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(live_label(name)))
        row.addWidget(self.spin, 1)
        row.addWidget(self.button)


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
        grid = QGridLayout()
        for i, b in enumerate((self.start_btn, self.resume_btn, self.pause_btn, self.stop_btn, self.save_btn)):
            grid.addWidget(b, i // 2, i % 2)
        self.live_box = QVBoxLayout()
        self.live: dict[str, LiveOption] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
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
        self.set_state(self._state)

    def set_live_values(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            if name in self.live and value is not None:
                self.live[name].spin.setValue(float(value))

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
            row.button.setEnabled(running)


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
