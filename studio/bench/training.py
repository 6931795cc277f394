"""Training benchmark: worker overhead and GUI responsiveness while training.

``bench(quick)`` returns

* ``worker_vs_bare_ratio``: steps/s of the VAE trainer in the app's worker
  process over steps/s of the same trainer, options and torch thread count in
  a bare in-process loop (target >= 0.9);
* ``gui_stall_ms_p99``: the 99th percentile of event-loop lateness (a 10 ms
  QTimer, how late each tick fired) while the real training panel, offscreen,
  drives a worker and draws its curves with 100k points already on them
  (target <= 50 ms);
* the raw figures behind both.

Both rates are computed the same way, from the trainer's own Progress events,
over the steps after a warm-up, so process start-up is not counted.

    python -c "from studio.bench.training import bench; print(bench(True))"
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

WARMUP_STEPS = 20


def _options(out: str, steps: int, **kw):
    from studio.training.trainer import TrainOptions

    base = dict(family="vae", out=out, steps=steps, batch_size=64, checkpoint_every=0,
                preview_every=100, log_every=10, model={"latent_dim": 2})
    base.update(kw)
    return TrainOptions(**base)


def _steps_per_s(progress: list, batch_size: int) -> float:
    start = progress[0].step - 1  # run() measures from the step it started at
    warm = next(p for p in progress if p.step - start >= WARMUP_STEPS)
    last = progress[-1]

    def elapsed(p):
        return (p.step - start) * batch_size / p.examples_per_s

    return (last.step - warm.step) / (elapsed(last) - elapsed(warm))


def bare_steps_per_s(steps: int, threads: int) -> float:
    import torch

    from studio.data.datasets import open_dataset
    from studio.training.events import Progress
    from studio.training.registry import trainer_class

    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="studio-bench-bare-") as out:
            opts = _options(out, steps)
            trainer = trainer_class("vae")(opts, open_dataset(opts.data))
            progress = [e for e in trainer.run() if isinstance(e, Progress)]
    finally:
        torch.set_num_threads(prev)
    return _steps_per_s(progress, opts.batch_size)


def worker_steps_per_s(steps: int, threads: int) -> float:
    from studio.training.events import Progress
    from studio.training.worker import WorkerHandle

    with tempfile.TemporaryDirectory(prefix="studio-bench-worker-") as out:
        opts = _options(out, steps, threads=threads)
        h = WorkerHandle()
        h.start(opts)
        progress = []
        deadline = time.monotonic() + 600
        try:
            while h.finished is None and time.monotonic() < deadline:
                progress += [e for e in h.poll() if isinstance(e, Progress)]
                if h.exitcode is not None and h.finished is None:
                    progress += [e for e in h.poll() if isinstance(e, Progress)]
                    if h.finished is None:
                        raise RuntimeError(f"worker ended early: {h.exit_description()}, {h.last_message()}")
                time.sleep(0.05)
            h.join(30)
        finally:
            h.kill()
            h.close()
    return _steps_per_s(progress, opts.batch_size)


def gui_stall(steps: int, preload_points: int = 100_000) -> dict:
    """Event-loop lateness while the offscreen training panel watches a real run."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.ui.context import AppContext
    from studio.ui.training_panel import TrainingPanel

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="studio-bench-gui-") as root:
        panel = TrainingPanel(AppContext(), runs_root=Path(root))
        panel.resize(1180, 780)
        panel.show()
        panel.form.set_values({"steps": steps, "batch_size": 64, "checkpoint_every": 100,
                               "preview_every": 10, "model": "latent_dim=2",
                               "out": str(Path(root) / "run")})
        lateness: list[float] = []
        clock = QElapsedTimer()
        state = {"last": None, "measuring": False, "preloaded": False}

        def tick():
            now = clock.nsecsElapsed() / 1e6
            if state["measuring"] and state["last"] is not None:
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


def bench(quick: bool) -> dict:
    from studio.engine.threads import compute_threads

    threads = compute_threads(None)
    steps = 300 if quick else 1200
    rounds = 1 if quick else 2
    bare, worker = [], []
    for _ in range(rounds):  # interleaved, best of each: other load hits both alike
        bare.append(bare_steps_per_s(steps, threads))
        worker.append(worker_steps_per_s(steps, threads))
    out = {
        "worker_vs_bare_ratio": round(max(worker) / max(bare), 3),
        "worker_steps_per_s": round(max(worker), 2),
        "bare_steps_per_s": round(max(bare), 2),
        "threads": threads,
        "batch_size": 64,
        "steps": steps,
    }
    out.update(gui_stall(400 if quick else 1500))
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench("--quick" in sys.argv), indent=2))
