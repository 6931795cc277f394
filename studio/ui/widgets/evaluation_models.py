"""What the evaluation panel evaluates: a checklist of generators and the diffusion samplers."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from studio.core.checkpoint import CheckpointError, read_metadata
from studio.core.family import generator_families, get_family
from studio.engine.catalog import shipped


FAMILY_ROLE = Qt.ItemDataRole.UserRole + 1


class CheckpointChecklist(QListWidget):
    """Every shipped generator with a checkbox, plus any checkpoint file the user adds."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(80)
        self.setMaximumHeight(140)
        for family in generator_families():
            for path in shipped(family):
                self._append(path, family, checked=True)
        self.itemChanged.connect(lambda _item: self.changed.emit())

    def _append(self, path: Path, family: str, checked: bool) -> QListWidgetItem:
        item = QListWidgetItem(f"{path.stem}  ({get_family(family).title})")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setData(FAMILY_ROLE, family)
        item.setToolTip(str(path))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.addItem(item)
        return item

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def checked(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())
                if self.item(i).checkState() == Qt.CheckState.Checked]

    def checked_families(self) -> set[str]:
        return {self.item(i).data(FAMILY_ROLE) for i in range(self.count())
                if self.item(i).checkState() == Qt.CheckState.Checked}

    def set_checked(self, paths: list[str]) -> None:
        wanted = {str(Path(p).resolve()) for p in paths}
        for i in range(self.count()):
            item = self.item(i)
            inside = str(Path(item.data(Qt.ItemDataRole.UserRole)).resolve()) in wanted
            item.setCheckState(Qt.CheckState.Checked if inside else Qt.CheckState.Unchecked)

    def add_checkpoint(self, path: str) -> str:
        """Add (and check) a checkpoint file; CheckpointError says why it cannot be evaluated."""
        meta = read_metadata(path)
        family = meta["family"]
        if family not in generator_families():
            raise CheckpointError(f"{path}: a '{family}' checkpoint generates no images, there is nothing to evaluate")
        resolved = str(Path(path).resolve())
        for i in range(self.count()):
            if str(Path(self.item(i).data(Qt.ItemDataRole.UserRole)).resolve()) == resolved:
                self.item(i).setCheckState(Qt.CheckState.Checked)
                return family
        self._append(Path(path), family, checked=True)
        self.changed.emit()
        return family


class SamplerOptions(QWidget):
    """Which diffusion samplers to run, their steps, the timestep spacing, DDIM's eta and clipped noise."""

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.ddpm = QCheckBox("DDPM")
        self.ddpm_steps = self._steps(1000)
        self.ddim = QCheckBox("DDIM")
        self.ddim.setChecked(True)
        self.ddim_steps = self._steps(50)
        form.addRow(self._pair(self.ddpm, self.ddpm_steps))
        form.addRow(self._pair(self.ddim, self.ddim_steps))
        self.spacing = QComboBox()
        self.spacing.addItems(["leading", "trailing", "linspace"])
        self.spacing.setToolTip("Which timesteps a shortened sampler visits (diffusers' timestep_spacing)")
        form.addRow("spacing", self.spacing)
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setToolTip("DDIM eta: 0 deterministic, 1 as noisy as DDPM")
        form.addRow("DDIM eta", self.eta)
        self.clipped_eps = QCheckBox("DDIM clip ε")
        self.clipped_eps.setToolTip("DDIM steps along the noise the clipped x0 implies (diffusers' "
                                    "use_clipped_model_output)")
        form.addRow(self.clipped_eps)

    @staticmethod
    def _steps(value: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(1, 1000)
        box.setValue(value)
        box.setSuffix(" steps")
        return box

    @staticmethod
    def _pair(check: QCheckBox, steps: QSpinBox) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(check)
        layout.addWidget(steps, 1)
        return row

    def variants(self) -> list[dict]:
        """One dict of sampler options per checked sampler (families take what applies to them)."""
        spacing = self.spacing.currentText()
        out = []
        if self.ddpm.isChecked():
            out.append({"sampler": "ddpm", "steps": self.ddpm_steps.value(), "spacing": spacing})
        if self.ddim.isChecked():
            ddim = {"sampler": "ddim", "steps": self.ddim_steps.value(), "spacing": spacing,
                    "eta": round(self.eta.value(), 3)}
            if self.clipped_eps.isChecked():
                ddim["use_clipped_model_output"] = True
            out.append(ddim)
        return out
