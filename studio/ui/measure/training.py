"""GUI stall while training, for ``studio.bench.training``: the real training panel,
offscreen, watching a real worker."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from studio.ui.measure.common import offscreen_app


def gui_stall(steps: int, preload_points: int = 100_000) -> dict:
    """Event-loop lateness while the offscreen training panel watches a real run."""
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from studio.ui.context import AppContext
    from studio.ui.training_panel import TrainingPanel

    app = offscreen_app()
    with tempfile.TemporaryDirectory(prefix="studio-bench-gui-") as root:
        panel = TrainingPanel(AppContext(), runs_root=Path(root))
        panel.resize(1180, 780)
        panel.show()
        panel.form.set_values({"steps": steps, "batch_size": 64, "checkpoint_every": 100,
                               "preview_every": 10, "model": "latent_dim=2",
                               "out": str(Path(root) / "run")})
        lateness: list[float] = []
        clock = QElapsedTimer()
        state = {"last": None, "measuring": False, "preloaded": False, "from": 0.0}

        def tick():
            now = clock.nsecsElapsed() / 1e6
            if state["measuring"] and state["last"] is not None and now >= state["from"]:
                lateness.append(max(0.0, now - state["last"] - 10.0))
            state["last"] = now
            if not state["preloaded"] and panel.last_progress is not None:
                # A long run's curves: 100k points per loss already on the plot.
                state["preloaded"] = True
                n = preload_points
                x = np.arange(-n, 0, dtype=np.float64)
                rng = np.random.default_rng(0)
                hist = {"step": x}
                for k in panel.last_progress.losses:
                    hist[k] = 150 + 50 * np.exp(x / n) + rng.normal(0, 2, n)
                panel.curves.set_history(hist)
                state["measuring"] = True
                state["from"] = now + 300.0  # not the one-off first paint of the preload

        timer = QTimer()
        timer.setTimerType(Qt.PreciseTimer)
        timer.setInterval(10)
        timer.timeout.connect(tick)
        clock.start()
        timer.start()
        panel.start()
        deadline = time.monotonic() + 600
        while panel.end_reason == "" and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        reason = panel.end_reason
        points = panel.curves.point_count()
        panel.shutdown()
        panel.close()
        panel.deleteLater()
        app.processEvents()
    arr = np.asarray(lateness) if lateness else np.zeros(1)
    return {"gui_stall_ms_p99": round(float(np.percentile(arr, 99)), 2),
            "gui_stall_ms_p50": round(float(np.percentile(arr, 50)), 2),
            "gui_stall_ms_max": round(float(arr.max()), 2),
            "gui_ticks": int(len(lateness)), "gui_run_end": reason,
            "gui_curve_points": int(points)}
