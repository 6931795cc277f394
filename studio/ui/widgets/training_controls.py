"""The run controls (start, resume run, pause, resume, stop, save now, live LR)
and the question asked when the app closes during a run."""

from __future__ import annotations

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


class TrainingControls(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.start_btn = QPushButton("Start")
        self.resume_run_btn = QPushButton("Resume run")
        self.resume_run_btn.setToolTip("continue the run in the output folder from its last checkpoint")
        self.pause_btn = QPushButton("Pause")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("finish the current step, save a checkpoint and stop")
        self.save_btn = QPushButton("Save now")
        self.live_lr = QDoubleSpinBox()
        self.live_lr.setDecimals(6)
        self.live_lr.setRange(1e-7, 1.0)
        self.live_lr.setSingleStep(1e-4)
        self.live_lr.setValue(1e-3)
        self.lr_btn = QPushButton("Set LR")
        self.lr_btn.setToolTip("change the learning rate of the running job")
        grid = QGridLayout()
        for i, b in enumerate((self.start_btn, self.resume_run_btn, self.pause_btn,
                               self.resume_btn, self.stop_btn, self.save_btn)):
            grid.addWidget(b, i // 2, i % 2)
        lr_row = QHBoxLayout()
        lr_row.addWidget(QLabel("Live LR"))
        lr_row.addWidget(self.live_lr, 1)
        lr_row.addWidget(self.lr_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addLayout(lr_row)

    def set_state(self, state: str) -> None:
        """idle, checking, running or paused."""
        running = state in ("running", "paused")
        busy = running or state == "checking"
        self.start_btn.setEnabled(not busy)
        self.resume_run_btn.setEnabled(not busy)
        self.pause_btn.setEnabled(state == "running")
        self.resume_btn.setEnabled(state == "paused")
        self.stop_btn.setEnabled(running)
        self.save_btn.setEnabled(running)
        self.lr_btn.setEnabled(running)


def ask_close_choice(parent) -> str:
    """'stop', 'background' or 'cancel', asked when the app closes during a run."""
    box = QMessageBox(parent)
    box.setWindowTitle("Training is running")
    box.setText("A training run is in progress.")
    box.setInformativeText("Stop it (a checkpoint is saved), or keep it training in the background? "
                           "A background run writes its checkpoints and log as usual, ends by itself, "
                           "and can be stopped from the run list later.")
    stop = box.addButton("Stop and save", QMessageBox.AcceptRole)
    keep = box.addButton("Keep training in background", QMessageBox.ActionRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(stop)
    box.exec()
    clicked = box.clickedButton()
    return "stop" if clicked is stop else "background" if clicked is keep else "cancel"
