"""The CycleGAN panel's settings row: direction, fit, tile overlap, and the buttons that act on pictures.

``DirectionToggle``: two buttons labelled with the domains ("handwritten → printed" /
"printed → handwritten"), the chosen one filled. The row only shows and reports; the panel
decides (studio.families.cyclegan.state).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from studio.families.cyclegan.ops import DEFAULT_OVERLAP
from studio.ui import theme

FITS = {"pad": "pad (keep the aspect)", "crop": "crop (fill the square)", "stretch": "stretch",
        "tile": "tile (whole picture)"}


class DirectionToggle(QWidget):
    """A → B or B → A, each button named by its domains."""

    changed = Signal(str)  # "AtoB" or "BtoA", on a click

    def __init__(self, parent=None):
        super().__init__(parent)
        self.buttons = {d: QPushButton(d) for d in ("AtoB", "BtoA")}
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        # The chosen direction must read at a glance: filled with the accent colour, the other plain.
        self.setStyleSheet(f"QPushButton {{ padding: 3px 10px; }} "
                           f"QPushButton:checked {{ background: {theme.ACCENT}; color: #000000; "
                           f"border: 1px solid {theme.ACCENT}; }}")
        for direction, button in self.buttons.items():
            button.setCheckable(True)
            self.group.addButton(button)
            row.addWidget(button)
            button.clicked.connect(lambda _=False, d=direction: self.changed.emit(d))
        self.buttons["AtoB"].setChecked(True)

    def set_labels(self, a_to_b: str, b_to_a: str) -> None:
        self.buttons["AtoB"].setText(a_to_b)
        self.buttons["BtoA"].setText(b_to_a)
        self.buttons["AtoB"].setToolTip(f"Translate {a_to_b} with G_AB; the round trip goes back with G_BA")
        self.buttons["BtoA"].setToolTip(f"Translate {b_to_a} with G_BA; the round trip goes back with G_AB")

    def direction(self) -> str:
        return "AtoB" if self.buttons["AtoB"].isChecked() else "BtoA"

    def set_direction(self, direction: str) -> None:
        self.buttons[direction].setChecked(True)



class ControlsRow(QWidget):
    fitChanged = Signal(str)
    overlapChanged = Signal(int)
    sampleRequested = Signal()
    openRequested = Signal()
    saveRequested = Signal(str)  # "translation" or "strip"
    semanticToggled = Signal(bool)  # the user asks for the model with (True) or without the semantic loss

    def __init__(self, parent=None):
        super().__init__(parent)
        self.toggle = DirectionToggle()
        self.fit = QComboBox()
        for key, text in FITS.items():
            self.fit.addItem(text, key)
        self.fit.setToolTip("How a picture meets the model's square input. A digit model frames every digit as "
                            "MNIST does (ink scaled into 20x20, centred) unless it tiles; tile translates the whole "
                            "picture in model-sized pieces, blended where they overlap.")
        self.overlap = QSpinBox()
        self.overlap.setRange(0, 24)
        self.overlap.setValue(DEFAULT_OVERLAP)
        self.overlap.setSuffix(" px overlap")
        self.overlap.setToolTip("How far neighbouring tiles overlap (tile only)")
        self.overlap.setEnabled(False)
        self.sample_button = QPushButton("Sample digit")
        self.sample_button.setToolTip("Translate a held-out digit of the input domain (one the model never saw)")
        self.open_button = QPushButton("Open pictures…")
        self.semantic = QCheckBox("Semantic loss")
        self.semantic.setEnabled(False)
        self.semantic.clicked.connect(self.semanticToggled)
        self.save_button = QPushButton("Save translation…")
        self.save_strip_button = QPushButton("Save strip…")
        self.save_strip_button.setToolTip("input | translation | round trip, as one PNG")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("Direction"), self.toggle, QLabel("Fit"), self.fit, self.overlap):
            row.addWidget(widget)
        row.addSpacing(12)
        row.addWidget(self.sample_button)
        row.addWidget(self.open_button)
        row.addSpacing(12)
        row.addWidget(self.semantic)
        row.addStretch(1)
        row.addWidget(self.save_button)
        row.addWidget(self.save_strip_button)
        self.fit.currentIndexChanged.connect(self._fit_changed)
        self.overlap.valueChanged.connect(self.overlapChanged)
        self.sample_button.clicked.connect(self.sampleRequested)
        self.open_button.clicked.connect(self.openRequested)
        self.save_button.clicked.connect(lambda: self.saveRequested.emit("translation"))
        self.save_strip_button.clicked.connect(lambda: self.saveRequested.emit("strip"))

    def _fit_changed(self, _index: int) -> None:
        fit = self.fit.currentData()
        self.overlap.setEnabled(fit == "tile")
        self.fitChanged.emit(fit)

    def show_semantic(self, on: bool, partner_available: bool, comparison: str) -> None:
        """Ticked when the model on screen trained with the semantic loss; usable when its partner exists."""
        self.semantic.setChecked(on)
        self.semantic.setEnabled(partner_available)
        self.semantic.setToolTip(
            ("Switch to the same CycleGAN trained " + ("without" if on else "with")
             + " CyCADA's semantic loss and translate the same picture. " + comparison)
            if partner_available else
            "CyCADA's semantic loss: a frozen digit classifier must read the translation as the input's digit. "
            "No checkpoint of this task trained " + ("without" if on else "with") + " it is open to compare.")

    def enable(self, has_model: bool, can_sample: bool, has_picture: bool) -> None:
        for widget in (self.toggle, self.fit, self.open_button):
            widget.setEnabled(has_model)
        self.overlap.setEnabled(has_model and self.fit.currentData() == "tile")
        self.sample_button.setEnabled(has_model and can_sample)
        self.save_button.setEnabled(has_picture)
        self.save_strip_button.setEnabled(has_picture)
