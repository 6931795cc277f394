"""The diffusion panel's widgets and their layout (the panel adds the behaviour).

Settings on top; the four pictures of the step shown (x_t, predicted x0,
predicted noise, noise added), each titled, at a whole zoom; the playback
row and the export row; below, the noise schedule, the Explain pane (its
own scrolling column, so a longer explanation never moves the pictures)
and the forward-process box.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.families.diffusion import ops
from studio.families.diffusion.state import DiffusionState
from studio.families.diffusion.ui.forward_view import ForwardBox
from studio.families.diffusion.ui.playback import PlaybackControls
from studio.families.diffusion.ui.schedule_plot import SchedulePlot
from studio.families.diffusion.ui.settings_row import SettingsRow
from studio.families.diffusion.ui.views import ElidedLabel, TitledView
from studio.ui.widgets.checkpoint_picker import CheckpointPicker

# Rich text: subscripts drawn as such. "predicted" stands for the hat (a combining hat draws badly in labels).
VIEW_TITLES = {"x_t": "x<sub>t</sub>: the noisy sample", "x0": "predicted x<sub>0</sub>: the model's guess",
               "eps": "predicted noise ε", "noise": "noise added σ<sub>t</sub>·z"}
VIEW_TIPS = {"x_t": "The sample being denoised: pure noise at t = T, the picture at t = 0",
             "x0": "The model's current guess of the clean image (the preview)",
             "eps": "The predicted noise epsilon, shown at ±2 sd around grey",
             "noise": "The random noise sigma_t z added at this step (±2 sd around grey)"}


class DiffusionView(QWidget):
    def __init__(self, state: DiffusionState, parent=None):
        super().__init__(parent)
        self.picker = CheckpointPicker("diffusion")
        self.picker.setMinimumWidth(150)  # the settings row must fit the default 1180-pixel window
        self.settings = SettingsRow(state, leading=(("Model", self.picker),))

        self.cells = {key: TitledView(VIEW_TITLES[key]) for key in ops.VIEWS}
        self.views = {key: cell.view for key, cell in self.cells.items()}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for i, key in enumerate(ops.VIEWS):
            self.views[key].set_placeholder("press Sample")
            self.views[key].setToolTip(VIEW_TIPS[key])
            grid.addWidget(self.cells[key], 0, i)

        self.playback = PlaybackControls(state)
        self.export_view = QComboBox()
        for key in ops.VIEWS:
            self.export_view.addItem(ops.VIEW_TITLES[key], key)
        self.export_view.setCurrentIndex(ops.VIEWS.index("x0"))
        self.run_info = ElidedLabel("", width_chars=40)
        self.info = ElidedLabel("")
        self.gif_button = QPushButton("Export GIF…")
        self.strip_button = QPushButton("Export PNG strip…")
        export = QHBoxLayout()
        export.addWidget(QLabel("Export view"))
        export.addWidget(self.export_view)
        export.addWidget(self.gif_button)
        export.addWidget(self.strip_button)
        export.addWidget(self.run_info)
        export.addWidget(self.info, 1)

        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(grid, 1)
        upper_layout.addWidget(self.playback)
        upper_layout.addLayout(export)

        self.schedule_plot = SchedulePlot()
        self.forward_box = ForwardBox()
        self.explain_scroll = QScrollArea()  # holds the panel's Explain pane (see place_explain)
        self.explain_scroll.setWidgetResizable(True)
        self.explain_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.explain_scroll.setMinimumWidth(300)
        self.lower = QSplitter(Qt.Orientation.Horizontal)
        self.lower.setObjectName("lower")  # named: the window remembers where the user put it
        self.lower.addWidget(self.schedule_plot)
        self.lower.addWidget(self.explain_scroll)
        self.lower.addWidget(self.forward_box)
        self.lower.setSizes([260, 640, 280])
        self.lower.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("pictures_and_lower")
        self.splitter.addWidget(upper)
        self.splitter.addWidget(self.lower)
        self.splitter.setSizes([310, 360])
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.settings)
        layout.addWidget(self.splitter, 1)
