"""Widgets the GAN panels share: a picker for GAN checkpoints, the layer-range slider, projections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget
from superqt import QLabeledRangeSlider

from studio.core.checkpoint import CheckpointError, read_metadata
from studio.engine.catalog import shipped
from studio.families.stylegan.ops import Code
from studio.ui.widgets.checkpoint_picker import CheckpointPicker

# Layer groups of the 32x32 StyleGAN, as in the paper's figure: coarse 4-8 px, middle 16 px, fine 32 px.
PRESETS = {"coarse": (0, 3), "middle": (4, 5), "fine": (6, 7)}
RESOLUTIONS = (4, 4, 8, 8, 16, 16, 32, 32)


class GanCheckpointPicker(CheckpointPicker):
    """The shipped checkpoints of several families (StyleGAN, DCGAN) in one combo box."""

    def __init__(self, families: tuple[str, ...], parent=None):
        super().__init__(families[0], parent=parent)
        self.families = families
        self.blockSignals(True)
        for family in families[1:]:
            for path in shipped(family):
                self.addItem(path.stem, str(path))
        self.blockSignals(False)

    def select(self, path: str) -> dict[str, Any]:
        meta = read_metadata(path)
        if meta["family"] not in self.families:
            raise CheckpointError(f"{path}: a '{meta['family']}' checkpoint, not a "
                                  f"{' or '.join(self.families)} model")
        resolved = str(Path(path))
        index = self.findData(resolved)
        if index < 0:
            self.addItem(Path(path).stem, resolved)
            index = self.count() - 1
        self.blockSignals(True)  # programmatic choice: not a user gesture
        self.setCurrentIndex(index)
        self.blockSignals(False)
        return meta


class LayerRange(QWidget):
    """superqt's labelled range slider over the style layers, with coarse/middle/fine presets."""

    changed = Signal(int, int)

    def __init__(self, layers: int = 8, initial: tuple[int, int] = (0, 3), presets: bool = True, parent=None):
        super().__init__(parent)
        self.slider = QLabeledRangeSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, layers - 1)
        self.slider.setValue(initial)
        self.slider.setToolTip("Style layers (inclusive): 0-1 at 4x4 px, 2-3 at 8x8, 4-5 at 16x16, 6-7 at 32x32")
        self.slider.valueChanged.connect(lambda v: self.changed.emit(int(v[0]), int(v[1])))
        self.description = QLabel("")
        self.changed.connect(self._describe)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        self.preset_buttons: dict[str, QPushButton] = {}
        if presets:
            for name, (a, b) in PRESETS.items():
                button = QPushButton(name.title())
                button.setToolTip(f"layers {a}-{b} ({RESOLUTIONS[a]}-{RESOLUTIONS[b]} px)")
                button.clicked.connect(lambda _=False, r=(a, b): self.set_range(r))
                self.preset_buttons[name] = button
                row.addWidget(button)
        row.addWidget(self.description)
        self._describe(*initial)

    def value(self) -> tuple[int, int]:
        a, b = self.slider.value()
        return int(a), int(b)

    def set_range(self, value: tuple[int, int]) -> None:
        self.slider.setValue(tuple(value))

    def _describe(self, a: int, b: int) -> None:
        self.description.setText(f"{RESOLUTIONS[a]}-{RESOLUTIONS[b]} px")


class ProjectionStore(QObject):
    """Projected latents, shared by the GAN panels of one window (a child of the app context)."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.codes: dict[str, Code] = {}
        self.checkpoints: dict[str, str] = {}

    def add(self, code: Code, checkpoint: str) -> str:
        name = f"p{len(self.codes) + 1}"
        self.codes[name] = code
        self.checkpoints[name] = checkpoint
        self.changed.emit()
        return name

    def for_checkpoint(self, checkpoint: str) -> dict[str, Code]:
        mine = str(Path(checkpoint).resolve())
        return {n: c for n, c in self.codes.items() if str(Path(self.checkpoints[n]).resolve()) == mine}


def projection_store(context) -> ProjectionStore:
    store = context.findChild(ProjectionStore)
    if store is None:
        store = ProjectionStore(context)
    return store


def parse_sources(text: str, projections: dict[str, Code], limit: int = 8) -> tuple[Code, ...]:
    """"1, 2, p1" -> codes: seeds, or projections by name. ValueError names the bad entry."""
    codes = []
    for part in text.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if part in projections:
            codes.append(projections[part])
            continue
        try:
            seed = int(part)
        except ValueError:
            known = f" (projections: {', '.join(projections)})" if projections else ""
            raise ValueError(f"'{part}' is neither a seed nor a projection{known}") from None
        if seed < 0:
            raise ValueError(f"seed {seed} is negative")
        codes.append(Code(seed))
    if not codes:
        raise ValueError("give at least one seed")
    if len(codes) > limit:
        raise ValueError(f"at most {limit} sources on a side")
    return tuple(codes)
