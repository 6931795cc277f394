"""The diffusion panel under seeded random gestures: Sample, Cancel, restart (cancel then sample at once),
sampler, step count, seed, η, variance and batch changes while a run goes on, scrubbing and playing,
watching a run to its end.

Every delivery is watched: frames may only come for the newest Sample and never after a Cancel. Every
run that finished is replayed afterwards by a clean run outside the GUI (a fresh pool, the handler
called directly) and must be bit-identical, step by step. Nothing may hang: each wait has a limit.

Short run in the suite; the long run is ``pytest -m stress -s tests/test_diffusion_fuzz.py``.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui_fuzz import click, combo_step, pick, type_number
from studio.engine.renderer import RenderResult
from studio.engine.runtime import RuntimePool
from studio.families.diffusion import ops
from studio.families.diffusion.ui.panel import DiffusionPanel
from studio.ui.context import AppContext
from test_diffusion_engine import make_tiny_unet

WAIT = 60000  # the first run exports the tiny UNet to ONNX (torch stands in meanwhile)
GESTURES = {"sample": 16, "cancel": 10, "restart": 8, "sampler": 6, "steps typed": 8, "steps keys": 4,
            "seed typed": 8, "new seed": 2, "eta": 4, "variance": 3, "batch": 4, "scrub": 6, "play": 3, "pause": 12,
            "watch to the end": 5}
SEEDS = (0, 1, 2, 3)  # few seeds, so the same settings come back and are replayed in the GUI too


class DiffusionFuzz:
    def __init__(self, qtbot, panel: DiffusionPanel, seed: int, max_steps: int):
        self.qtbot, self.panel, self.max_steps = qtbot, panel, max_steps
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = {}
        self.submitted: list[tuple[int, ops.DiffusionSample]] = []
        self.cancelled_at: int | None = None  # frames recorded when the newest run was cancelled
        self.cancels = 0
        self.problems: list[str] = []
        self.finished: list[tuple[ops.DiffusionSample, str, list[int], list[np.ndarray]]] = []
        renderer = panel.bridge.renderer
        submit = renderer.submit

        def watched_submit(channel, request, *more):
            seq = submit(channel, request, *more)
            if channel == "diffusion.sample":
                self.submitted.append((seq, request))
                self.cancelled_at = None
            return seq

        renderer.submit = watched_submit
        panel.rendered.connect(self._delivered)

    def _delivered(self, result: RenderResult) -> None:
        if result.channel != "diffusion.sample":
            return
        newest_seq, newest = self.submitted[-1]
        if result.seq != newest_seq or result.request != newest:
            self.problems.append(f"frames of request {result.seq} shown while {newest_seq} is the newest")
        if self.cancelled_at is not None:
            self.problems.append(f"frames of request {result.seq} delivered after its Cancel")
        if result.error:
            self.problems.append(f"run {result.seq} failed: {result.error}")
        if isinstance(result.payload, ops.DiffusionDone):
            trajectory = self.panel.state.trajectory
            self.finished.append((result.request, result.backend, [f.k for f in trajectory],
                                  [f.images["x_t"].copy() for f in trajectory]))

    def gesture(self, name: str | None = None) -> None:
        rng, panel, qtbot = self.rng, self.panel, self.qtbot
        name = name or pick(rng, GESTURES)
        self.counts[name] = self.counts.get(name, 0) + 1
        if name == "sample":
            click(panel.sample_button)  # disabled while a run goes on: then the click does nothing
        elif name == "cancel":
            self._cancel()
        elif name == "restart":
            self._cancel()
            click(panel.sample_button)
        elif name == "sampler":
            combo_step(qtbot, panel.sampler, rng)
            if panel.steps.value() > self.max_steps:  # DDPM's default is all 1000 steps: keep runs short
                type_number(qtbot, panel.steps, rng.randint(1, self.max_steps))
        elif name == "steps typed":
            type_number(qtbot, panel.steps, rng.randint(1, self.max_steps))
        elif name == "steps keys":
            if panel.steps.value() < self.max_steps:
                qtbot.keyClick(panel.steps, rng.choice([Qt.Key.Key_Up, Qt.Key.Key_Down]))
        elif name == "seed typed":
            type_number(qtbot, panel.seed, rng.choice(SEEDS))
        elif name == "new seed":
            click(panel.settings.random_seed)
        elif name == "eta":  # DDIM only: disabled under DDPM
            qtbot.keyClick(panel.eta, rng.choice([Qt.Key.Key_Up, Qt.Key.Key_Down]))
        elif name == "variance":  # DDPM only
            combo_step(qtbot, panel.variance, rng)
        elif name == "batch":
            type_number(qtbot, panel.batch, rng.randint(1, 3))
        elif name == "scrub":
            qtbot.keyClick(panel.playback.scrubber, rng.choice([Qt.Key.Key_Left, Qt.Key.Key_Right,
                                                                Qt.Key.Key_Home, Qt.Key.Key_End]))
        elif name == "play":
            click(panel.playback.play_button)
        elif name == "pause":
            qtbot.wait(rng.randint(1, 40))
        elif name == "watch to the end":
            qtbot.waitUntil(lambda: not panel.running, timeout=WAIT)
        if rng.random() < 0.7:
            QApplication.processEvents()
        if self.cancelled_at is not None and panel.state.count() != self.cancelled_at:
            self.problems.append(f"frames recorded after Cancel: {self.cancelled_at} -> {panel.state.count()}")
            self.cancelled_at = panel.state.count()

    def _cancel(self) -> None:
        if self.panel.cancel_button.isEnabled():
            click(self.panel.cancel_button)
            self.cancels += 1
            self.cancelled_at = self.panel.state.count()
            assert not self.panel.running and self.panel.sample_button.isEnabled()

    def finish(self) -> None:
        """The last run: Sample with the current settings and wait for it (no hang)."""
        self._cancel()
        self.qtbot.waitUntil(self.panel.bridge.renderer.idle, timeout=WAIT)
        click(self.panel.sample_button)
        self.qtbot.waitUntil(lambda: not self.panel.running, timeout=WAIT)
        assert self.panel.state.finished() and self.finished
        assert self.finished[-1][0] == self.submitted[-1][1]  # the last run shown is the last asked for

    def replay(self) -> int:
        """Each finished run, run again cleanly: the same steps, bit for bit. Returns how many were checked."""
        pool = RuntimePool()
        clean: dict = {}
        for request, backend, ks, x_t in self.finished:
            n = len(ks) - 1
            assert ks == list(range(n + 1)), f"a run's frames are out of order or mixed: {ks[:8]}…"
            key = (replace(request, target=replace(request.target, backend=backend)),)
            if key not in clean:
                clean[key] = clean_run(pool, key[0])
            expected = clean[key]
            assert len(expected) == len(x_t), f"{len(x_t)} frames recorded, a clean run makes {len(expected)}"
            differ = [k for k, (shown, again) in enumerate(zip(x_t, expected)) if not np.array_equal(shown, again)]
            assert not differ, (f"{request} on {backend}: steps {differ} differ from a clean run, by up to "
                                f"{max(np.abs(x_t[k].astype(int) - expected[k]).max() for k in differ)} grey levels")
        return len(self.finished)


def clean_run(pool: RuntimePool, request: ops.DiffusionSample) -> list[np.ndarray]:
    """Every step's x_t (uint8) and the finished sample, from the handler called directly."""
    frames: list[np.ndarray] = []
    for out in ops.sample(pool, request):
        payload = out.payload
        frames += [ops.step_images(s.x_t, s.x0, s.eps, s.added)["x_t"] for s in payload.steps]
        if isinstance(payload, ops.DiffusionDone):
            frames.append(payload.final_images)
    return frames


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_unet(tmp_path_factory.mktemp("unet") / "tiny_unet.safetensors"))


