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

import tempfile
import time

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

    from studio.training.events import Progress
    from studio.training.runs import build_trainer, prepare_run

    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="studio-bench-bare-") as out:
            opts = _options(out, steps)
            plan = prepare_run(opts)  # the same start as the worker's and the command line's
            trainer = build_trainer(plan.options, data=plan.data)
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


def bench(quick: bool) -> dict:
    from studio.core.threads import compute_threads

    threads = compute_threads(None)
    steps = 200 if quick else 1000
    rounds = 2 if quick else 3
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
    from studio.ui.measure.training import gui_stall  # the Qt part lives in studio/ui

    out.update(gui_stall(400 if quick else 1500))
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench("--quick" in sys.argv), indent=2))
