"""Style mixing, as in the StyleGAN paper's figure: rows take A's styles, columns give B's on a layer range."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
)
from superqt import QLabeledDoubleSlider

import numpy as np

from studio.core.checkpoint import CheckpointError
from studio.core.imaging import to_uint8
from studio.engine.renderer import RenderResult
from studio.families.stylegan import ops
from studio.families.stylegan.ui.widgets import (
    RESOLUTIONS, GanCheckpointPicker, LayerRange, parse_sources, projection_store,
)
from studio.ui.panel import RenderPanel
from studio.ui.widgets.image_view import ImageView


class CellDialog(QDialog):
    """One cell of the grid, large, beside its two sources."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Style mixing: one cell")
        self.views = {key: ImageView(min_size=220) for key in ("a", "mix", "b")}
        self.labels = {key: QLabel("") for key in self.views}
        grid = QGridLayout(self)
        for col, key in enumerate(("a", "mix", "b")):
            self.labels[key].setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(self.labels[key], 0, col)
            grid.addWidget(self.views[key], 1, col)

    def show_cell(self, a: np.ndarray, mix: np.ndarray, b: np.ndarray, texts: dict[str, str]) -> None:
        for key, image in (("a", a), ("mix", mix), ("b", b)):
            self.views[key].set_image(image)
            self.labels[key].setText(texts[key])
        self.show()
        self.raise_()


class StyleMixingPanel(RenderPanel):
    name = "style-mixing"
    title = "Style mixing"
    families = ("stylegan",)

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool, {ops.StyleMixGrid})
        self.store = projection_store(context)
        self.checkpoint: str | None = None
        self.last_grid: RenderResult | None = None
        self.dialog: CellDialog | None = None
        self._build()
        self.open_initial_checkpoint(self.picker)

    def _build(self) -> None:
        self.picker = GanCheckpointPicker(self.families)
        self.picker.chosen.connect(self.open_checkpoint)
        self.info = QLabel("")
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker)
        top.addWidget(self.info, 1)

        self.rows_edit = QLineEdit("1, 2, 3, 4")
        self.cols_edit = QLineEdit("5, 6, 7, 8")
        for edit, side in ((self.rows_edit, "A (rows)"), (self.cols_edit, "B (columns)")):
            edit.setToolTip(f"Sources {side}: seeds, or projections made in the GAN explorer (p1, p2, …)")
            edit.editingFinished.connect(self.refresh)
        self.new_rows = QPushButton("New A")
        self.new_rows.clicked.connect(lambda: self._random_sources(self.rows_edit))
        self.new_cols = QPushButton("New B")
        self.new_cols.clicked.connect(lambda: self._random_sources(self.cols_edit))
        sources = QHBoxLayout()
        for w in (QLabel("A seeds (rows)"), self.rows_edit, self.new_rows,
                  QLabel("B seeds (columns)"), self.cols_edit, self.new_cols):
            sources.addWidget(w)
        self.projections_label = QLabel("")
        self.store.changed.connect(self._projections_changed)

        self.layers = LayerRange(initial=(0, 3))
        self.layers.changed.connect(lambda *_: self.refresh())
        self.psi = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(0.0, 1.5)
        self.psi.setSingleStep(0.05)
        self.psi.setValue(0.8)
        self.psi.setToolTip("Truncation psi of every source (on all layers)")
        self.psi.valueChanged.connect(lambda _: self.refresh())
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layers from B"))
        controls.addWidget(self.layers, 3)
        controls.addWidget(QLabel("ψ"))
        controls.addWidget(self.psi, 1)

        self.grid = ImageView(min_size=360)
        self.grid.setToolTip("Top row: sources B; left column: sources A. Click a cell to open it large.")
        self.grid.clicked.connect(self._grid_clicked)
        hint = QLabel("Each cell is A's styles with B's on the chosen layers. Coarse layers (4-8 px) carry "
                      "pose and shape, fine ones (32 px) colour and texture.")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(sources)
        layout.addWidget(self.projections_label)
        layout.addLayout(controls)
        layout.addWidget(self.grid, 1)
        layout.addWidget(hint)
        self.grid.painted.connect(lambda _: self.mark_first_image())

    # --- checkpoints ---------------------------------------------------------------
    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.checkpoint = str(Path(path))
        self.info.setText(f"StyleGAN, step {meta.get('step', 0)}")
        self._projections_changed()
        self.refresh()

    def _projections_changed(self) -> None:
        names = list(self.store.for_checkpoint(self.checkpoint)) if self.checkpoint else []
        self.projections_label.setText(f"Projections of this model you can use as sources: {', '.join(names)}"
                                       if names else "")

    # --- requests ------------------------------------------------------------------
    def request(self) -> ops.StyleMixGrid | None:
        projections = self.store.for_checkpoint(self.checkpoint) if self.checkpoint else {}
        try:
            rows = parse_sources(self.rows_edit.text(), projections)
            cols = parse_sources(self.cols_edit.text(), projections)
        except ValueError as exc:
            self.show_error(f"Sources: {exc}")
            return None
        target = ops.Target(self.checkpoint, self.context.backend, self.context.device)
        return ops.StyleMixGrid(target, rows, cols, self.layers.value(), float(self.psi.value()))

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        request = self.request()
        if request is not None:
            self.submit("grid", request)

    def _random_sources(self, edit: QLineEdit) -> None:
        rng = np.random.default_rng()
        edit.setText(", ".join(str(int(s)) for s in rng.integers(0, 100_000, 4)))
        self.refresh()

    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "grid":
            self.last_grid = result
            self.grid.set_image(result.image)

    # --- cells ---------------------------------------------------------------------
    def cell_at(self, u: float, v: float) -> tuple[int, int] | None:
        """(row, column) of the mix under normalised point (u, v); None on the sources or a border."""
        if self.last_grid is None:
            return None
        grid = self.last_grid.payload
        step = grid.cell + grid.pad
        height, width = self.last_grid.image.shape[:2]
        col = int((u * width - grid.pad) // step)
        row = int((v * height - grid.pad) // step)
        if 1 <= row <= grid.rows and 1 <= col <= grid.cols:
            return row - 1, col - 1
        return None

    def _grid_clicked(self, u: float, v: float) -> None:
        cell = self.cell_at(u, v)
        if cell is not None:
            self.open_cell(*cell)

    def open_cell(self, row: int, col: int) -> None:
        grid, request = self.last_grid.payload, self.last_grid.request
        a, b = grid.layers
        texts = {"a": f"A: {_label(request.rows[row], self.store)}",
                 "b": f"B: {_label(request.cols[col], self.store)}",
                 "mix": f"A with B's layers {a}-{b} ({RESOLUTIONS[a]}-{RESOLUTIONS[b]} px)"}
        if self.dialog is None:
            self.dialog = CellDialog(self)
        self.dialog.show_cell(to_uint8(grid.sources_a[row]), to_uint8(grid.mixes[row, col]),
                              to_uint8(grid.sources_b[col]), texts)


def _label(code: ops.Code, store) -> str:
    if code.ws is not None:
        return next((f"projection {n}" for n, c in store.codes.items() if c is code), "projection")
    return code.label()
