"""The VAE explorer's slider to pixels, and the app's start-up to its first picture."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from studio.ui.measure.common import close_window, open_window, percentiles, wait_painted, wait_until


def slider_to_pixels(checkpoint: str, moves: int) -> dict:
    """Drag latent sliders with real mouse events; time each move until its image is painted.

    ``slider_to_pixels``: the top slider on screen (the most used dimension, an axis of the map), the
    one a student drags first. ``slider_off_map``: the least used dimension, off the map's plane, so
    the map's slice follows too (throttled) while the decoded image answers each move.
    """
    app, ctx, window, panel = open_window("vae", {"vae": checkpoint})
    # The sliders take their final order (by average KL) once the latent usage has been measured.
    wait_until(app, lambda: panel.state.dim_kl is not None, 60)
    order = panel.sliders.order()
    result = _drag(app, panel, order[0], moves, "slider_to_pixels")
    result.update(_drag(app, panel, order[-1], moves, "slider_off_map_to_pixels"))
    close_window(ctx, window)
    return result


def _drag(app, panel, dim: int, moves: int, key: str) -> dict:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    slider = panel.sliders.sliders[dim]._slider
    centre = QPoint(slider.width() // 2, slider.height() // 2)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, pos=centre)
    samples = []
    for i in range(moves):
        frame = panel.decoded.frame()
        dx = int((slider.width() // 3) * ((i % 20) - 10) / 10)
        t0 = time.perf_counter()
        QTest.mouseMove(slider, QPoint(centre.x() + dx + (1 if i % 2 else 0), centre.y()))
        samples.append(wait_painted(app, panel.decoded, frame, t0))  # a frame newer than before the move
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=centre)
    return {**percentiles(samples, key), f"{key.replace('_to_pixels', '')}_moves": len(samples)}


def startup_ms(runs: int, repo: Path) -> float:
    """Median time from process start to the first image on screen (``main.py --screenshot``).

    As a user starts the app the second time and after: Python's compiled modules cached (an
    environment with PYTHONDONTWRITEBYTECODE would otherwise measure compiling every module at
    every start), after one launch that is not counted.
    """
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    times = []
    for i in range(-1, runs):  # -1: the warm-up launch
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / f"studio-startup-{os.getpid()}-{i}.png"
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(repo / "main.py"), "--panel", "vae", "--screenshot", str(shot)],
                                cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        first = None
        for line in proc.stdout:
            if line.startswith("first image on screen") and first is None:
                first = (time.perf_counter() - t0) * 1000.0
        proc.wait(timeout=120)
        shot.unlink(missing_ok=True)
        if first is not None and i >= 0:
            times.append(first)
    return round(statistics.median(times), 1) if times else float("nan")
