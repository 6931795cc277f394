"""Step-by-step diffusion playback: DDPM/DDIM sampling, forward process and SDEdit.

Sampling runs on the background renderer and streams one frame per step;
the panel records every frame so the trajectory can be played, paused,
stepped and scrubbed while (and after) it runs. The math is in
``studio.families.diffusion.ops`` and ``studio.core.schedules``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
    QSpinBox, QVBoxLayout,
)

from studio.data.images import ImageLoadError, load_image, save_png, to_digit_input
from studio.families.diffusion import ops
from studio.engine.renderer import RenderResult
from studio.core.checkpoint import CheckpointError
from studio.ui.panel import RenderPanel
from studio.families.diffusion.ui.forward_view import ForwardBox
from studio.families.diffusion.ui.playback import PlaybackControls
from studio.families.diffusion.ui.schedule_plot import SchedulePlot
from studio.ui.widgets.checkpoint_picker import CheckpointPicker
from studio.ui.widgets.image_view import ImageView


class DiffusionPanel(RenderPanel):
    name = "diffusion"
    title = "Diffusion playback"
    families = ("diffusion",)
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool)
        self.checkpoint: str | None = None
        self.config: dict = {}
        self.frames: list[dict[str, np.ndarray]] = []  # view -> uint8 grid, one per recorded step
        self.meta: list[dict] = []  # k, n, t of each frame
        self.running = False
        self.input_image: np.ndarray | None = None  # (C, H, W) in [0, 1]
        self._build()
        self.open_initial_checkpoint(self.picker)

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = CheckpointPicker("diffusion")
        self.picker.chosen.connect(self.open_checkpoint)
        self.sampler = QComboBox()
        self.sampler.addItem("DDIM", "ddim")
        self.sampler.addItem("DDPM", "ddpm")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(50)
        self.steps.setToolTip("Number of denoising steps (timesteps spaced evenly over 0..T-1)")
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setToolTip("DDIM eta: 0 deterministic, 1 as stochastic as DDPM")
        self.variance = QComboBox()
        self.variance.addItem("fixed small", "fixed_small")
        self.variance.addItem("fixed large", "fixed_large")
        self.variance.setToolTip("DDPM step variance: posterior beta tilde (small) or beta_t (large)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("All randomness (x_T and each step's noise) comes from this seed")
        self.batch = QSpinBox()
        self.batch.setRange(1, ops.MAX_BATCH)
        self.batch.setValue(1)
        self.sample_button = QPushButton("Sample")
        self.sample_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.random_seed = QPushButton("New seed")
        top = QHBoxLayout()
        for label, w in (("Checkpoint", self.picker), ("Sampler", self.sampler), ("Steps", self.steps),
                         ("eta", self.eta), ("Variance", self.variance), ("Seed", self.seed),
                         (None, self.random_seed), ("Batch", self.batch)):
            if label:
                top.addWidget(QLabel(label))
            top.addWidget(w)
        top.addWidget(self.sample_button)
        top.addWidget(self.cancel_button)
        top.addStretch(1)

        self.views: dict[str, ImageView] = {}
        grid = QGridLayout()
        for i, key in enumerate(ops.VIEWS):
            title = QLabel(ops.VIEW_TITLES[key])
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view = ImageView(min_size=200)
            view.set_placeholder("press Sample")
            self.views[key] = view
            grid.addWidget(title, 0, i)
            grid.addWidget(view, 1, i)
        self.views["x0"].setToolTip("The model's current guess of the clean image (the preview)")
        self.views["eps"].setToolTip("The predicted noise epsilon, shown at ±2 sd around grey")
        self.views["noise"].setToolTip("The random noise sigma_t z added at this step (±2 sd around grey)")

        self.playback = PlaybackControls()
        self.schedule = SchedulePlot()
        self.forward_box = ForwardBox()
        self.export_view = QComboBox()
        for key in ops.VIEWS:
            self.export_view.addItem(ops.VIEW_TITLES[key], key)
        self.export_view.setCurrentIndex(ops.VIEWS.index("x0"))
        self.run_info = QLabel("")
        self.gif_button = QPushButton("Export GIF…")
        self.strip_button = QPushButton("Export PNG strip…")
        export = QHBoxLayout()
        export.addWidget(QLabel("Export view"))
        export.addWidget(self.export_view)
        export.addWidget(self.gif_button)
        export.addWidget(self.strip_button)
        export.addWidget(self.run_info, 1)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.schedule.setMaximumHeight(260)
        for view in (self.forward_box.source, self.forward_box.noised):
            view.setMaximumSize(220, 220)

        bottom = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.schedule, 1)
        left.addLayout(export)
        left.addWidget(self.info)
        bottom.addLayout(left, 3)
        bottom.addWidget(self.forward_box, 2)

        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(grid, 5)
        layout.addWidget(self.playback)
        layout.addLayout(bottom, 3)

        self.sampler.currentIndexChanged.connect(self._sampler_changed)
        self.sample_button.clicked.connect(self.start_sampling)
        self.cancel_button.clicked.connect(self.cancel_sampling)
        self.random_seed.clicked.connect(lambda: self.seed.setValue(int(np.random.default_rng().integers(2 ** 31 - 1))))
        self.playback.frameChanged.connect(self.show_frame)
        self.rendered.connect(self._maybe_failed)
        self.forward_box.tChanged.connect(self._forward_t_changed)
        self.forward_box.denoiseRequested.connect(self.denoise_from)
        self.gif_button.clicked.connect(self._gif_dialog)
        self.strip_button.clicked.connect(self._strip_dialog)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self._toggle_play)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.playback.step(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.playback.step(1))
        self._sampler_changed()

    def _sampler_changed(self) -> None:
        ddim = self.sampler.currentData() == "ddim"
        self.eta.setEnabled(ddim)
        self.variance.setEnabled(not ddim)
        if not ddim and self.steps.value() == 50:
            self.steps.setValue(1000)
        elif ddim and self.steps.value() == 1000:
            self.steps.setValue(50)

    def _toggle_play(self) -> None:
        self.playback.pause() if self.playback.is_playing() else self.playback.play()

    # --- checkpoint ----------------------------------------------------------------
    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.checkpoint = str(Path(path))
        self.config = dict(meta.get("config", {}))
        try:
            curves = ops.schedule_curves(self.config)
        except ValueError as exc:
            self.show_error(f"{path}: {exc}")
            return
        T = int(curves["t"][-1])
        self.steps.setMaximum(T)
        self.forward_box.set_max_t(T)
        self.schedule.set_curves(curves["t"], curves["alpha_bar"], curves["snr"])
        m = meta.get("metrics", {})
        quality = f", L_simple {m['l_simple']:.4f} ({m.get('eval_split', '')})" if "l_simple" in m else ""
        self.info.setText(f"{self.config.get('image_size', '?')}px UNet, base {self.config.get('base', '?')}, "
                          f"{self.config.get('schedule', 'linear')} schedule, T={T}, "
                          f"step {meta.get('step', 0)}{quality}")
        self.start_sampling()  # a new model: record a new trajectory
        if self.input_image is not None:
            self.render_forward()

    def target(self) -> ops.Target:
        return ops.Target(self.checkpoint, self.context.backend, self.context.device)

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        if not self.frames and not self.running:
            self.start_sampling()
        if self.input_image is not None:
            self.render_forward()

    # --- sampling ------------------------------------------------------------------
    def request(self, image: np.ndarray | None = None, t_start: int | None = None) -> ops.DiffusionSample:
        return ops.DiffusionSample(
            self.target(), self.sampler.currentData(), self.steps.value(), float(self.eta.value()),
            self.seed.value(), self.batch.value(), self.variance.currentData(), image, t_start)

    def start_sampling(self, request: ops.DiffusionSample | None = None) -> None:
        if not self.checkpoint:
            self.show_error("Open a diffusion checkpoint first.")
            return
        self.frames.clear()
        self.meta.clear()
        self.playback.clear()
        self.running = True
        self.sample_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.submit("sample", request or self.request())

    def denoise_from(self, t: int) -> None:
        if self.input_image is None:
            self.show_error("Drop an image on the panel first.")
            return
        self.start_sampling(self.request(self.input_image, int(t)))

    def cancel_sampling(self) -> None:
        """Stop the running sample at the next step boundary; the recorded steps stay."""
        self.cancel("sample")
        self._finished(f"cancelled after {len(self.frames)} steps")

    def _maybe_failed(self, result: RenderResult) -> None:
        if result.error and result.channel == f"{self.name}.sample":
            self.running = False
            self.sample_button.setEnabled(True)
            self.cancel_button.setEnabled(False)

    def _finished(self, message: str) -> None:
        self.running = False
        self.sample_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.run_info.setText(message)

    # --- forward process -------------------------------------------------------------
    def set_input_image(self, source) -> bool:
        """Load a dropped image (path or bytes) as the model's input; errors go to the status line."""
        size = int(self.config.get("image_size", 28))
        channels = int(self.config.get("channels", 1))
        try:
            pixels = load_image(source, size=(size, size), channels=channels)
        except ImageLoadError as exc:
            self.show_error(str(exc))
            return False
        if channels == 1:
            pixels = to_digit_input(pixels)[None]
        else:
            pixels = pixels.transpose(2, 0, 1)
        self.input_image = np.ascontiguousarray(pixels, dtype=np.float32)
        self.forward_box.source.set_image(ops.image_grid(self.input_image[None], cols=1, pad=0))
        self.forward_box.set_has_image(True)
        self.render_forward()
        return True

    def render_forward(self) -> None:
        if self.input_image is None or not self.checkpoint:
            return
        self.submit("forward", ops.DiffusionForward(self.target(), self.input_image, self.forward_box.t(),
                                                    self.seed.value()))

    def _forward_t_changed(self, t: int) -> None:
        self.schedule.set_t(t)
        self.render_forward()

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "forward":
            noised: ops.ForwardNoised = result.payload
            self.forward_box.noised.set_image(result.image)
            self.forward_box.info.setText(f"t = {noised.t}, alpha_bar = {noised.alpha_bar:.4g}")
            return
        if view != "sample":
            return
        step = result.payload
        if isinstance(step, ops.DiffusionFrame):
            self.frames.append(step.grids)
            self.meta.append({"k": step.k, "n": step.n, "t": step.t})
            self.playback.set_count(len(self.frames))
            if len(self.frames) == 1:
                self.show_frame(0)
        if isinstance(step, ops.DiffusionDone):
            # The last frame: the finished sample at t = 0.
            flat = np.full_like(step.final, 128)
            self.frames.append({"x_t": step.final, "x0": step.final, "eps": flat, "noise": flat})
            self.meta.append({"k": step.n, "n": step.n, "t": 0})
            self.playback.set_count(len(self.frames))
            self._finished(f"{step.n} steps in {step.total_ms:.0f} ms "
                           f"(model {step.model_ms:.0f} ms) on {result.backend} {result.device}")

    def show_frame(self, index: int) -> None:
        if not 0 <= index < len(self.frames):
            return
        frame, meta = self.frames[index], self.meta[index]
        for key, view in self.views.items():
            view.set_image(frame[key])
        if meta["k"] >= meta["n"]:
            self.playback.set_label(f"done: {meta['n']} steps, t = 0")
        else:
            self.playback.set_label(f"step {meta['k'] + 1} of {meta['n']}, t = {meta['t']}")
        self.schedule.set_t(meta["t"])
        self.mark_first_image()

    def image_dropped(self, source: str | bytes) -> None:
        self.set_input_image(source)

    # --- export --------------------------------------------------------------------
    def trajectory(self, view: str | None = None) -> list[np.ndarray]:
        key = view or self.export_view.currentData()
        return [f[key] for f in self.frames]

    def export_gif(self, path: str, view: str | None = None) -> Path | None:
        try:
            written = ops.export_gif(self.trajectory(view), path, fps=self.playback.speed.value())
        except (ValueError, OSError) as exc:
            self.show_error(f"{path}: cannot export ({exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def export_strip(self, path: str, view: str | None = None, count: int = 10) -> Path | None:
        try:
            written = save_png(ops.png_strip(self.trajectory(view), count), path)
        except (ValueError, OSError) as exc:
            self.show_error(f"{path}: cannot export ({exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def _gif_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export GIF", "trajectory.gif", "GIF images (*.gif)")
        if path:
            self.export_gif(path)

    def _strip_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG strip", "trajectory.png", "PNG images (*.png)")
        if path:
            self.export_strip(path)


def measure_playback_fps(checkpoint: str, seconds: float = 2.0) -> float:
    """Frames per second the real panel paints playing a recorded trajectory (benchmark; offscreen)."""
    import os
    import time

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from studio.ui.context import AppContext

    app = QApplication.instance() or QApplication([])
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = checkpoint
    panel = DiffusionPanel(ctx)
    panel.resize(1200, 800)
    panel.show()
    deadline = time.perf_counter() + 60
    while (panel.running or not panel.frames) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
    if panel.running:
        raise RuntimeError("the panel's first sample did not finish within 60 s")
    painted: list[float] = []
    panel.views["x0"].painted.connect(lambda frame: painted.append(time.perf_counter()))
    panel.playback.loop.setChecked(True)
    panel.playback.set_index(0)
    panel.playback.play()
    panel.playback.set_interval_ms(0)  # as fast as the event loop paints
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        app.processEvents()
    elapsed = time.perf_counter() - t0
    panel.playback.pause()
    ctx.bridge.shutdown()
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return len(painted) / elapsed
