"""The training form: family, dataset, hyperparameters and output folder.

It produces a plain dict of TrainOptions fields, so building it never imports
torch (the panel turns the dict into TrainOptions when a run starts).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from studio.core.family import families, get_family
from studio.core.paths import default_mnist, runs_dir



def parse_model_options(text: str) -> dict:
    """``"latent_dim=2, beta=0.5"`` -> {"latent_dim": 2, "beta": 0.5} (values read as JSON)."""
    out = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"model option '{part}' is not KEY=VALUE")
        k, v = (x.strip() for x in part.split("=", 1))
        try:
            out[k.replace("-", "_")] = json.loads(v)
        except json.JSONDecodeError:
            out[k.replace("-", "_")] = v
    return out


def _spin(lo: int, hi: int, value: int, tip: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    box.setAccelerated(True)
    return box


class TrainingForm(QWidget):
    familyChanged = Signal(str)

    def __init__(self, families: list[str], runs_root: Path | None = None, parent=None):
        super().__init__(parent)
        self.runs_root = Path(runs_root) if runs_root else runs_dir()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.family = QComboBox()
        self.family.addItems(families)
        form.addRow("Model family", self.family)

        self.data = QLineEdit()
        self.data.setPlaceholderText(f"MNIST digits ({default_mnist().name})")
        self.data.setToolTip("IDX file or folder, a folder of images (class subfolders ok) or an .npz")
        data_row = QHBoxLayout()
        data_row.addWidget(self.data, 1)
        folder_btn = QPushButton("Folder…")
        folder_btn.clicked.connect(self._pick_data_folder)
        file_btn = QPushButton("File…")
        file_btn.clicked.connect(self._pick_data_file)
        data_row.addWidget(folder_btn)
        data_row.addWidget(file_btn)
        form.addRow("Dataset", data_row)

        self.steps = _spin(1, 10_000_000, 2000, "optimisation steps in total")
        self.batch_size = _spin(1, 4096, 128)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.schedule = QComboBox()
        self.schedule.addItems(["constant", "cosine"])
        self.checkpoint_every = _spin(0, 1_000_000, 500, "0: only at the end and on stop")
        self.preview_every = _spin(0, 1_000_000, 100, "0: no previews")
        self.keep = _spin(1, 1000, 3, "numbered checkpoints kept besides last.safetensors")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.threads = _spin(0, 256, 0, "torch threads; 0: all cores but one (the app keeps one)")
        self.model = QLineEdit()
        self.model.setToolTip("family options as KEY=VALUE, comma separated, e.g. latent_dim=16, beta=1")
        for label, w in (("Steps", self.steps), ("Batch size", self.batch_size),
                         ("Learning rate", self.lr), ("LR schedule", self.schedule),
                         ("Checkpoint every", self.checkpoint_every),
                         ("Preview every", self.preview_every), ("Keep checkpoints", self.keep),
                         ("Seed", self.seed), ("Device", self.device), ("Threads", self.threads),
                         ("Model options", self.model)):
            form.addRow(label, w)

        self.out = QLineEdit()
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_btn = QPushButton("Browse…")
        out_btn.clicked.connect(self._pick_out)
        out_row.addWidget(out_btn)
        form.addRow("Output folder", out_row)

        self.family.currentTextChanged.connect(self._family_changed)
        self._family_changed(self.family.currentText())

    # --- values --------------------------------------------------------------------
    def values(self) -> dict:
        """TrainOptions fields. Raises ValueError for unreadable model options."""
        return {
            "family": self.family.currentText(),
            "out": self.out.text().strip(),
            "data": self.data.text().strip() or None,
            "steps": self.steps.value(),
            "batch_size": self.batch_size.value(),
            "lr": self.lr.value(),
            "schedule": self.schedule.currentText(),
            "checkpoint_every": self.checkpoint_every.value(),
            "preview_every": self.preview_every.value(),
            "keep": self.keep.value(),
            "seed": self.seed.value(),
            "device": self.device.currentText(),
            "threads": self.threads.value(),
            "model": parse_model_options(self.model.text()),
        }

    def set_values(self, values: dict) -> None:
        if "family" in values:
            self.family.setCurrentText(values["family"])
        for key in ("steps", "batch_size", "checkpoint_every", "preview_every", "keep", "seed", "threads"):
            if key in values:
                getattr(self, key).setValue(int(values[key]))
        if "lr" in values:
            self.lr.setValue(float(values["lr"]))
        if "schedule" in values:
            self.schedule.setCurrentText(values["schedule"])
        if "device" in values:
            self.device.setCurrentText(values["device"])
        if "data" in values:
            self.data.setText(values["data"] or "")
        if "out" in values:
            self.out.setText(str(values["out"]))
        if "model" in values:
            model = values["model"]
            self.model.setText(model if isinstance(model, str) else
                               ", ".join(f"{k}={json.dumps(v)}" for k, v in model.items()))

    def new_output_folder(self) -> str:
        """A fresh run folder under the runs root, named by family and time."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.runs_root / f"{self.family.currentText()}-{stamp}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        self.out.setText(str(path))
        return str(path)

    def set_running(self, running: bool) -> None:
        for w in self.findChildren(QWidget):
            w.setEnabled(not running)

    # --- slots ---------------------------------------------------------------------
    def _family_changed(self, family: str) -> None:
        d = get_family(family).form_defaults if family in families() else {}
        if d:
            self.steps.setValue(d["steps"])
            self.batch_size.setValue(d["batch_size"])
            self.lr.setValue(d["lr"])
            self.model.setText(d["model"])
        self.new_output_folder()
        self.familyChanged.emit(family)

    def _pick_data_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder", self.data.text() or str(default_mnist()))
        if path:
            self.data.setText(path)

    def _pick_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Dataset file", self.data.text(),
                                              "Datasets (*.npz *idx* *.gz);;All files (*)")
        if path:
            self.data.setText(path)

    def _pick_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", str(self.runs_root))
        if path:
            self.out.setText(path)
