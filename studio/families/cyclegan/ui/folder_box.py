"""Translate a whole folder: input and output folders, a progress bar, cancel, and the files that failed.

``FolderBox`` shows a ``FolderJob`` (studio.families.cyclegan.state); ``FolderTranslation``
starts and cancels the job on the panel's renderer, which translates batch by batch and
reports each batch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget, QProgressBar, QPushButton, QVBoxLayout,
)

from studio.families.cyclegan.ops import FolderProgress
from studio.families.cyclegan.state import FolderJob
from studio.ui import theme


class FolderBox(QGroupBox):
    chooseSource = Signal()
    chooseOutput = Signal()
    start = Signal()
    cancel = Signal()

    def __init__(self, parent=None):
        super().__init__("Translate a folder", parent)
        self.source_button = QPushButton("Input folder…")
        self.output_button = QPushButton("Output folder…")
        self.source_label = QLabel("none chosen")
        self.output_label = QLabel("none chosen")
        for label in (self.source_label, self.output_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
        self.save_cycle = QCheckBox("also write each round trip (NAME.cycle.png)")
        self.translate_button = QPushButton("Translate folder")
        self.cancel_button = QPushButton("Cancel")
        self.translate_button.setToolTip("Translate every file in the input folder and its subfolders, "
                                         "in the direction and fit chosen above; a file that fails is listed "
                                         "and the others go on")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.errors = QListWidget()
        self.errors.setToolTip("The files that could not be translated, and why")
        self.errors.setMinimumHeight(60)
        self.errors.setWordWrap(True)
        self.errors.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.errors.hide()

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(self.source_button, 0, 0)
        grid.addWidget(self.source_label, 0, 1)
        grid.addWidget(self.output_button, 1, 0)
        grid.addWidget(self.output_label, 1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.translate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.save_cycle)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(self.errors, 1)

        self.source_button.clicked.connect(self.chooseSource)
        self.output_button.clicked.connect(self.chooseOutput)
        self.translate_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.show_job(FolderJob())

    def show_job(self, job: FolderJob) -> None:
        self.source_label.setText(job.source or "none chosen")
        self.output_label.setText(job.output or "none chosen")
        self.translate_button.setEnabled(not job.running)
        self.cancel_button.setEnabled(job.running)
        for widget in (self.source_button, self.output_button, self.save_cycle):
            widget.setEnabled(not job.running)
        p = job.progress
        if p is not None:
            self.progress.setRange(0, max(1, p.total))
            self.progress.setValue(p.done)
            self.progress.setFormat("%v of %m files")
        elif job.running:
            self.progress.setRange(0, 0)  # busy until the first batch says how many there are
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")  # nothing started: no "0 of 1"
        self.summary.setText(job.summary())
        failures = job.failures() if not job.running else []
        self.errors.clear()
        for line in failures:
            self.errors.addItem(line)
            self.errors.item(self.errors.count() - 1).setForeground(QColor(theme.ERROR))
        self.errors.setVisible(bool(failures))


class FolderTranslation:
    """The panel's folder job: the box's buttons, the state's ``FolderJob`` and the renderer's stream.

    The job runs on the panel's "folder" channel, batch by batch; cancelling drops the channel,
    so nothing of the job arrives after ``cancel`` returns. It goes on with the model it started
    with, whatever the panel opens meanwhile.
    """

    def __init__(self, panel, box: FolderBox):
        self.panel, self.box = panel, box
        box.chooseSource.connect(self.choose_source)
        box.chooseOutput.connect(self.choose_output)
        box.start.connect(self.start)
        box.cancel.connect(self.cancel)

    @property
    def job(self) -> FolderJob:
        return self.panel.state.folder

    def choose_source(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path = QFileDialog.getExistingDirectory(self.panel, "Folder to translate", self.job.source)
        if path:
            self.set_source(path)

    def choose_output(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path = QFileDialog.getExistingDirectory(self.panel, "Where the translations go", self.job.output)
        if path:
            self.set_output(path)

    def set_source(self, path: str) -> None:
        self.job.source = str(path)
        if not self.job.output:  # a starting point beside it; the user may choose another
            self.job.output = str(Path(path).parent / f"{Path(path).name}_{self.panel.state.direction}")
        self.box.show_job(self.job)

    def set_output(self, path: str) -> None:
        self.job.output = str(path)
        self.box.show_job(self.job)

    def start(self) -> None:
        self.job.save_reconstruction = self.box.save_cycle.isChecked()
        problem = self.job.problem() if self.panel.checkpoint else "Open a CycleGAN checkpoint first."
        if problem:
            self.panel.on_error("folder", problem)
            return
        self.job.start()
        self.panel.submit("folder", self.panel.state.folder_request(self.panel.target()))
        self.box.show_job(self.job)
        self.panel.show_info(f"translating {self.job.source} ({self.panel.state.direction_label()}) "
                             f"into {self.job.output}…")

    def cancel(self) -> None:
        if not self.job.running:
            return
        self.panel.cancel("folder")
        self.job.cancel()
        self.box.show_job(self.job)
        self.panel.show_info(f"folder translation {self.job.summary()}")

    def progressed(self, progress: FolderProgress) -> None:
        self.job.update(progress)
        self.box.show_job(self.job)
        if progress.finished:
            text = f"folder translation {self.job.summary()}"
            if progress.failed:
                self.panel.show_error(text + " (listed in the folder box)")
            else:
                self.panel.show_info(text)

    def failed(self) -> None:
        if self.job.running:
            self.job.fail()
            self.box.show_job(self.job)
