"""The VAE latent explorer: manifold map, latent sliders, encode by drop, interpolation, scatter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
    QTabWidget, QVBoxLayout, QWidget,
)

from studio.core.paths import default_mnist
from studio.data.images import save_png
from studio.families.vae import ops as vae_ops
from studio.engine.latent import plane_point, plane_uv
from studio.engine.renderer import RenderResult
from studio.core.checkpoint import CheckpointError, read_metadata
from studio.ui.panel import Panel
from studio.ui.widgets.checkpoint_picker import CheckpointPicker
from studio.ui.widgets.image_view import ImageView
from studio.ui.widgets.latent_sliders import LatentSliders

SPAN = 3.0


class VAEPanel(Panel):
    name = "vae"
    title = "VAE explorer"
    families = ("vae",)
    accepts_images = True

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        vae_ops.register(self.bridge, self.bridge.pool)
        self.checkpoint: str | None = None
        self.latent_dim = 0
        self.z_a: np.ndarray | None = None
        self.z_b: np.ndarray | None = None
        self._shown = {"decode": False, "manifold": False}
        self._manifold_slice: tuple = ()
        self._rng = np.random.default_rng()
        self._build()
        self.open_initial_checkpoint(self.picker)

    # --- layout --------------------------------------------------------------------
    def _build(self) -> None:
        # Smallest latent first: the 2-D model's map is the whole latent space.
        self.picker = CheckpointPicker("vae", sort_key=lambda p: read_metadata(p)["config"]["latent_dim"])
        self.picker.chosen.connect(self.open_checkpoint)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.dim_x, self.dim_y = QSpinBox(), QSpinBox()
        for box, value in ((self.dim_x, 0), (self.dim_y, 1)):
            box.setValue(value)
            box.setToolTip("latent dimension shown on this axis of the map")
            box.valueChanged.connect(self._plane_changed)
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker)
        top.addWidget(QLabel("map x"))
        top.addWidget(self.dim_x)
        top.addWidget(QLabel("y"))
        top.addWidget(self.dim_y)
        top.addWidget(self.info, 1)

        self.manifold = ImageView(min_size=300)
        self.manifold.setToolTip("Decoded images over the latent plane (±3 sigma). Click or drag to decode a point.")
        self.manifold.clicked.connect(self._map_point)
        self.manifold.dragged.connect(self._map_point)
        self._scatter = None  # built on first use: pyqtgraph costs start-up time
        self.load_data_button = QPushButton("Encode dataset…")
        self.load_data_button.setToolTip("Encode a dataset (IDX, image folder, .npz) and plot its means")
        self.load_data_button.clicked.connect(self._choose_dataset)
        self.mnist_button = QPushButton("Encode MNIST digits")
        self.mnist_button.setEnabled(default_mnist().exists())
        self.mnist_button.clicked.connect(lambda: self.encode_dataset(None))
        scatter_box = QWidget()
        self._scatter_layout = sl = QVBoxLayout(scatter_box)
        row = QHBoxLayout()
        row.addWidget(self.mnist_button)
        row.addWidget(self.load_data_button)
        sl.addLayout(row)
        self.left_tabs = QTabWidget()
        self.left_tabs.addTab(self.manifold, "Manifold map")
        self.left_tabs.addTab(scatter_box, "Dataset scatter")
        self.left_tabs.currentChanged.connect(lambda i: self.scatter if i == 1 else None)

        self.decoded = ImageView(min_size=200)
        self.sliders = LatentSliders(SPAN)
        self.sliders.changed.connect(self._z_changed)
        self.random_button = QPushButton("Random sample")
        self.random_button.clicked.connect(self.random_sample)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(lambda: self.sliders.set_values(np.zeros(self.latent_dim)))
        self.save_button = QPushButton("Save image…")
        self.save_button.clicked.connect(lambda: self._save_dialog(self.decoded, "vae_sample.png"))
        buttons = QHBoxLayout()
        for b in (self.random_button, self.reset_button, self.save_button):
            buttons.addWidget(b)
        middle = QVBoxLayout()
        middle.addWidget(self.decoded, 3)
        middle.addLayout(buttons)
        middle.addWidget(self.sliders, 2)

        encode_box = QGroupBox("Encode an image: drop a file here or paste (Ctrl+V)")
        self.pair = ImageView(min_size=120)
        self.pair.set_placeholder("input | reconstruction")
        self.encoded_label = QLabel("")
        self.encoded_label.setWordWrap(True)
        el = QVBoxLayout(encode_box)
        el.addWidget(self.pair, 1)
        el.addWidget(self.encoded_label)

        interp_box = QGroupBox("Interpolate between two latents")
        self.set_a = QPushButton("Set A = current")
        self.set_a.clicked.connect(lambda: self._set_endpoint("a"))
        self.set_b = QPushButton("Set B = current")
        self.set_b.clicked.connect(lambda: self._set_endpoint("b"))
        self.mode = QComboBox()
        self.mode.addItems(["linear", "spherical"])
        self.mode.currentTextChanged.connect(lambda _: self.render_interpolation())
        self.steps = QSpinBox()
        self.steps.setRange(3, 24)
        self.steps.setValue(10)
        self.steps.valueChanged.connect(lambda _: self.render_interpolation())
        self.strip = ImageView(min_size=60)
        self.strip.set_placeholder("set A and B")
        self.save_strip_button = QPushButton("Save strip…")
        self.save_strip_button.clicked.connect(lambda: self._save_dialog(self.strip, "vae_interpolation.png"))
        il = QVBoxLayout(interp_box)
        r1 = QHBoxLayout()
        for w in (self.set_a, self.set_b, self.mode, self.steps):
            r1.addWidget(w)
        il.addLayout(r1)
        il.addWidget(self.strip, 1)
        il.addWidget(self.save_strip_button)
        right = QVBoxLayout()
        right.addWidget(encode_box, 1)
        right.addWidget(interp_box, 1)

        main = QHBoxLayout()
        main.addWidget(self.left_tabs, 5)
        main.addLayout(middle, 4)
        main.addLayout(right, 4)
        outer = QVBoxLayout(self.body)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(top)
        outer.addLayout(main, 1)
        self.decoded.painted.connect(lambda _: self._painted("decode"))
        self.manifold.painted.connect(lambda _: self._painted("manifold"))
        updated = getattr(self.context, "checkpointUpdated", None)
        if updated is not None:  # follow a running training
            updated.connect(self._checkpoint_updated)

    @property
    def scatter(self):
        if self._scatter is None:
            from studio.ui.widgets.latent_scatter import LatentScatter

            self._scatter = LatentScatter()
            self._scatter.pointPicked.connect(self._scatter_point)
            self._scatter_layout.insertWidget(0, self._scatter, 1)
        return self._scatter

    # --- checkpoints ---------------------------------------------------------------
    def open_checkpoint(self, path: str) -> None:
        try:
            meta = self.picker.select(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return
        self.checkpoint = str(Path(path))
        cfg = meta["config"]
        self.latent_dim = int(cfg["latent_dim"])
        metrics = meta.get("metrics", {})
        quality = f", −ELBO {metrics['neg_elbo_nats']:.1f} nats ({metrics.get('eval_split', '')})" \
            if "neg_elbo_nats" in metrics else ""
        self.info.setText(f"{self.latent_dim}-D latent, beta {cfg.get('beta', 1):g}, "
                          f"step {meta.get('step', 0)}{quality}")
        for box in (self.dim_x, self.dim_y):
            box.setRange(0, max(0, self.latent_dim - 1))
            box.setEnabled(self.latent_dim > 2)
        self.dim_y.setValue(min(1, self.latent_dim - 1))
        self.sliders.set_dims(self.latent_dim)
        self.z_a = self.z_b = None
        self.strip.set_placeholder("set A and B")
        self.refresh()

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
        return self.sliders.values()

    def dims(self) -> tuple[int, int]:
        return (self.dim_x.value(), self.dim_y.value())

    def refresh(self) -> None:
        if not self.checkpoint:
            return
        self.render_decode()
        self.render_manifold()
        self.render_interpolation()

    def render_decode(self) -> None:
        if self.checkpoint:
            self.submit("decode", vae_ops.VaeDecode(self.target(), tuple(self.z().tolist())))

    def render_manifold(self) -> None:
        if self.checkpoint:
            request = vae_ops.VaeManifold(self.target(), tuple(self.z().tolist()), self.dims(), 15, SPAN)
            self._manifold_slice = self._slice_of(request.base_z)
            self.submit("manifold", request)

    def _slice_of(self, z) -> tuple:
        """What the map depends on: every latent value except the two it spans."""
        x, y = self.dims()
        return (self.dims(),) + tuple(v for i, v in enumerate(z) if i not in (x, y))

    def render_interpolation(self) -> None:
        if self.checkpoint and self.z_a is not None and self.z_b is not None:
            self.submit("interpolate", vae_ops.VaeInterpolate(
                self.target(), tuple(self.z_a.tolist()), tuple(self.z_b.tolist()),
                self.steps.value(), self.mode.currentText()))

    def image_dropped(self, source: str | bytes) -> None:
        self.encode_source(source)

    def encode_source(self, source: str | bytes) -> None:
        if self.checkpoint:
            self.submit("encode", vae_ops.VaeEncodeImage(self.target(), source))

    def encode_dataset(self, data: str | None) -> None:
        if self.checkpoint:
            self.show_info("encoding the dataset…")
            self.submit("scatter", vae_ops.VaeEncodeDataset(self.target(), data))

    # --- gestures ------------------------------------------------------------------
    def _z_changed(self) -> None:
        self.render_decode()
        x, y = self.dims()
        z = self.z()
        self.manifold.set_marker(*plane_uv(float(z[x]), float(z[y]), SPAN))
        if self._scatter is not None:
            self._scatter.set_cursor(float(z[x]), float(z[y]))
        # The map is a slice through the other dimensions: redraw it only when that slice moved,
        # not on every move within the plane (225 decodes that would delay the one that matters).
        if self.latent_dim > 2 and self._slice_of(z.tolist()) != self._manifold_slice:
            self.render_manifold()

    def _plane_changed(self) -> None:
        self.render_manifold()

    def _set_point(self, x: float, y: float) -> None:
        z = self.z()
        dx, dy = self.dims()
        z[dx], z[dy] = x, y
        self.sliders.set_values(z)

    def _map_point(self, u: float, v: float) -> None:
        self._set_point(*plane_point(u, v, SPAN))

    def _scatter_point(self, x: float, y: float) -> None:
        if -SPAN <= x <= SPAN and -SPAN <= y <= SPAN:
            self._set_point(x, y)

    def random_sample(self) -> None:
        self.sliders.set_values(self._rng.standard_normal(self.latent_dim))

    def _set_endpoint(self, which: str) -> None:
        if which == "a":
            self.z_a = self.z()
        else:
            self.z_b = self.z()
        if self.z_a is None or self.z_b is None:
            self.strip.set_placeholder("now set " + ("B" if self.z_b is None else "A"))
        self.render_interpolation()

    def _choose_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder (IDX files or images)")
        if path:
            self.encode_dataset(path)

    # --- results -------------------------------------------------------------------
    def on_result(self, view: str, result: RenderResult) -> None:
        if view == "decode":
            self.decoded.set_image(result.image)
        elif view == "manifold":
            self.manifold.set_image(result.image)
            x, y = self.dims()
            z = self.z()
            self.manifold.set_marker(*plane_uv(float(z[x]), float(z[y]), SPAN))
        elif view == "interpolate":
            self.strip.set_image(result.image)
        elif view == "encode":
            encoded: vae_ops.VaeEncoded = result.payload
            self.pair.set_image(result.image)
            mu = np.asarray(encoded.mu)
            shown = ", ".join(f"{v:+.2f}" for v in mu[:4]) + (" …" if len(mu) > 4 else "")
            self.encoded_label.setText(f"{Path(str(encoded.source)).name}: mu = ({shown})")
            self.sliders.set_values(mu)
        elif view == "scatter":
            latents: vae_ops.DatasetLatents = result.payload
            x, y = self.dims()
            self.scatter.set_points(latents.mu[:, [x, y]], latents.labels, (x, y))
            self.left_tabs.setCurrentIndex(1)

    def _painted(self, view: str) -> None:
        self._shown[view] = True
        if all(self._shown.values()):
            self.mark_first_image()

    # --- saving --------------------------------------------------------------------
    def save_view(self, view: ImageView, path: str) -> Path | None:
        image = view.image()
        if image is None:
            self.show_error("Nothing to save yet.")
            return None
        try:
            written = save_png(image, path)
        except OSError as exc:
            self.show_error(f"{path}: cannot save ({exc.strerror or exc})")
            return None
        self.show_info(f"saved {written}")
        return written

    def _save_dialog(self, view: ImageView, default: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save PNG", default, "PNG images (*.png)")
        if path:
            self.save_view(view, path)
