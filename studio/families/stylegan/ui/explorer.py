"""The GAN latent explorer (DCGAN and StyleGAN): seeds, z sliders, PCA edits of w, truncation,
an interpolation strip (GIF export), saved latents, and projection of a dropped picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSpinBox,
    QTabWidget, QVBoxLayout, QWidget,
)
from superqt import QLabeledDoubleSlider

from studio.core.checkpoint import CheckpointError
from studio.engine.renderer import RenderResult
from studio.families.stylegan import ops
from studio.families.stylegan.ui.explorer_files import LatentFilesMixin
from studio.families.stylegan.ui.projection_box import ProjectionBox
from studio.families.stylegan.ui.widgets import GanCheckpointPicker, LayerRange, projection_store
from studio.ui.panel import RenderPanel
from studio.ui.widgets.image_view import ImageView
from studio.ui.widgets.latent_sliders import LatentSliders

Z_SPAN = 4.0  # z sliders reach 4 sigma: a seed's z is almost never clipped
PCA_COMPONENTS = 8
PCA_SPAN = 5.0  # edits in standard deviations along each direction
MAX_SEED = 2 ** 31 - 1


class GanExplorerPanel(LatentFilesMixin, RenderPanel):
    name = "gan"
    title = "GAN explorer"
    families = ("stylegan", "dcgan")
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool, {ops.GanGenerate, ops.GanInterpolate, ops.GanDirections})
        self.store = projection_store(context)
        self.checkpoint: str | None = None
        self.family = ""
        self.z_dim = 0
        self.z = np.zeros(0, np.float32)
        self.z_edited = False
        self.projected: ops.Code | None = None  # the current picture is a projection
        self.projected_name = ""
        self.code_a: ops.Code | None = None
        self.code_b: ops.Code | None = None
        self.strip_frames: list[np.ndarray] = []
        self._setting = False  # sliders being set by the program, not the user
        self._build()
        self.open_initial()

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = GanCheckpointPicker(self.families)
        self.picker.chosen.connect(self.open_checkpoint)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker)
        top.addWidget(self.info, 1)

        self.generated = ImageView(min_size=260)
        self.code_label = QLabel("")
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("z = the seed's standard normal draw (numpy PCG64)")
        self.seed.valueChanged.connect(self._seed_changed)
        self.prev_button, self.next_button = QPushButton("◀"), QPushButton("▶")
        self.prev_button.setToolTip("previous seed")
        self.next_button.setToolTip("next seed")
        self.prev_button.clicked.connect(lambda: self.seed.setValue(max(0, self.seed.value() - 1)))
        self.next_button.clicked.connect(lambda: self.seed.setValue(min(MAX_SEED, self.seed.value() + 1)))
        self.random_button = QPushButton("Random")
        self.random_button.clicked.connect(
            lambda: self.seed.setValue(int(np.random.default_rng().integers(MAX_SEED))))
        seed_row = QHBoxLayout()
        for w in (QLabel("Seed"), self.seed, self.prev_button, self.next_button, self.random_button):
            seed_row.addWidget(w)
        self.psi = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(-1.0, 1.5)
        self.psi.setSingleStep(0.05)
        self.psi.setValue(1.0)
        self.psi.setToolTip("Truncation psi: w_avg + psi (w - w_avg). 0 gives the average image, 1 none.")
        self.psi.valueChanged.connect(lambda _: self.refresh())
        self.cutoff = QSpinBox()
        self.cutoff.setRange(1, 8)
        self.cutoff.setValue(8)
        self.cutoff.setToolTip("Truncate the layers below this one (8: all); the finer layers keep their w")
        self.cutoff.valueChanged.connect(lambda _: self.refresh())
        self.cutoff_label = QLabel("on layers below")
        trunc_row = QHBoxLayout()
        trunc_row.addWidget(QLabel("ψ"))
        trunc_row.addWidget(self.psi, 1)
        trunc_row.addWidget(self.cutoff_label)
        trunc_row.addWidget(self.cutoff)
        left = QVBoxLayout()
        left.addWidget(self.generated, 1)
        left.addWidget(self.code_label)
        left.addLayout(seed_row)
        left.addLayout(trunc_row)

        self.sliders = LatentSliders(Z_SPAN)
        self.sliders.changed.connect(self._z_changed)
        self.reset_z = QPushButton("Back to the seed's z")
        self.reset_z.clicked.connect(lambda: self._seed_changed(self.seed.value()))
        z_tab = QWidget()
        zl = QVBoxLayout(z_tab)
        zl.addWidget(self.sliders, 1)
        zl.addWidget(self.reset_z)
        self.tabs = QTabWidget()
        self.tabs.addTab(z_tab, "z")
        self.tabs.addTab(self._build_pca(), "PCA of w")

        right = QVBoxLayout()
        right.addWidget(self._build_interpolation(), 1)
        files = QHBoxLayout()
        self.save_button = QPushButton("Save latents…")
        self.save_button.setToolTip("Seed or z (or a projection's w), A and B, truncation and edits, as JSON")
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button = QPushButton("Load latents…")
        self.load_button.clicked.connect(self._load_dialog)
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)
        right.addLayout(files)
        self.projection = ProjectionBox(self.bridge.pool)
        self.projection.projected.connect(self._projected)
        self.projection.failed.connect(self.show_error)
        right.addWidget(self.projection, 1)

        main = QHBoxLayout()
        main.addLayout(left, 4)
        main.addWidget(self.tabs, 3)
        main.addLayout(right, 4)
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(top)
        outer.addLayout(main, 1)
        self.generated.painted.connect(lambda _: self.mark_first_image())
        updated = getattr(self.context, "checkpointUpdated", None)
        if updated is not None:  # follow a running training
            updated.connect(self._checkpoint_updated)

    def _build_pca(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        note = QLabel("Principal directions of w over 10,000 samples (GANSpace), in standard deviations. "
                      "The edit applies to the layers in the range.")
        note.setWordWrap(True)
        layout.addWidget(note)
        grid = QGridLayout()
        self.pca_sliders: list[QLabeledDoubleSlider] = []
        self.pca_labels: list[QLabel] = []
        for k in range(PCA_COMPONENTS):
            label = QLabel(f"PC{k}")
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(-PCA_SPAN, PCA_SPAN)
            slider.setSingleStep(0.1)
            slider.setValue(0.0)
            slider.valueChanged.connect(lambda _: self._edits_changed())
            grid.addWidget(label, k, 0)
            grid.addWidget(slider, k, 1)
            self.pca_labels.append(label)
            self.pca_sliders.append(slider)
        scroll_body = QWidget()
        scroll_body.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidget(scroll_body)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll, 1)
        self.edit_layers = LayerRange(initial=(0, 7))
        self.edit_layers.changed.connect(lambda *_: self._edits_changed())
        layout.addWidget(QLabel("Edit layers"))
        layout.addWidget(self.edit_layers)
        self.reset_edits = QPushButton("Reset edits")
        self.reset_edits.clicked.connect(lambda: self._reset_edits())
        layout.addWidget(self.reset_edits)
        return tab

    def _build_interpolation(self) -> QGroupBox:
        box = QGroupBox("Spherical interpolation between two latents")
        self.set_a = QPushButton("Set A = current")
        self.set_a.clicked.connect(lambda: self._set_endpoint("a"))
        self.set_b = QPushButton("Set B = current")
        self.set_b.clicked.connect(lambda: self._set_endpoint("b"))
        self.steps = QSpinBox()
        self.steps.setRange(3, 16)
        self.steps.setValue(8)
        self.steps.valueChanged.connect(lambda _: self.render_strip())
        self.strip = ImageView(min_size=60)
        self.strip.set_placeholder("set A and B")
        self.gif_button = QPushButton("Export GIF…")
        self.gif_button.setEnabled(False)
        self.gif_button.clicked.connect(self._gif_dialog)
        row = QHBoxLayout()
        for w in (self.set_a, self.set_b, QLabel("steps"), self.steps):
            row.addWidget(w)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.strip, 1)
        layout.addWidget(self.gif_button)
        return box

    # --- checkpoints ---------------------------------------------------------------
    def open_initial(self) -> None:
        initial = next((self.context.checkpoints[f] for f in self.families if f in self.context.checkpoints),
                       None) or self.picker.first()
        if initial:
            self.open_checkpoint(initial)
        else:
            self.show_error("No GAN checkpoint found: open one with File > Open checkpoint, "
                            "or train one in the Training panel.")

    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.checkpoint = str(Path(path))
        self.family = meta["family"]
        cfg = meta["config"]
        self.z_dim = int(cfg.get("z_dim", 64))
        style = self.family == "stylegan"
        self.tabs.setTabVisible(1, style)
        self.cutoff.setVisible(style)
        self.cutoff_label.setVisible(style)
        self.projection.setVisible(style)
        self.sliders.set_dims(self.z_dim)
        what = "StyleGAN, 8 style layers" if style else "DCGAN"
        self.info.setText(f"{what}, z in R^{self.z_dim}, {cfg.get('image_size', '?')} px, "
                          f"step {meta.get('step', 0)}")
        self.code_a = self.code_b = None
        self.strip.set_placeholder("set A and B")
        self.strip_frames = []
        self.gif_button.setEnabled(False)
        self.projected = None
        self._reset_edits(render=False)
        self._seed_changed(self.seed.value())
        if style:
            self.submit("directions", ops.GanDirections(self.target()))

    def _checkpoint_updated(self, family: str, path: str) -> None:
        if family not in self.families or not self.checkpoint:
            return
        mine, theirs = Path(self.checkpoint).resolve(), Path(path).resolve()
        if theirs == mine or theirs.parent == mine:
            self.refresh()

    # --- state -> requests -----------------------------------------------------------
    def target(self) -> ops.Target:
        return ops.Target(self.checkpoint, self.context.backend, self.context.device)

    def current_code(self) -> ops.Code:
        if self.projected is not None:
            return self.projected
        seed = self.seed.value()
        return ops.Code(seed, tuple(float(v) for v in self.z)) if self.z_edited else ops.Code(seed)

    def edits(self) -> tuple[ops.Edit, ...]:
        if self.family != "stylegan":
            return ()
        layers = self.edit_layers.value()
        return tuple(ops.Edit(k, float(s.value()), layers) for k, s in enumerate(self.pca_sliders)
                     if abs(s.value()) > 1e-9)

    def truncation(self) -> tuple[float, int | None]:
        return float(self.psi.value()), (self.cutoff.value() if self.family == "stylegan" else None)

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        self.render_image()
        self.render_strip()

    def render_image(self) -> None:
        if self.checkpoint:
            psi, cutoff = self.truncation()
            self.submit("image", ops.GanGenerate(self.target(), self.current_code(), psi, cutoff, self.edits()))

    def render_strip(self) -> None:
        if self.checkpoint and self.code_a is not None and self.code_b is not None:
            psi, cutoff = self.truncation()
            self.submit("strip", ops.GanInterpolate(self.target(), self.code_a, self.code_b, self.steps.value(),
                                                    psi, cutoff, self.edits()))

    # --- gestures ------------------------------------------------------------------
    def _seed_changed(self, seed: int) -> None:
        if not self.z_dim:
            return
        self.projected = None
        self.z = ops.seed_to_z(seed, self.z_dim)
        self.z_edited = False
        self._setting = True
        try:
            self.sliders.set_values(self.z)
        finally:
            self._setting = False
        self.render_image()

    def _z_changed(self) -> None:
        if self._setting:
            return
        self.projected = None
        self.z = self.sliders.values()
        self.z_edited = True
        self.render_image()

    def _edits_changed(self) -> None:
        if not self._setting:
            self.refresh()

    def _reset_edits(self, render: bool = True) -> None:
        self._setting = True
        try:
            for s in self.pca_sliders:
                s.setValue(0.0)
            self.edit_layers.set_range((0, 7))
        finally:
            self._setting = False
        if render:
            self.refresh()

    def _set_endpoint(self, which: str) -> None:
        if which == "a":
            self.code_a = self.current_code()
        else:
            self.code_b = self.current_code()
        if self.code_a is None or self.code_b is None:
            self.strip.set_placeholder("now set " + ("B" if self.code_b is None else "A"))
        self.render_strip()

    def image_dropped(self, source: str | bytes) -> None:
        if not self.checkpoint:
            self.show_error("Open a StyleGAN checkpoint first: projection finds a picture's w in it.")
            return
        if self.family != "stylegan":
            self.show_error("Projection needs a StyleGAN checkpoint: a DCGAN has no w to optimise.")
            return
        self.projection.start(self.target(), source)

    def _projected(self, code: ops.Code, step: ops.ProjectionStep) -> None:
        self.projected_name = self.store.add(code, self.checkpoint)
        self.projected = code
        self.render_image()

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "image":
            self.generated.set_image(result.image)
            code = result.request.code
            text = f"projection {self.projected_name}" if code.ws is not None else code.label()
            psi, cutoff = result.request.psi, result.request.cutoff
            if psi != 1.0:
                text += f", ψ = {psi:.2f}" + (f" below layer {cutoff}" if cutoff not in (None, 8) else "")
            if result.request.edits:
                text += ", " + ", ".join(f"PC{e.component} {e.amount:+.1f}σ" for e in result.request.edits)
            self.code_label.setText(text)
        elif view == "strip":
            self.strip.set_image(result.image)
            self.strip_frames = list(result.payload.frames)
            self.gif_button.setEnabled(True)
        elif view == "directions":
            for k, label in enumerate(self.pca_labels):
                if k < len(result.payload.explained):
                    label.setText(f"PC{k} ({100 * result.payload.explained[k]:.0f}%)")
