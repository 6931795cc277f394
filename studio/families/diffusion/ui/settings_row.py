"""The sampler settings row: sampler, steps, spacing, eta, clipped noise, variance, seed, batch,
Sample and Cancel.

Each widget writes its value into the panel's ``DiffusionState`` as it changes;
the state decides what follows (switching sampler moves default step counts).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from studio.families.diffusion.ops import MAX_BATCH
from studio.families.diffusion.state import DiffusionState


class SettingsRow(QWidget):
    def __init__(self, state: DiffusionState, leading: tuple[tuple[str, QWidget], ...] = (), parent=None):
        super().__init__(parent)
        self.state = state
        self.sampler = QComboBox()
        self.sampler.addItem("DDIM", "ddim")
        self.sampler.addItem("DDPM", "ddpm")
        self.sampler.setCurrentIndex(self.sampler.findData(state.sampler))
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(state.steps)
        self.steps.setToolTip("Number of denoising steps (timesteps spaced evenly over 0..T-1)")
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setValue(state.eta)
        self.eta.setToolTip("DDIM eta: 0 deterministic, 1 as stochastic as DDPM")
        self.spacing = QComboBox()
        for name in ("leading", "trailing", "linspace"):
            self.spacing.addItem(name, name)
        self.spacing.setCurrentIndex(self.spacing.findData(state.spacing))
        self.spacing.setToolTip("Where the steps fall in 0..T-1: leading starts at T - T/steps and ends at 0; "
                                "trailing starts at T-1, the pure-noise end (Lin et al. 2024); "
                                "linspace spreads them evenly from T-1 to 0")
        self.clipped_eps = QCheckBox("clip ε")
        self.clipped_eps.setChecked(state.clipped_eps)
        self.clipped_eps.setToolTip("DDIM: after x0 is clipped to [-1, 1], step along the noise that the clipped x0 "
                                    "implies, not the raw prediction (diffusers' use_clipped_model_output). "
                                    "At few steps this keeps the deterministic path on the digits")
        self.variance = QComboBox()
        self.variance.addItem("fixed small", "fixed_small")
        self.variance.addItem("fixed large", "fixed_large")
        self.variance.setToolTip("DDPM step variance: posterior beta tilde (small) or beta_t (large)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setValue(state.seed)
        self.seed.setToolTip("All randomness (x_T and each step's noise) comes from this seed")
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setValue(state.batch)
        self.batch.setToolTip("How many samples at once (shown as a grid)")
        self.sample_button = QPushButton("Sample")
        self.sample_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.random_seed = QPushButton("New seed")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for label, w in leading + (("Sampler", self.sampler), ("Steps", self.steps), ("Spacing", self.spacing),
                                   ("η", self.eta), ("", self.clipped_eps), ("Variance", self.variance),
                                   ("Seed", self.seed), ("", self.random_seed),
                                   ("Batch", self.batch), ("", self.sample_button), ("", self.cancel_button)):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(w)
        row.addStretch(1)
        self.sampler.currentIndexChanged.connect(self._sampler_changed)
        self.steps.valueChanged.connect(lambda v: setattr(state, "steps", int(v)))
        self.eta.valueChanged.connect(lambda v: setattr(state, "eta", float(v)))
        self.variance.currentIndexChanged.connect(lambda _: setattr(state, "variance", self.variance.currentData()))
        self.spacing.currentIndexChanged.connect(lambda _: setattr(state, "spacing", self.spacing.currentData()))
        self.clipped_eps.toggled.connect(lambda on: setattr(state, "clipped_eps", bool(on)))
        self.seed.valueChanged.connect(lambda v: setattr(state, "seed", int(v)))
        self.batch.valueChanged.connect(lambda v: setattr(state, "batch", int(v)))
        self.random_seed.clicked.connect(lambda: self.seed.setValue(int(np.random.default_rng().integers(2 ** 31 - 1))))
        self._sampler_changed()

    def set_running(self, running: bool) -> None:
        self.sample_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _sampler_changed(self) -> None:
        self.state.set_sampler(self.sampler.currentData())
        ddim = self.state.sampler == "ddim"
        self.eta.setEnabled(ddim)
        self.clipped_eps.setEnabled(ddim)
        self.variance.setEnabled(not ddim)
        self.steps.setValue(self.state.steps)
