"""Step-by-step diffusion playback: DDPM/DDIM sampling, forward process, SDEdit, and why it looks so.

Sampling runs on the background renderer, which records every step and
delivers them in batches (at most ``RECORDING_FPS`` a second); the panel
keeps them in a Qt-free ``DiffusionState`` and paints only the step it
shows, so a 1000-step run costs the GUI little more than the model does.
The widgets are laid out by ``DiffusionView``; the Explain pane follows the
step shown through ``StepExplainer``. The math is in
``studio.families.diffusion.ops`` and ``studio.core.schedules``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QVBoxLayout

from studio.core.checkpoint import CheckpointError
from studio.data.images import ImageLoadError, load_image, save_png, to_digit_input
from studio.engine.renderer import RenderResult
from studio.families.diffusion import ops
from studio.families.diffusion.state import DiffusionState, finished_frame
from studio.families.diffusion.ui.layout import DiffusionView
from studio.families.diffusion.ui.step_explainer import StepExplainer
from studio.ui.panel import RenderPanel

RECORDING_FPS = 20  # deliveries (and so paints) a second while the model runs: smooth, and cheap


def trained_steps(meta: dict) -> str:
    """"9001", or "9001 + 4000" for a fine-tune of a 9001-step checkpoint."""
    init = (meta.get("extra") or {}).get("init")
    step = int(meta.get("step", 0))
    if isinstance(init, dict) and isinstance(init.get("step"), int):
        return f"{init['step']} + {step}"
    return str(step)


class DiffusionPanel(RenderPanel):
    name = "diffusion"
    title = "Diffusion playback"
    families = ("diffusion",)
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        ops.register(self.bridge, self.bridge.pool)
        self.state = DiffusionState()
        self.checkpoint: str | None = None
        self.config: dict = {}
        self.noise_schedule = None
        self.input_image: np.ndarray | None = None  # (C, H, W) in [0, 1]
        self._first_after: int | None = None  # the x_t frame whose painting reports the first image
        self._shown = -1  # the trajectory index whose pictures are on screen
        self._build()
        self.explainer = StepExplainer(self.explain, self.state, self)
        self.explain.set_stacked(True)
        self.open_initial_checkpoint(self.picker)

    @property
    def running(self) -> bool:
        return self.state.recording

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        self.view = v = DiffusionView(self.state)
        # The widgets tests and the benchmark drive, by their names.
        self.picker, self.settings, self.cells, self.views = v.picker, v.settings, v.cells, v.views
        for name in ("sampler", "steps", "eta", "variance", "spacing", "clipped_eps", "seed", "batch",
                     "sample_button", "cancel_button"):
            setattr(self, name, getattr(v.settings, name))
        for name in ("playback", "export_view", "run_info", "info", "schedule_plot", "forward_box", "splitter"):
            setattr(self, name, getattr(v, name))
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(v)

        self.picker.chosen.connect(self.open_checkpoint)
        self.sample_button.clicked.connect(lambda: self.start_sampling())
        self.cancel_button.clicked.connect(self.cancel_sampling)
        self.playback.frameChanged.connect(self.show_frame)
        self.playback.playingChanged.connect(lambda on: on or self.explainer.stopped())
        self.views["x_t"].painted.connect(self._x_t_painted)
        self.rendered.connect(self._maybe_failed)
        self.forward_box.tChanged.connect(self._forward_t_changed)
        self.forward_box.denoiseRequested.connect(self.denoise_from)
        v.gif_button.clicked.connect(lambda: self._export_dialog("GIF", "trajectory.gif", self.export_gif))
        v.strip_button.clicked.connect(lambda: self._export_dialog("PNG strip", "trajectory.png", self.export_strip))
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.playback.toggle)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.playback.step(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.playback.step(1))
        QShortcut(QKeySequence(Qt.Key.Key_Home), self, self.playback.rewind)

    def place_explain(self, pane) -> None:
        # In the column between the schedule and the forward process, scrolling on its own:
        # a longer explanation never moves the pictures.
        self.view.explain_scroll.setWidget(pane)

    # --- checkpoint ----------------------------------------------------------------
    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        config = dict(meta.get("config", {}))
        try:
            curves = ops.schedule_curves(config)
        except ValueError as exc:
            self.show_error(f"{path}: {exc}")
            return
        self.checkpoint, self.config = str(Path(path)), config
        self.noise_schedule = ops.schedule_for(config)
        self.explainer.set_schedule(self.noise_schedule)
        T = int(curves["t"][-1])
        self.steps.setMaximum(T)
        self.forward_box.set_max_t(T)
        size = int(config.get("image_size", 28))
        for view in self.views.values():
            view.set_native_size(size + 2, size + 2)  # one sample with the grid's 1-pixel border
        for view in (self.forward_box.source, self.forward_box.noised):
            view.set_native_size(size, size)
        self.schedule_plot.set_curves(curves["t"], curves["alpha_bar"], curves["snr"])
        m = meta.get("metrics", {})
        quality = f", L_simple {m['l_simple']:.4f} ({m.get('eval_split', '')})" if "l_simple" in m else ""
        self.info.setText(f"{size}px UNet, base {config.get('base', '?')}, {config.get('schedule', 'linear')} "
                          f"schedule, T={T}, trained {trained_steps(meta)} steps{quality}")
        self.start_sampling()  # a new model: record a new trajectory
        if self.input_image is not None:
            self.render_forward()

    def target(self) -> ops.Target:
        return ops.Target(self.checkpoint, self.context.backend, self.context.device)

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        if not self.state.trajectory and not self.state.recording:
            self.start_sampling()
        if self.input_image is not None:
            self.render_forward()

    # --- sampling ------------------------------------------------------------------
    def request(self, image: np.ndarray | None = None, t_start: int | None = None) -> ops.DiffusionSample:
        s = self.state.settings()
        return ops.DiffusionSample(self.target(), s.sampler, s.steps, s.eta, s.seed, s.batch, s.variance,
                                   image, t_start, frame_interval_s=1.0 / RECORDING_FPS, spacing=s.spacing,
                                   use_clipped_model_output=s.clipped_eps)

    def start_sampling(self, request: ops.DiffusionSample | None = None) -> None:
        if not self.checkpoint:
            self.show_error("Open a diffusion checkpoint first.")
            return
        request = request or self.request()
        self.state.begin_recording()
        self.submit("sample", request)  # first: the model starts while the widgets below catch up
        self._shown = -1
        self.playback.sync()
        self.playback.set_label("sampling…")
        start = f" from t = {request.t_start}" if request.t_start else ""
        self.run_info.setText(f"sampling: {request.sampler.upper()}{start}…")
        self.settings.set_running(True)
        self.explainer.sampling(request.sampler, request.steps)

    def denoise_from(self, t: int) -> None:
        if self.input_image is None:
            self.show_error("Drop an image on the panel first.")
            return
        self.start_sampling(self.request(self.input_image, int(t)))

    def cancel_sampling(self) -> None:
        """Stop the running sample at its next delivery; the recorded steps stay."""
        self.cancel("sample")
        self._finished(f"cancelled after {self.state.count()} steps")

    def _maybe_failed(self, result: RenderResult) -> None:
        if result.error and result.channel == f"{self.name}.sample":
            self._finished("sampling failed")

    def _finished(self, message: str, explain_now: bool = True) -> None:
        self.state.stop_recording()
        self.settings.set_running(False)
        self.run_info.setText(message)
        self.playback.sync()
        if explain_now:  # else the finished sample is explained once it is painted
            self.explainer.stopped()

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "forward":
            noised: ops.ForwardNoised = result.payload
            self.forward_box.noised.set_image(result.image)
            self.forward_box.info.setText(f"t = {noised.t}, ᾱ = {noised.alpha_bar:.4g}")
            return
        if view != "sample":
            return
        payload = result.payload
        frames = ops.step_frames(payload.steps)
        done = isinstance(payload, ops.DiffusionDone)
        if done:
            frames.append(finished_frame(payload.n, payload.final_images))
        self.state.record(frames)
        if done:
            self.state.stop_recording()  # the last frame is final: it is explained once painted
        self.playback.sync()
        moved = self.state.current != self._shown
        if moved:
            self.show_frame(self.state.current)
        if done:
            self._finished(f"{payload.n} steps in {payload.total_ms:.0f} ms "
                           f"(model {payload.model_ms:.0f} ms) on {result.backend} {result.device}",
                           explain_now=not moved)  # a new picture: explained once painted
            if self.state.frame().final:
                self._first_after = self.views["x_t"].frame()  # report once this frame is on screen
            else:
                self.mark_first_image()  # the user is looking at another step; it is on screen already

    def show_render_status(self, view: str, result: RenderResult) -> None:
        if result.final:  # once per run, not with each of ~20 deliveries a second
            super().show_render_status(view, result)

    def show_frame(self, index: int) -> None:
        if not 0 <= index < self.state.count():
            return
        self._shown = index
        frame = self.state.trajectory[index]
        for key, view in self.views.items():
            view.set_image(ops.tile(frame.images[key]))
        self.playback.set_label(frame.label())
        stopped = not self.state.playing and not self.state.recording
        # A step the user stopped on: the marker at once; while the model runs: slowly.
        self.schedule_plot.set_t(frame.t, now=stopped, slowly=self.state.recording and not frame.final)
        self.explainer.frame_shown()

    def _x_t_painted(self, frame: int) -> None:
        self.explainer.painted()
        if self._first_after is not None and frame >= self._first_after:
            self._first_after = None
            self.mark_first_image()  # only a finished sample counts (``--screenshot`` waits for it)

    # --- forward process -------------------------------------------------------------
    def image_dropped(self, source: str | bytes) -> None:
        self.set_input_image(source)

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
        self.schedule_plot.set_t(t, now=True)
        self.render_forward()

    # --- export --------------------------------------------------------------------
    def trajectory(self, view: str | None = None) -> list[np.ndarray]:
        """The recorded pictures of one view, laid out now (only exports need them all)."""
        key = view or self.export_view.currentData()
        return [ops.tile(f.images[key]) for f in self.state.trajectory]

    def export_gif(self, path: str, view: str | None = None) -> Path | None:
        return self._export(path, lambda: ops.export_gif(self.trajectory(view), path, fps=self.playback.speed.value()))

    def export_strip(self, path: str, view: str | None = None, count: int = 10) -> Path | None:
        return self._export(path, lambda: save_png(ops.png_strip(self.trajectory(view), count), path))

    def _export(self, path: str, write) -> Path | None:
        try:
            written = write()
        except (ValueError, OSError) as exc:
            self.show_error(f"{path}: cannot export ({exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def _export_dialog(self, what: str, default_name: str, export) -> None:
        pattern = "GIF images (*.gif)" if what == "GIF" else "PNG images (*.png)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {what}", default_name, pattern)
        if path:
            export(path)

