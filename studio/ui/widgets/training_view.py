"""The training panel's widgets and their layout (the panel adds the behaviour)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.ui.widgets.image_view import ImageView
from studio.ui.widgets.training_controls import TrainingControls
from studio.ui.widgets.training_form import TrainingForm
from studio.ui.widgets.training_plots import LossCurves
from studio.ui.widgets.training_runs import RunList


class TrainingView(QWidget):
    """Form and controls on the left; progress, loss curves, preview, run list and log on the right."""

    def __init__(self, families: list[str], runs_root: Path, parent=None):
        super().__init__(parent)
        self.form = TrainingForm(families, runs_root)
        self.controls = TrainingControls()
        self.follow_btn = QPushButton("Follow in explorer")
        self.follow_btn.setToolTip("open this run in its explorer panel; it then shows every new checkpoint")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.form)
        lv.addWidget(self.controls)
        lv.addWidget(self.follow_btn)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = QLabel("Idle: choose a dataset and press Start.")
        # Changing text must not re-lay-out the panel four times a second.
        self.progress_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.curves = LossCurves()
        self.preview = ImageView(min_size=160)
        self.preview.set_placeholder("samples appear here during training")
        self.runs = RunList(runs_root)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(1000)
        self.log.setPlaceholderText("checkpoints, state changes and errors")

        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(self.preview)
        bottom.addWidget(self.runs)
        bottom.addWidget(self.log)
        bottom.setSizes([260, 300, 300])
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.curves)
        right_split.addWidget(bottom)
        right_split.setSizes([420, 260])
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.progress)
        rv.addWidget(self.progress_label)
        rv.addWidget(right_split, 1)

        split = QSplitter(Qt.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)
