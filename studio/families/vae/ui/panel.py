"""The VAE latent explorer: manifold map, latent sliders, encode by drop, interpolation, scatter.

The panel's widgets bind to one ``VaeExplorerState`` (``studio.families.vae.state``):
gestures change the state, results are drawn from it, and the state decides
what a new checkpoint invalidates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QSplitter, QVBoxLayout
from superqt.utils import qdebounced, qthrottled

from studio.core.checkpoint import CheckpointError, read_metadata
from studio.core.paths import default_mnist
from studio.engine.renderer import RenderResult
from studio.families.vae import analysis
from studio.families.vae import ops as vae_ops
from studio.families.vae.state import MAP_GRID, SPAN, VaeExplorerState
from studio.families.vae.ui.boxes import AxisBoxes, DecodeBox, EncodeBox, InterpolationBox, MapBox
from studio.families.vae.ui.explain import explain
from studio.ui.panel import RenderPanel
from studio.ui.widgets.checkpoint_picker import CheckpointPicker

PAIR_HINT = "Drop or paste an image to encode it"


class VAEPanel(RenderPanel):
    name = "vae"
    title = "VAE explorer"
    families = ("vae",)
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        vae_ops.register(self.bridge, self.bridge.pool)
        analysis.register(self.bridge, self.bridge.pool)
        self.state = VaeExplorerState()
        self._shown = {"decode": False, "manifold": False}
        self._manifold_slice: tuple = ()
        self._scatter_data: tuple | None = None  # (mu, labels) of the last encoded dataset
        self._pending_b = False  # two images dropped: the second one's mean becomes B
        self._rng = np.random.default_rng()
        # The ELBO of the image on screen is measured when the sliders come to rest: during a drag its
        # formulas (drawn by matplotlib, which holds the GIL) would slow the frames that matter.
        self._measure_decoded = qdebounced(self._submit_decoded_elbo, timeout=250)
        # A slider off the map's plane moves the whole slice: 225 decodes. During a drag, redraw the
        # map a few times a second (and once at rest), so the slider's own decode is never queued
        # behind a map per mouse move.
        self._follow_slice = qthrottled(self.render_manifold, timeout=120)
        self._build()
        self.open_initial_checkpoint(self.picker)

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        # Smallest latent first: the 2-D model's map is the whole latent space.
        self.picker = CheckpointPicker("vae", sort_key=lambda p: read_metadata(p)["config"]["latent_dim"])
        self.picker.chosen.connect(self.open_checkpoint)
        self.axes = AxisBoxes()
        self.dim_x, self.dim_y = self.axes.dim_x, self.axes.dim_y
        for box in (self.dim_x, self.dim_y):
            box.valueChanged.connect(self._axes_changed)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker)
        top.addWidget(self.axes)
        top.addWidget(self.info, 1)

        self.map_box = MapBox()
        self.left_tabs, self.manifold = self.map_box, self.map_box.manifold
        self.mnist_button, self.load_data_button = self.map_box.mnist_button, self.map_box.load_data_button
        self.manifold.clicked.connect(self._map_point)
        self.manifold.dragged.connect(self._map_point)
        self.mnist_button.setEnabled(default_mnist().exists())
        self.mnist_button.clicked.connect(lambda: self.encode_dataset(None))
        self.load_data_button.clicked.connect(self._choose_dataset)
        self.map_box.currentChanged.connect(lambda i: self.scatter if i == 1 else None)
        self._scatter = None  # built on first use: pyqtgraph costs start-up time

        self.decode_box = DecodeBox()
        self.decoded, self.sliders = self.decode_box.decoded, self.decode_box.sliders
        self.random_button, self.reset_button = self.decode_box.random_button, self.decode_box.reset_button
        self.save_button = self.decode_box.save_button
        self.sliders.changed.connect(self._sliders_moved)
        self.random_button.clicked.connect(self.random_sample)
        self.reset_button.clicked.connect(self.reset_z)
        self.save_button.clicked.connect(lambda: self.save_view_dialog(self.decoded, "vae_sample.png"))

        self.encode_box = EncodeBox()
        self.pair, self.encoded_label = self.encode_box.pair, self.encode_box.label
        self.interp = InterpolationBox()
        self.set_a, self.set_b, self.mode, self.steps = (self.interp.set_a, self.interp.set_b,
                                                         self.interp.mode, self.interp.steps)
        self.strip = self.interp.strip
        self.set_a.clicked.connect(lambda: self._set_endpoint("a"))
        self.set_b.clicked.connect(lambda: self._set_endpoint("b"))
        self.mode.currentTextChanged.connect(self._interp_options_changed)
        self.steps.valueChanged.connect(self._interp_options_changed)
        self.interp.save_strip_button.clicked.connect(
            lambda: self.save_view_dialog(self.strip, "vae_interpolation.png"))

        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("right")
        right.addWidget(self.encode_box)
        right.addWidget(self.interp)
        right.setSizes([40, 60])  # in proportion: the strip gets room for two rows at 2x
        self.columns = QSplitter(Qt.Orientation.Horizontal)
        self.columns.setObjectName("columns")
        for widget, stretch in ((self.map_box, 5), (self.decode_box, 3), (right, 4)):
            self.columns.addWidget(widget)
            self.columns.setStretchFactor(self.columns.count() - 1, stretch)
        # The map at 1x: 420 px plus its axes and the tab's frame.
        self.map_box.setMinimumWidth(MAP_GRID * 28 + 75)
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(top)
        outer.addWidget(self.columns, 1)
        self.decoded.painted.connect(lambda _: self._painted("decode"))
        self.manifold.painted.connect(lambda _: self._painted("manifold"))
        self.explain.set_title("Explain: what a VAE learns (F1 folds this)")
        self.context.checkpointUpdated.connect(self._checkpoint_updated)  # follow a running training

    def menu_actions(self) -> list[QAction]:
        """The panel's menu in the window: every button, with its keys."""
        items = (("&Random sample", "Ctrl+R", self.random_sample),
                 ("&Reset z to 0", "Ctrl+0", self.reset_z),
                 ("Set interpolation &A = current z", "Ctrl+[", lambda: self._set_endpoint("a")),
                 ("Set interpolation &B = current z", "Ctrl+]", lambda: self._set_endpoint("b")),
                 ("Switch &linear / spherical", "Ctrl+L",
                  lambda: self.mode.setCurrentIndex(1 - self.mode.currentIndex())),
                 ("Show the &map or the scatter", "Ctrl+T",
                  lambda: self.map_box.setCurrentIndex(1 - self.map_box.currentIndex())),
                 ("Encode &MNIST digits", "Ctrl+M", lambda: self.encode_dataset(None)),
                 ("Encode a &dataset…", "Ctrl+Shift+M", self._choose_dataset),
                 ("&Save image…", "Ctrl+S", lambda: self.save_view_dialog(self.decoded, "vae_sample.png")),
                 ("Save &strip…", "Ctrl+Shift+S",
                  lambda: self.save_view_dialog(self.strip, "vae_interpolation.png")))
        actions = []
        for text, keys, slot in items:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            actions.append(action)
        return actions

    @property
    def scatter(self):
        if self._scatter is None:
            from studio.ui.widgets.latent_scatter import LatentScatter

            self._scatter = LatentScatter()
            self._scatter.pointPicked.connect(self._scatter_point)
            self.map_box.scatter_hint.hide()
            self.map_box.scatter_layout.insertWidget(0, self._scatter, 1)
        return self._scatter

    # --- checkpoints ---------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.state.latent_dim

    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.on_error("open", str(exc))
            return
        cfg = meta["config"]
        self.state.open(str(Path(path)), int(cfg["latent_dim"]))
        self.checkpoint = self.state.checkpoint
        metrics = meta.get("metrics", {})
        quality = f", −ELBO {metrics['neg_elbo_nats']:.1f} nats ({metrics.get('eval_split', '')})" \
            if "neg_elbo_nats" in metrics else ""
        self.info.setText(f"{self.latent_dim}-D latent, β = {cfg.get('beta', 1):g}, "
                          f"step {meta.get('step', 0)}{quality}")
        self.strip.set_wrap(int(cfg.get("image_size", 28)))  # rows when that shows the images larger
        self.sliders.set_dims(self.latent_dim)
        self.sliders.set_values(self.state.z, emit=False)  # refresh() below renders the new z
        self._show_dims()
        self._show_usage()
        # What showed the old model is stale now.
        self.strip.clear(self.state.interpolation_hint())
        self.interp.setTitle(self.interp.TITLE)
        self.pair.clear(PAIR_HINT)
        self.pair.set_title("input | reconstruction")
        self.encoded_label.setText("")
        self._scatter_data = None
        if self._scatter is not None:
            self._scatter.set_points(np.zeros((0, 2)), None, self.state.map_dims)
        self.refresh()
        # It reads a dataset: the pictures and sliders come first, so at start-up it waits for the
        # first picture to be on screen (not only for the render thread to be free).
        if self.has_first_image():
            self._measure_usage()
        else:
            self.firstImage.connect(self._measure_usage, Qt.ConnectionType.SingleShotConnection)

    def _measure_usage(self) -> None:
        if self.checkpoint:
            self.submit("usage", analysis.VaeUsage(self.target()), background=True)

    def _checkpoint_updated(self, family: str, path: str) -> None:
        if family != "vae" or not self.checkpoint:
            return
        mine, theirs = Path(self.checkpoint).resolve(), Path(path).resolve()
        # A run opened as a folder shows its newest checkpoint: any file written there counts.
        if theirs == mine or theirs.parent == mine:
            self.refresh()  # the pool reloads a file whose mtime changed

    # --- requests ------------------------------------------------------------------
    def target(self) -> vae_ops.Target:
        return vae_ops.Target(self.checkpoint, self.context.backend, self.context.device)

    def z(self) -> np.ndarray:
        return self.state.z.copy()

    def dims(self) -> tuple[int, int]:
        return self.state.map_dims

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        self.render_decode()
        self.render_manifold()
        self.render_interpolation()

    def render_decode(self) -> None:
        if self.checkpoint:
            self.submit("decode", vae_ops.VaeDecode(self.target(), tuple(self.state.z.tolist())))
            if self.state.encoded is None or not np.allclose(self.state.z, self.state.encoded.mu, atol=0.011):
                self._measure_decoded()

    def render_manifold(self) -> None:
        if self.checkpoint:
            self._manifold_slice = self.state.map_slice()
            self.submit("manifold", vae_ops.VaeManifold(self.target(), tuple(self.state.z.tolist()),
                                                        self.state.map_dims, MAP_GRID, SPAN))

    def render_interpolation(self) -> None:
        s = self.state
        if self.checkpoint and s.interpolation_ready():
            self.submit("interpolate", vae_ops.VaeInterpolate(
                self.target(), tuple(s.z_a.tolist()), tuple(s.z_b.tolist()), s.interp_steps, s.interp_mode))

    def _submit_decoded_elbo(self) -> None:
        if self.checkpoint:
            self.submit("elbo", analysis.VaeElbo(self.target(), z=tuple(self.state.z.tolist())))

    def images_dropped(self, sources: list[str | bytes]) -> None:
        """One image: encode it. Two or more: the first two become interpolation ends A and B."""
        if not self.checkpoint:
            self.on_error("encode", "Open a VAE checkpoint first (File > Open checkpoint).")
            return
        self.encode_source(sources[0])
        self._pending_b = len(sources) > 1
        if self._pending_b:
            self.submit("encode_b", vae_ops.VaeEncodeImage(self.target(), sources[1]))
            extra = f" ({len(sources) - 2} more not used)" if len(sources) > 2 else ""
            self.show_info(f"{len(sources)} images: the first is A, the second B{extra}")

    def image_dropped(self, source: str | bytes) -> None:
        self.images_dropped([source])

    def encode_source(self, source: str | bytes) -> None:
        if self.checkpoint:
            self.submit("encode", vae_ops.VaeEncodeImage(self.target(), source))

    def encode_dataset(self, data: str | None) -> None:
        if self.checkpoint:
            self.show_info("encoding the dataset…")
            self.submit("scatter", vae_ops.VaeEncodeDataset(self.target(), data))

    # --- gestures ------------------------------------------------------------------
    def _sliders_moved(self) -> None:
        self.state.set_z(self.sliders.values())
        self._z_changed()

    def set_z(self, z) -> None:
        """Move z (the sliders follow, then everything that depends on z)."""
        self.sliders.set_values(self.state.set_z(z))

    def _z_changed(self) -> None:
        self.render_decode()
        self.manifold.set_marker(*self.state.map_marker())
        if self._scatter is not None:
            x, y = self.state.map_dims
            self._scatter.set_cursor(float(self.state.z[x]), float(self.state.z[y]))
        # The map is a slice through the other dimensions: redraw it only when that slice moved,
        # not on every move within the plane (225 decodes that would delay the one that matters).
        if self.state.map_slice() != self._manifold_slice:
            self._follow_slice()

    def redraw_owed(self) -> bool:
        """True while the map still shows an older slice and its throttled redraw is yet to fire."""
        return bool(self.checkpoint) and self.state.map_slice() != self._manifold_slice

    def _axes_changed(self) -> None:
        self.state.set_map_dims(self.dim_x.value(), self.dim_y.value())
        self._show_dims()
        self.render_manifold()
        self._plot_scatter()

    def _show_dims(self) -> None:
        s = self.state
        self.axes.show_dims(s.map_dims, s.latent_dim, s.map_axes_editable)
        x, y = s.map_dims
        self.manifold.set_axes(f"z[{x}]", f"z[{y}]", SPAN)
        self.manifold.set_title(f"{MAP_GRID}×{MAP_GRID} decodes over z[{x}], z[{y}]; the rest at the sliders"
                                if s.latent_dim > 2 else f"{MAP_GRID}×{MAP_GRID} decodes over the whole 2-D latent")

    def _show_usage(self) -> None:
        s = self.state
        self.sliders.set_order(s.slider_order())
        self.sliders.set_labels([s.dim_label(i) for i in range(s.latent_dim)],
                                [s.dim_tooltip(i) for i in range(s.latent_dim)],
                                [s.is_inactive(i) for i in range(s.latent_dim)])
        self.decode_box.sliders_title.setText(
            "Latent z, most used first (average KL per dimension)" if s.dim_kl is not None
            else "Latent z, one slider per dimension")
        self._show_explain()

    def _show_explain(self) -> None:
        text, equations = explain(self.state)
        self.explain.set_text(text)
        self.explain.set_equations(equations)

    def _map_point(self, u: float, v: float) -> None:
        self.sliders.set_values(self.state.set_map_point(u, v))

    def _scatter_point(self, x: float, y: float) -> None:
        if -SPAN <= x <= SPAN and -SPAN <= y <= SPAN:
            self.sliders.set_values(self.state.set_plane_point(x, y))

    def random_sample(self) -> None:
        self.set_z(self._rng.standard_normal(self.latent_dim))

    def reset_z(self) -> None:
        self.set_z(np.zeros(self.latent_dim))

    def _set_endpoint(self, which: str, z=None) -> None:
        self.state.set_endpoint(which, z)
        if not self.state.interpolation_ready():
            self.strip.clear(self.state.interpolation_hint())
        self.render_interpolation()

    def _interp_options_changed(self, *_) -> None:
        self.state.interp_mode = self.mode.currentText()
        self.state.interp_steps = int(self.steps.value())
        self.render_interpolation()

    def _choose_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder (IDX files or images)")
        if path:
            self.encode_dataset(path)

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if result.request.target.checkpoint != self.checkpoint:
            return  # the model changed while this was rendering
        if view == "decode":
            self.decoded.set_image(result.image)
            self.decoded.set_caption(f"{result.image.shape[1]}×{result.image.shape[0]} px, shown ×{{zoom}}")
        elif view == "manifold":
            self.manifold.set_image(result.image)
            self.manifold.set_marker(*self.state.map_marker())
        elif view == "interpolate":
            self.strip.set_image(result.image)
            self.interp.setTitle(f"{self.interp.TITLE}: {result.payload.mode}, {result.payload.steps} steps")
        elif view == "encode":
            self._encoded(result)
        elif view == "encode_b" and self._pending_b:
            self._pending_b = False
            self._set_endpoint("b", np.asarray(result.payload.mu, np.float32))
        elif view == "scatter":
            self._scatter_data = (result.payload.mu, result.payload.labels)
            self._plot_scatter()
            self.map_box.setCurrentIndex(1)
        elif view == "usage":
            self.state.set_dim_kl(result.payload.kl, result.payload.source)
            self._show_usage()
            self._show_dims()
            if self.state.map_slice() != self._manifold_slice:
                self.render_manifold()
        elif view == "elbo":
            d: analysis.ElboParts = result.payload
            self.state.set_elbo(d.recon, d.kl, d.mu, d.sigma, d.about)
            self.encoded_label.setText(self.state.encoded_summary())
            self._show_explain()

    def show_render_status(self, view: str, result: RenderResult) -> None:
        if view in ("decode", "manifold", "interpolate", "encode", "scatter"):  # the pictures, not the sums
            super().show_render_status(view, result)

    def _encoded(self, result: RenderResult) -> None:
        d: vae_ops.VaeEncoded = result.payload
        name = Path(str(d.source)).name
        self.pair.set_image(result.image)
        self.pair.set_title(f"{name}: input | reconstruction")
        self.state.set_encoded(name, d.mu, d.sigma)
        self.encoded_label.setText(self.state.encoded_summary())
        if self._pending_b:
            self.state.set_endpoint("a", self.state.encoded.mu)
        pixels = np.asarray(d.input, np.float32) / 255.0
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        # A point's ELBO still waiting from an earlier click must not replace this image's.
        self._measure_decoded.cancel()
        self.submit("elbo", analysis.VaeElbo(self.target(), pixels=np.ascontiguousarray(pixels).tobytes(),
                                             about=name))
        self.sliders.set_values(self.state.z)

    def _plot_scatter(self) -> None:
        if self._scatter_data is None:
            return
        mu, labels = self._scatter_data
        x, y = self.state.map_dims
        self.scatter.set_points(mu[:, [x, y]], labels, (x, y))
        self.scatter.set_cursor(float(self.state.z[x]), float(self.state.z[y]))

    def _painted(self, view: str) -> None:
        self._shown[view] = True
        if all(self._shown.values()):
            self.mark_first_image()
