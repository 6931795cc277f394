"""Per-layer noise: switch each layer's noise on and off, fix or redraw it, scale it, and see
where it acts (the per-pixel standard deviation over 32 draws, the paper's stochastic-variation figure)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
    QSpinBox, QVBoxLayout,
)
from superqt import QLabeledDoubleSlider

from studio.core.checkpoint import CheckpointError
from studio.engine.renderer import RenderResult
from studio.families.stylegan import ops
from studio.families.stylegan.ui.widgets import RESOLUTIONS, GanCheckpointPicker
from studio.ui.panel import RenderPanel
from studio.ui.widgets.image_view import ImageView

MODES = (("random per render", "random"), ("fixed", "fixed"))
DRAWS = 32


class NoisePanel(RenderPanel):
    name = "noise"
    title = "Noise"
    families = ("stylegan",)

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool, {ops.GanGenerate, ops.NoiseStdMap})
        self.checkpoint: str | None = None
        self._shown = {"image": False, "std": False}
        self._build()
        self.open_initial_checkpoint(self.picker)

    def _build(self) -> None:
        self.picker = GanCheckpointPicker(self.families)
        self.picker.chosen.connect(self.open_checkpoint)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setValue(1)
        self.seed.setToolTip("The picture's seed (its z and w); the noise has its own seed")
        self.seed.valueChanged.connect(lambda _: self.refresh())
        self.psi = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(0.0, 1.5)
        self.psi.setSingleStep(0.05)
        self.psi.setValue(0.8)
        self.psi.valueChanged.connect(lambda _: self.refresh())
        top = QHBoxLayout()
        for w in (QLabel("Checkpoint"), self.picker, QLabel("Seed"), self.seed, QLabel("ψ")):
            top.addWidget(w)
        top.addWidget(self.psi, 1)

        layers = QGroupBox("Noise inputs, coarse (4x4) to fine (32x32)")
        grid = QGridLayout(layers)
        for col, text in enumerate(("layer", "on", "mode", "strength")):
            grid.addWidget(QLabel(f"<b>{text}</b>"), 0, col)
        self.enabled: list[QCheckBox] = []
        self.modes: list[QComboBox] = []
        self.strengths: list[QDoubleSpinBox] = []
        for i, res in enumerate(RESOLUTIONS):
            on = QCheckBox()
            on.setChecked(True)
            on.setToolTip(f"noise into layer {i} on or off")
            mode = QComboBox()
            for text, value in MODES:
                mode.addItem(text, value)
            mode.setCurrentIndex(1)
            strength = QDoubleSpinBox()
            strength.setRange(0.0, 5.0)
            strength.setSingleStep(0.25)
            strength.setValue(1.0)
            strength.setToolTip("multiplies the noise map (the learned per-channel strengths stay as trained)")
            on.toggled.connect(lambda checked, m=mode, s=strength: (m.setEnabled(checked), s.setEnabled(checked),
                                                                     self._settings_changed()))
            mode.currentIndexChanged.connect(lambda _: self._settings_changed())
            strength.valueChanged.connect(lambda _: self._settings_changed())
            grid.addWidget(QLabel(f"{i}  ({res}x{res})"), i + 1, 0)
            grid.addWidget(on, i + 1, 1)
            grid.addWidget(mode, i + 1, 2)
            grid.addWidget(strength, i + 1, 3)
            self.enabled.append(on)
            self.modes.append(mode)
            self.strengths.append(strength)
        self.noise_seed = QSpinBox()
        self.noise_seed.setRange(0, 2 ** 31 - 1)
        self.noise_seed.setToolTip("Seed of the fixed noise maps")
        self.noise_seed.valueChanged.connect(lambda _: self.render_image())
        self.resample_button = QPushButton("Resample noise")
        self.resample_button.setToolTip("The same w with new noise: only the stochastic details change")
        self.resample_button.clicked.connect(self.resample)
        self.all_on = QPushButton("All on")
        self.all_on.clicked.connect(lambda: self._set_all(True))
        self.all_off = QPushButton("All off")
        self.all_off.clicked.connect(lambda: self._set_all(False))
        row = QHBoxLayout()
        for w in (QLabel("noise seed"), self.noise_seed, self.resample_button, self.all_on, self.all_off):
            row.addWidget(w)
        grid.addLayout(row, len(RESOLUTIONS) + 1, 0, 1, 4)
        grid.setRowStretch(len(RESOLUTIONS) + 2, 1)  # rows stay compact; the space goes below them

        self.image = ImageView(min_size=240)
        self.std_map = ImageView(min_size=240)
        self.std_map.setToolTip(f"Per-pixel standard deviation over {DRAWS} noise draws (bright: noise acts here)")
        self.std_label = QLabel("")
        views = QGridLayout()
        views.addWidget(QLabel("picture"), 0, 0)
        views.addWidget(QLabel(f"std over {DRAWS} noise draws"), 0, 1)
        views.addWidget(self.image, 1, 0)
        views.addWidget(self.std_map, 1, 1)
        views.addWidget(self.std_label, 2, 1)
        main = QHBoxLayout()
        main.addWidget(layers, 2)
        main.addLayout(views, 3)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(main, 1)
        self.image.painted.connect(lambda _: self._painted("image"))
        self.std_map.painted.connect(lambda _: self._painted("std"))

    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.checkpoint = str(Path(path))
        self.show_info(f"StyleGAN, step {meta.get('step', 0)}")
        self.refresh()

    # --- settings -> requests ------------------------------------------------------
    def noise_spec(self) -> ops.NoiseSpec:
        modes = tuple(m.currentData() if on.isChecked() else "off" for on, m in zip(self.enabled, self.modes))
        return ops.NoiseSpec(modes, tuple(float(s.value()) for s in self.strengths), self.noise_seed.value())

    def target(self) -> ops.Target:
        return ops.Target(self.checkpoint, self.context.backend, self.context.device)

    def render_image(self) -> None:
        if self.checkpoint:
            self.submit("image", ops.GanGenerate(self.target(), ops.Code(self.seed.value()),
                                                 float(self.psi.value()), None, (), self.noise_spec()))

    def render_std(self) -> None:
        if self.checkpoint:
            self.submit("std", ops.NoiseStdMap(self.target(), ops.Code(self.seed.value()), float(self.psi.value()),
                                               None, self.noise_spec(), DRAWS))

    def refresh(self) -> None:
        self.render_image()
        self.render_std()

    def _settings_changed(self) -> None:
        self.refresh()

    def resample(self) -> None:
        """New noise, same w: the next seed for the fixed maps; its render redraws the random ones too."""
        self.noise_seed.setValue((self.noise_seed.value() + 1) % (2 ** 31 - 1))

    def _set_all(self, on: bool) -> None:
        for box in self.enabled:
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        for mode, strength in zip(self.modes, self.strengths):
            mode.setEnabled(on)
            strength.setEnabled(on)
        self.refresh()

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "image":
            self.image.set_image(result.image)
        elif view == "std":
            self.std_map.set_image(result.image)
            self.std_label.setText(f"max std {result.payload.max_std:.3f} (of the [0, 1] range), "
                                   f"{result.payload.noisy_layers} noisy layers")

    def _painted(self, view: str) -> None:
        self._shown[view] = True
        if all(self._shown.values()):
            self.mark_first_image()