@pytest.fixture
def fuzzed(qtbot, tiny):
    ctx = AppContext("onnx", "cpu")
    ctx.checkpoints["diffusion"] = tiny
    panel = DiffusionPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitUntil(lambda: panel.has_first_image() and not panel.running, timeout=WAIT)
    yield lambda seed, max_steps: DiffusionFuzz(qtbot, panel, seed, max_steps)
    ctx.bridge.shutdown()


def run_fuzz(fuzz: DiffusionFuzz, gestures: int) -> dict:
    started = time.perf_counter()
    type_number(fuzz.qtbot, fuzz.panel.steps, 10)  # off DDIM's default, so DDPM keeps a short count
    for _ in range(gestures):
        fuzz.gesture()
    fuzz.finish()
    assert fuzz.problems == []
    replays = fuzz.replay()
    return {"gestures": sum(fuzz.counts.values()), "cancels": fuzz.cancels, "runs": len(fuzz.submitted),
            "replays": replays, "distinct": len({(r, b) for r, b, _, _ in fuzz.finished}),
            "seconds": time.perf_counter() - started}


def test_diffusion_panel_cancel_and_restart_fuzz_short(fuzzed):
    fuzz = fuzzed(seed=1, max_steps=25)
    figures = run_fuzz(fuzz, gestures=300)
    assert figures["cancels"] >= 10 and figures["replays"] >= 5
    assert all(fuzz.counts.get(name, 0) > 0 for name in GESTURES)


@pytest.mark.stress
@pytest.mark.timeout(1800)
def test_diffusion_panel_cancel_and_restart_fuzz_long(fuzzed):
    figures = run_fuzz(fuzzed(seed=2, max_steps=60), gestures=3000)
    print(f"\ndiffusion panel fuzz: {figures['gestures']} gestures, {figures['runs']} runs started, "
          f"{figures['cancels']} cancelled, {figures['replays']} finished runs replayed bit-identically "
          f"({figures['distinct']} distinct settings), {figures['seconds']:.0f} s")
