"""The training panel's widgets and their layout (the panel adds the behaviour)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.ui.widgets.image_view import ImageView
from studio.ui.widgets.training_controls import TrainingControls
from studio.ui.widgets.training_form import TrainingForm
from studio.ui.widgets.training_log import RunLog
from studio.ui.widgets.training_plots import LossCurves
from studio.ui.widgets.training_runs import RunTable


class TrainingView(QWidget):
    """Form and controls on the left; on the right progress and loss curves above, the preview
    beside the run table and the log below."""

    def __init__(self, families: list[str], runs_root: Path, parent=None):
        super().__init__(parent)
        self.form = TrainingForm(families, runs_root)
        self.controls = TrainingControls()
        self.follow_btn = self.controls.follow_btn
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.form)
        lv.addWidget(self.controls)
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
        self.runs = RunTable(runs_root)
        self.log = RunLog(max_lines=1000)
        self.log.setPlaceholderText("checkpoints, state changes and errors")

        runs_and_log = QSplitter(Qt.Vertical)
        runs_and_log.addWidget(titled("Runs", self.runs))
        runs_and_log.addWidget(titled("Log", self.log))
        runs_and_log.setSizes([200, 140])
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(titled("Samples during training", self.preview))
        bottom.addWidget(runs_and_log)
        bottom.setSizes([320, 500])
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.curves)
        right_split.addWidget(bottom)
        right_split.setSizes([300, 400])  # the bottom row must hold the previews at 2x
        self.splitters = {"bottom": bottom, "runs_and_log": runs_and_log, "right": right_split}
        for name, splitter in self.splitters.items():
            splitter.setObjectName(name)  # named: the window remembers where the user put them
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.progress)
        rv.addWidget(self.progress_label)
        rv.addWidget(right_split, 1)

        split = QSplitter(Qt.Horizontal)
        split.setObjectName("form_and_views")
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)


def titled(title: str, widget: QWidget) -> QWidget:
    """``widget`` under a bold title."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    label = QLabel(title)
    label.setStyleSheet("font-weight: bold;")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box
