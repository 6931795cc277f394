"""The VAE explorer's parts, laid out but not wired: the panel binds them to its state."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget,
)
from superqt import QLabeledSlider

from studio.families.vae.state import SPAN
from studio.ui.widgets.image_view import ImageView
from studio.ui.widgets.latent_sliders import LatentSliders


class MapBox(QTabWidget):
    """The manifold map, and the dataset scatter beside it (pyqtgraph, built on first use)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.manifold = ImageView(min_size=300, title="Decoded images over the latent plane")
        self.manifold.setToolTip(f"Decoded images over a plane of the latent space (±{SPAN:g} sigma). "
                                 "Click or drag to decode a point.")
        self.mnist_button = QPushButton("Encode MNIST digits")
        self.mnist_button.setToolTip("Encode 3,000 MNIST digits and plot their means μ (Ctrl+M)")
        self.load_data_button = QPushButton("Encode dataset…")
        self.load_data_button.setToolTip("Encode a dataset (IDX, image folder, .npz) and plot its means")
        self.scatter_box = QWidget()
        self.scatter_layout = QVBoxLayout(self.scatter_box)
        self.scatter_hint = QLabel("Encode a dataset to see where its images land in the latent space.")
        self.scatter_hint.setWordWrap(True)
        self.scatter_layout.addWidget(self.scatter_hint, 1, Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        row.addWidget(self.mnist_button)
        row.addWidget(self.load_data_button)
        self.scatter_layout.addLayout(row)
        self.addTab(self.manifold, "Manifold map")
        self.addTab(self.scatter_box, "Dataset scatter")


class DecodeBox(QWidget):
    """The image decoded from the sliders' z, its buttons, and the sliders."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.decoded = ImageView(min_size=200, title="Decoded from z")
        self.random_button = QPushButton("Random sample")
        self.random_button.setToolTip("z drawn from the prior N(0, I) (Ctrl+R)")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("z = 0, the prior's mean (Ctrl+0)")
        self.save_button = QPushButton("Save image…")
        self.save_button.setToolTip("Save the decoded image as PNG (Ctrl+S)")
        self.sliders_title = QLabel("Latent z, one slider per dimension")
        self.sliders = LatentSliders(SPAN)
        buttons = QHBoxLayout()
        for b in (self.random_button, self.reset_button, self.save_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.decoded, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.sliders_title)
        layout.addWidget(self.sliders, 2)


class EncodeBox(QGroupBox):
    """An image the user dropped or pasted beside its reconstruction."""

    def __init__(self, parent=None):
        super().__init__("Encode: drop images or folders, or paste (Ctrl+V)", parent)
        self.pair = ImageView(min_size=120, title="input | reconstruction")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pair, 1)
        layout.addWidget(self.label)


class InterpolationBox(QGroupBox):
    """A strip of decoded images along a path from A to B."""

    TITLE = "Interpolate from A to B"

    def __init__(self, parent=None):
        super().__init__(self.TITLE, parent)
        self.set_a = QPushButton("Set A = current")
        self.set_a.setToolTip("The current z becomes the strip's left end (Ctrl+[)")
        self.set_b = QPushButton("Set B = current")
        self.set_b.setToolTip("The current z becomes the strip's right end (Ctrl+])")
        self.mode = QComboBox()
        self.mode.addItems(["linear", "spherical"])
        self.mode.setToolTip("linear: a straight line; spherical: an arc that keeps the radius a "
                             "Gaussian sample has (Ctrl+L)")
        self.steps = QLabeledSlider(Qt.Orientation.Horizontal)
        self.steps.setRange(3, 24)
        self.steps.setValue(10)
        self.steps.setToolTip("images in the strip")
        self.steps.setMinimumWidth(120)
        self.strip = ImageView(min_size=60)
        self.strip.setToolTip("From A to B, read left to right (then down when it is shown in rows)")
        self.save_strip_button = QPushButton("Save strip…")
        self.save_strip_button.setToolTip("Save the strip as PNG (Ctrl+Shift+S)")
        row = QHBoxLayout()
        for w in (self.set_a, self.set_b, self.mode):
            row.addWidget(w)
        steps_row = QHBoxLayout()
        steps_row.addWidget(QLabel("steps"))
        steps_row.addWidget(self.steps, 1)
        steps_row.addWidget(self.save_strip_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(steps_row)
        layout.addWidget(self.strip, 1)


class AxisBoxes(QWidget):
    """The two spin boxes that pick the latent dimensions the map spans."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.dim_x, self.dim_y = QSpinBox(), QSpinBox()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label, box in (("map x = z[", self.dim_x), ("] y = z[", self.dim_y)):
            box.setToolTip("latent dimension shown on this axis of the map and scatter")
            layout.addWidget(QLabel(label))
            layout.addWidget(box)
        layout.addWidget(QLabel("]"))

    def show_dims(self, dims: tuple[int, int], latent_dim: int, editable: bool) -> None:
        """Show ``dims`` without emitting: the range is set first, so no value is clamped."""
        for box, value in ((self.dim_x, dims[0]), (self.dim_y, dims[1])):
            box.blockSignals(True)
            box.setRange(0, max(0, latent_dim - 1))
            box.setValue(value)
            box.setEnabled(editable)
            box.blockSignals(False)
