"""Step-by-step diffusion playback: DDPM/DDIM sampling, forward process, SDEdit, and why it looks so.

Sampling runs on the background renderer, which records every step and
delivers them in batches (at most ~30 a second); the panel keeps them in a
Qt-free ``DiffusionState`` and lays out pictures only for the step it shows,
so a 1000-step run costs the GUI little more than the model does. The math is
in ``studio.families.diffusion.ops`` and ``studio.core.schedules``; what the
Explain pane says is in ``explain_content``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, QVBoxLayout,
    QWidget,
)

from studio.core.checkpoint import CheckpointError
from studio.data.images import ImageLoadError, load_image, save_png, to_digit_input
from studio.engine.renderer import RenderResult
from studio.families.diffusion import ops
from studio.families.diffusion.state import DiffusionState, StepFrame, finished_frame
from studio.families.diffusion.ui import explain_content as explain
from studio.families.diffusion.ui.explain_box import ExplainBox
from studio.families.diffusion.ui.forward_view import ForwardBox
from studio.families.diffusion.ui.playback import PlaybackControls
from studio.families.diffusion.ui.settings_row import SettingsRow
from studio.families.diffusion.ui.schedule_plot import MIN_INTERVAL_MS as MARKER_INTERVAL_MS, SchedulePlot
from studio.families.diffusion.ui.throttle import Throttle
from studio.families.diffusion.ui.views import ElidedLabel, TitledView
from studio.ui.panel import RenderPanel
from studio.ui.widgets.checkpoint_picker import CheckpointPicker

# Rich text: subscripts drawn as such. "predicted" stands for the hat (a combining hat draws badly in labels).
VIEW_TITLES = {"x_t": "x<sub>t</sub>: the noisy sample", "x0": "predicted x<sub>0</sub>: the model's guess",
               "eps": "predicted noise ε", "noise": "noise added σ<sub>t</sub>·z"}
EXPLAIN_INTERVAL_MS = 250  # the Explain pane's numbers follow playback at most 4 times a second
RUNNING_MARKER_INTERVAL_MS = 200
RUNNING_EXPLAIN_INTERVAL_MS = 1000


def recorded_frames(steps: tuple[ops.DiffusionStep, ...]) -> list[StepFrame]:
    """A delivery's steps as frames: the whole batch quantized to uint8 in one numpy pass per view."""
    if not steps:
        return []
    images = ops.step_images(*(np.stack([getattr(step, key) for step in steps])
                               for key in ("x_t", "x0", "eps", "added")))
    return [StepFrame(step.k, step.n, step.t, step.t_prev, {key: images[key][i] for key in images})
            for i, step in enumerate(steps)]


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
        self.landmarks: explain.ScheduleLandmarks | None = None
        self.input_image: np.ndarray | None = None  # (C, H, W) in [0, 1]
        self._first_after: int | None = None  # the x_t frame whose painting reports the first image
        self._explain_after_paint = False
        self._build()
        self.open_initial_checkpoint(self.picker)

    @property
    def running(self) -> bool:
        return self.state.recording

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        s = self.state
        self.picker = CheckpointPicker("diffusion")
        self.picker.chosen.connect(self.open_checkpoint)
        self.picker.setMinimumWidth(150)  # the settings row must fit the default 1180-pixel window
        self.settings = SettingsRow(s, leading=(("Model", self.picker),))
        for name in ("sampler", "steps", "eta", "variance", "seed", "batch", "sample_button", "cancel_button"):
            setattr(self, name, getattr(self.settings, name))  # the widgets tests and the benchmark drive

        self.cells = {key: TitledView(VIEW_TITLES[key]) for key in ops.VIEWS}
        self.views = {key: cell.view for key, cell in self.cells.items()}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for i, key in enumerate(ops.VIEWS):
            self.views[key].set_placeholder("press Sample")
            grid.addWidget(self.cells[key], 0, i)
        self.views["x_t"].setToolTip("The sample being denoised: pure noise at t = T, the picture at t = 0")
        self.views["x0"].setToolTip("The model's current guess of the clean image (the preview)")
        self.views["eps"].setToolTip("The predicted noise epsilon, shown at ±2 sd around grey")
        self.views["noise"].setToolTip("The random noise sigma_t z added at this step (±2 sd around grey)")

        self.playback = PlaybackControls(s)
        self.export_view = QComboBox()
        for key in ops.VIEWS:
            self.export_view.addItem(ops.VIEW_TITLES[key], key)
        self.export_view.setCurrentIndex(ops.VIEWS.index("x0"))
        self.run_info = ElidedLabel("", width_chars=40)
        self.info = ElidedLabel("")
        self.gif_button = QPushButton("Export GIF…")
        self.strip_button = QPushButton("Export PNG strip…")
        export = QHBoxLayout()
        export.addWidget(QLabel("Export view"))
        export.addWidget(self.export_view)
        export.addWidget(self.gif_button)
        export.addWidget(self.strip_button)
        export.addWidget(self.run_info)
        export.addWidget(self.info, 1)

        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(grid, 1)
        upper_layout.addWidget(self.playback)
        upper_layout.addLayout(export)

        self.schedule_plot = SchedulePlot()
        self.forward_box = ForwardBox()
        self.explain_boxes = {
            "forward": ExplainBox("What xₜ is made of at this t"),
            "puzzles": ExplainBox("Looks broken? It is not"),
            "update": ExplainBox("This step's update"),
        }
        explain_body = QWidget()
        explain_layout = QVBoxLayout(explain_body)
        explain_layout.setContentsMargins(4, 4, 4, 4)
        for box in self.explain_boxes.values():
            explain_layout.addWidget(box)
        explain_layout.addStretch(1)
        self.explain_scroll = QScrollArea()
        self.explain_scroll.setWidgetResizable(True)
        self.explain_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.explain_scroll.setWidget(explain_body)
        self.explain_throttle = Throttle(self._update_explain, EXPLAIN_INTERVAL_MS, self)

        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.schedule_plot)
        lower.addWidget(self.explain_scroll)
        lower.addWidget(self.forward_box)
        lower.setSizes([330, 470, 330])
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(upper)
        self.splitter.addWidget(lower)
        self.splitter.setSizes([360, 310])
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.settings)
        layout.addWidget(self.splitter, 1)

        self.sample_button.clicked.connect(lambda: self.start_sampling())
        self.cancel_button.clicked.connect(self.cancel_sampling)
        self.playback.frameChanged.connect(self.show_frame)
        self.playback.playingChanged.connect(lambda on: on or self._explain_now())
        self.views["x_t"].painted.connect(self._x_t_painted)
        self.rendered.connect(self._maybe_failed)
        self.forward_box.tChanged.connect(self._forward_t_changed)
        self.forward_box.denoiseRequested.connect(self.denoise_from)
        self.gif_button.clicked.connect(self._gif_dialog)
        self.strip_button.clicked.connect(self._strip_dialog)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.playback.toggle)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.playback.step(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.playback.step(1))
        QShortcut(QKeySequence(Qt.Key.Key_Home), self, self.playback.rewind)

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
        self.landmarks = explain.ScheduleLandmarks.of(self.noise_schedule)
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
                          f"schedule, T={T}, trained {meta.get('step', 0)} steps{quality}")
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
                                   image, t_start)

    def start_sampling(self, request: ops.DiffusionSample | None = None) -> None:
        if not self.checkpoint:
            self.show_error("Open a diffusion checkpoint first.")
            return
        request = request or self.request()
        self.state.begin_recording()
        self.playback.sync()
        self.playback.set_label("sampling…")
        start = f" from t = {request.t_start}" if request.t_start else ""
        self.run_info.setText(f"sampling: {request.sampler.upper()}{start}…")
        self.settings.set_running(True)
        self.submit("sample", request)

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

    def _finished(self, message: str) -> None:
        self.state.stop_recording()
        self.settings.set_running(False)
        self.run_info.setText(message)
        self.playback.sync()

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
        self.schedule_plot.set_t(t)
        self.render_forward()

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
        frames = recorded_frames(payload.steps)
        if isinstance(payload, ops.DiffusionDone):
            frames.append(finished_frame(payload.n, payload.final_images))
        moved = self.state.record(frames)
        self.playback.sync()
        if moved:
            self.show_frame(self.state.current)
        if isinstance(payload, ops.DiffusionDone):
            self._finished(f"{payload.n} steps in {payload.total_ms:.0f} ms "
                           f"(model {payload.model_ms:.0f} ms) on {result.backend} {result.device}")
            if self.state.frame().final:
                self._first_after = self.views["x_t"].frame()  # report once this frame is on screen
            else:
                self.mark_first_image()  # the user is looking at another step; it is on screen already

    def show_render_status(self, view: str, result: RenderResult) -> None:
        if result.final:  # once per run, not with each of ~30 deliveries a second
            super().show_render_status(view, result)

    def show_frame(self, index: int) -> None:
        if not 0 <= index < self.state.count():
            return
        frame = self.state.trajectory[index]
        for key, view in self.views.items():
            view.set_image(ops.tile(frame.images[key]))
        self.playback.set_label(frame.label())
        self.schedule_plot.set_t(frame.t)
        running = self.state.recording and not frame.final
        # While the model runs, the marker moves 5 times a second (each move repaints part of the plot)
        # and the explanation once a second (laying out its text takes ~10 ms).
        self.schedule_plot.marker_throttle.interval_ms = RUNNING_MARKER_INTERVAL_MS if running else MARKER_INTERVAL_MS
        self.explain_throttle.interval_ms = RUNNING_EXPLAIN_INTERVAL_MS if running else EXPLAIN_INTERVAL_MS
        if self.state.playing or running:
            self.explain_throttle.request()  # moving: follow at a readable rate
        else:
            # Stopped here: explain this frame, drawn once its picture is on screen (it takes ~10-50 ms).
            self.schedule_plot.marker_throttle.flush()
            self.explain_throttle.cancel()
            self._update_explain(draw=False)
            self._explain_after_paint = True

    def _x_t_painted(self, frame: int) -> None:
        if self._explain_after_paint:
            self._explain_after_paint = False
            QTimer.singleShot(0, self._draw_explain)  # not inside this paint event; before a --screenshot grab
        if self._first_after is not None and frame >= self._first_after:
            self._first_after = None
            self.mark_first_image()  # only a finished sample counts (``--screenshot`` waits for it)

    def _explain_now(self) -> None:
        self.explain_throttle.cancel()
        self._update_explain(drawn_only=False)

    def _draw_explain(self) -> None:
        for box in self.explain_boxes.values():
            box.draw()
        # Lay the new text out now, not at the next turn of the event loop: a --screenshot grab follows.
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)

    def _update_explain(self, drawn_only: bool | None = None, draw: bool = True) -> None:
        frame, settings = self.state.frame(), self.state.recorded_with
        if frame is None or settings is None or self.noise_schedule is None:
            return
        numbers = explain.step_numbers(self.noise_schedule, settings.sampler, settings.eta, settings.variance,
                                       frame.t, frame.t_prev)
        # A new equation costs ~10 ms of mathtext: while the model runs or playback moves, the text's
        # numbers follow and equations with new numbers wait until the picture stops.
        if drawn_only is None:
            drawn_only = self.state.playing or (self.state.recording and not frame.final)
        boxes = self.explain_boxes
        boxes["forward"].set_content(*explain.forward_explanation(numbers), drawn_only, draw)
        boxes["update"].set_content(*explain.update_explanation(numbers), drawn_only, draw)
        boxes["puzzles"].set_content(*explain.puzzles_explanation(numbers, self.landmarks), drawn_only, draw)

    def image_dropped(self, source: str | bytes) -> None:
        self.set_input_image(source)

    # --- export --------------------------------------------------------------------
    def trajectory(self, view: str | None = None) -> list[np.ndarray]:
        """The recorded pictures of one view, laid out now (only exports need them all)."""
        key = view or self.export_view.currentData()
        return [ops.tile(f.images[key]) for f in self.state.trajectory]

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
