"""The VAE explorer under seeded random gestures: slider drags and keys, map clicks and drags, backend
(onnx/torch) and checkpoint (2-D/16-D) switches, map axes, random and reset, interpolation ends.

Every so often the panel is left to settle and must show what its state asks for: the decoded image
bit-identical to a direct decode of the sliders' z, the map and strip of the current slice and
ends (nothing stale). Resident memory measured after warm-up and at the end must stay within a bound.

Short run in the suite; the long run is ``pytest -m stress -s tests/test_vae_fuzz.py`` (it prints its figures).
"""

from __future__ import annotations

import gc
import random
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from conftest import REPO
from gui_fuzz import choose, click, combo_step, drag, drag_slider, pick, random_point, rss_mib
from studio.engine.renderer import run_to_end
from studio.engine.runtime import RuntimePool
from studio.families.vae import ops as vae_ops
from studio.families.vae.state import MAP_GRID, SPAN
from studio.families.vae.ui.panel import VAEPanel
from studio.ui.context import AppContext
from studio.ui.widgets.backend_bar import BackendBar

WAIT = 60000
VAE_2D = REPO / "studio" / "checkpoints" / "vae_mnist_2d.safetensors"
VAE_16D = REPO / "studio" / "checkpoints" / "vae_mnist_16d.safetensors"
GESTURES = {"slider drag": 30, "slider keys": 10, "map click": 12, "map drag": 14, "random": 5, "reset": 3,
            "backend": 4, "checkpoint": 4, "map axes": 6, "interpolation end": 4, "pause": 8}
# Resident memory may grow this much from after the warm-up (every request run on both models and
# both backends) to the end. Measured: under 20 MiB, up and down; a map picture (176 KB) leaked per
# gesture would not fit in the short run, nor 5 KB per gesture in the long one.
RSS_BOUND_MIB = 50.0
SLIDER_KEYS = [Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Home,
               Qt.Key.Key_End]


class VaeFuzz:
    def __init__(self, qtbot, panel: VAEPanel, bar: BackendBar, seed: int):
        self.qtbot, self.panel, self.bar = qtbot, panel, bar
        self.rng = random.Random(seed)
        self.pool = RuntimePool()  # the direct decodes: not the panel's pool, not its renderer
        self.counts: dict[str, int] = {}
        self.settled_checks = 0

    def gesture(self, name: str | None = None) -> None:
        rng, panel, qtbot = self.rng, self.panel, self.qtbot
        name = name or pick(rng, GESTURES)
        self.counts[name] = self.counts.get(name, 0) + 1
        if name == "slider drag":
            drag_slider(rng, rng.choice(panel.sliders.sliders)._slider)
        elif name == "slider keys":
            qtbot.keyClick(rng.choice(panel.sliders.sliders)._slider, rng.choice(SLIDER_KEYS))
        elif name == "map click":
            click(panel.manifold, random_point(rng, panel.manifold.image_rect()))
        elif name == "map drag":
            rect = panel.manifold.image_rect().adjusted(-20, -20, 20, 20)  # off the picture too
            drag(panel.manifold, [random_point(rng, rect) for _ in range(rng.randint(2, 8))])
        elif name == "random":
            click(panel.random_button)
        elif name == "reset":
            click(panel.reset_button)
        elif name == "backend":
            combo_step(qtbot, self.bar.backend, rng)
        elif name == "checkpoint":
            combo_step(qtbot, panel.picker, rng)
        elif name == "map axes":  # disabled on the 2-D model: the keys then do nothing
            qtbot.keyClick(rng.choice([panel.dim_x, panel.dim_y]), rng.choice([Qt.Key.Key_Up, Qt.Key.Key_Down]))
        elif name == "interpolation end":
            click(rng.choice([panel.set_a, panel.set_b]))
        elif name == "pause":
            qtbot.wait(rng.randint(1, 30))
        if rng.random() < 0.6:  # some gestures come faster than results, some after them
            QApplication.processEvents()

    def settle(self) -> None:
        """Let every render finish and its result arrive (a result may submit more: repeat until quiet)."""
        renderer = self.panel.bridge.renderer
        for _ in range(50):
            self.qtbot.waitUntil(renderer.idle, timeout=WAIT)
            QApplication.processEvents()
            self.qtbot.wait(5)
            # The map follows an off-plane drag throttled: its last redraw may still be due.
            self.qtbot.waitUntil(lambda: not self.panel.redraw_owed(), timeout=WAIT)
            if renderer.idle():
                return
        pytest.fail("the renderer never came to rest")

    def check_shows_the_state(self) -> None:
        """Nothing stale: each view shows the render of what the state holds now."""
        self.settle()
        panel, state = self.panel, self.panel.state
        target = panel.target()
        z = tuple(panel.sliders.values().tolist())
        np.testing.assert_array_equal(state.z, panel.sliders.values())
        decode = panel.results["decode"]
        assert decode.request == vae_ops.VaeDecode(target, z), "the decoded image is of an older gesture"
        expected = vae_ops.decode(self.pool, decode.request).image
        np.testing.assert_array_equal(panel.decoded.image(), expected)

        manifold = panel.results["manifold"].request
        assert manifold.target == target and manifold.dims == state.map_dims
        assert len(set(state.map_dims)) == min(2, state.latent_dim), f"degenerate map axes {state.map_dims}"
        slice_of_request = tuple(round(float(v), 6) for i, v in enumerate(manifold.base_z) if i not in manifold.dims)
        assert (manifold.dims,) + slice_of_request == state.map_slice(), "the map shows an older slice"
        assert (manifold.grid, manifold.span) == (MAP_GRID, SPAN)
        np.testing.assert_array_equal(panel.manifold.image(), run_to_end(vae_ops.manifold(self.pool, manifold)).image)

        if state.interpolation_ready():
            strip = panel.results["interpolate"].request
            assert strip.target == target
            np.testing.assert_array_equal(strip.z0, state.z_a)
            np.testing.assert_array_equal(strip.z1, state.z_b)
            assert (strip.steps, strip.mode) == (state.interp_steps, state.interp_mode)
        self.settled_checks += 1

    def visit_every_combination(self) -> None:
        """Warm-up: every request of both models on both backends, in the panel and in the direct
        decodes, so that memory measured later is not first-use loading."""
        for checkpoint in (VAE_2D, VAE_16D):
            for backend in ("onnx", "torch"):
                target = vae_ops.Target(str(checkpoint), backend, "cpu")
                dim = self.pool.get(checkpoint).config["latent_dim"]
                run_to_end(vae_ops.manifold(self.pool, vae_ops.VaeManifold(target, (0.0,) * dim, (0, 1), MAP_GRID, SPAN)))
        for checkpoint in (1, 0):
            for backend in ("torch", "onnx"):
                choose(self.qtbot, self.panel.picker, checkpoint)
                choose(self.qtbot, self.bar.backend, self.bar.backend.findText(backend))
                for name in ("slider drag", "map click", "map drag", "slider keys", "random", "map axes"):
                    self.gesture(name)
                click(self.panel.set_a)
                self.gesture("slider drag")
                click(self.panel.set_b)
                self.qtbot.wait(300)  # at rest: the ELBO of the image on screen is measured after 250 ms
                self.check_shows_the_state()


@pytest.fixture
def fuzzed(qtbot):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["vae"] = str(VAE_2D)
    bar = BackendBar(ctx)
    panel = VAEPanel(ctx)
    for widget in (bar, panel):
        qtbot.addWidget(widget)
    panel.resize(1100, 700)
    panel.show()
    qtbot.waitUntil(panel.has_first_image, timeout=WAIT)
    assert [panel.picker.itemData(i) for i in range(panel.picker.count())] == [str(VAE_2D), str(VAE_16D)]
    yield lambda seed: VaeFuzz(qtbot, panel, bar, seed)
    ctx.bridge.shutdown()


def run_fuzz(fuzz: VaeFuzz, warm_up: int, gestures: int, check_every: int) -> dict:
    """``warm_up`` gestures (every model on every backend first), then ``gestures`` more, memory measured."""
    started = time.perf_counter()
    fuzz.visit_every_combination()
    for _ in range(warm_up):  # the allocators' high-water marks settle (ORT arenas, malloc's heaps)
        fuzz.gesture()
    fuzz.check_shows_the_state()
    gc.collect()
    rss = [rss_mib()]
    for i in range(1, gestures + 1):
        fuzz.gesture()
        if i % check_every == 0:
            fuzz.check_shows_the_state()
            gc.collect()
            rss.append(rss_mib())
    fuzz.check_shows_the_state()  # the last gesture's image, whatever it was
    gc.collect()
    rss.append(rss_mib())
    return {"gestures": sum(fuzz.counts.values()), "checks": fuzz.settled_checks, "rss_before": rss[0],
            "rss_after": rss[-1], "rss_max": max(rss) if rss[0] is not None else None,
            "seconds": time.perf_counter() - started, "counts": dict(fuzz.counts)}


def check_memory(figures: dict, bound_mib: float) -> None:
    if figures["rss_before"] is None:
        return  # no /proc here: the pictures were still checked
    growth = figures["rss_after"] - figures["rss_before"]
    assert growth < bound_mib, f"resident memory grew {growth:.1f} MiB over {figures['gestures']} gestures"


def test_vae_panel_fuzz_short(fuzzed):
    fuzz = fuzzed(seed=1)
    figures = run_fuzz(fuzz, warm_up=30, gestures=300, check_every=60)
    assert all(fuzz.counts.get(name, 0) > 0 for name in GESTURES)  # every kind of gesture was tried
    check_memory(figures, bound_mib=RSS_BOUND_MIB)


@pytest.mark.stress
@pytest.mark.timeout(1800)
def test_vae_panel_fuzz_long(fuzzed):
    fuzz = fuzzed(seed=2)
    figures = run_fuzz(fuzz, warm_up=1000, gestures=10000, check_every=250)
    print(f"\nVAE panel fuzz: {figures['gestures']} gestures {figures['counts']}, {figures['checks']} settled "
          f"checks against direct decodes, RSS {figures['rss_before']:.0f} MiB after warm-up, "
          f"{figures['rss_after']:.0f} MiB at the end (peak {figures['rss_max']:.0f}), {figures['seconds']:.0f} s")
    check_memory(figures, bound_mib=RSS_BOUND_MIB)
