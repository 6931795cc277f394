"""GPU figures: torch on CUDA beside the same work on the CPU (``python -m studio.bench --device cuda``).

* the UNet step at batch 16: torch eager on CUDA, the same as a replayed CUDA
  graph, torch and ONNX Runtime on the CPU;
* DDPM-1000 at batch 16 through the panel's handler (every step's frame
  built): torch on CUDA (CUDA graph) and ONNX Runtime on the CPU (the app's
  default), one run each in ``--quick``;
* whether the CUDA-graph sampler replays a seed bit for bit.

Everything runs on the shipped diffusion checkpoint.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np

BATCH = 16


def no_gpu_reason() -> str | None:
    """Why there is nothing to measure here (None: a GPU torch can use)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA GPU visible to torch"
        return f"{build} on this machine"
    return None


def _median_ms(fn, reps: int, warmup: int = 10, sync=None) -> float:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _sample_ms(pool, target, seed: int = 0) -> tuple[float, np.ndarray]:
    from studio.families.diffusion import ops

    req = ops.DiffusionSample(target, "ddpm", 1000, 0.0, seed, BATCH)
    t0 = time.perf_counter()
    last = None
    for out in ops.sample(pool, req):
        last = out
    return (time.perf_counter() - t0) * 1000.0, last.payload.samples


def bench(quick: bool) -> dict:
    reason = no_gpu_reason()
    if reason:
        return {"skipped": reason}
    import torch

    from studio.bench.diffusion import _checkpoint
    from studio.engine.backends import TorchBackend
    from studio.engine.requests import Target
    from studio.engine.runtime import RuntimePool

    path = _checkpoint()
    pool = RuntimePool()
    runtime = pool.get(path, family="diffusion")
    spec = runtime.graph_specs()["eps"]
    cfg = runtime.config
    c, s = int(cfg.get("channels", 1)), int(cfg.get("image_size", 28))
    rng = np.random.default_rng(0)
    feed = {"x": rng.standard_normal((BATCH, c, s, s)).astype(np.float32),
            "t": np.full((BATCH,), 500.0, np.float32)}
    reps = 50 if quick else 300
    sync = torch.cuda.synchronize
    eager = TorchBackend.from_spec(spec, "cuda", module=copy.deepcopy(spec.module), cuda_graph=False)
    graphed = TorchBackend.from_spec(spec, "cuda", module=copy.deepcopy(spec.module), cuda_graph=True)
    eager_ms = _median_ms(lambda: eager.run(feed), reps, sync=sync)
    graph_ms = _median_ms(lambda: graphed.run(feed), reps, sync=sync)
    diff = float(np.abs(eager.run(feed)["eps"] - graphed.run(feed)["eps"]).max())
    cpu_torch = runtime.backend("eps", "torch", "cpu")
    cpu_onnx = runtime.backend("eps", "onnx", "cpu")
    cpu_reps = 5 if quick else 30
    cpu_torch_ms = _median_ms(lambda: cpu_torch.run(feed), cpu_reps, warmup=2)
    cpu_onnx_ms = _median_ms(lambda: cpu_onnx.run(feed), cpu_reps, warmup=2)

    cuda_target = Target(path, "torch", "cuda")
    _sample_ms(pool, cuda_target)  # warm-up: captures the graph for this batch
    cuda_runs = [_sample_ms(pool, cuda_target) for _ in range(1 if quick else 3)]
    replayed = _sample_ms(pool, cuda_target)[1]
    ddpm_cuda_ms = statistics.median(ms for ms, _ in cuda_runs)
    bit_for_bit = bool(np.array_equal(cuda_runs[0][1], replayed))
    ddpm_cpu_ms = _sample_ms(pool, Target(path, "onnx", "cpu"))[0]
    return {
        "gpu": torch.cuda.get_device_name(0),
        "batch": BATCH,
        "unet_step_cuda_eager_ms": round(eager_ms, 3),
        "unet_step_cuda_graph_ms": round(graph_ms, 3),
        "cuda_graph_speedup": round(eager_ms / graph_ms, 2) if graph_ms > 0 else None,
        "cuda_graph_captured": graphed.uses_cuda_graph and not graphed.cuda_graph_failures,
        "cuda_graph_vs_eager_max_abs_diff": diff,
        "unet_step_cpu_torch_ms": round(cpu_torch_ms, 3),
        "unet_step_cpu_onnx_ms": round(cpu_onnx_ms, 3),
        "ddpm1000_b16_cuda_ms": round(ddpm_cuda_ms, 1),
        "ddpm1000_b16_cpu_onnx_ms": round(ddpm_cpu_ms, 1),
        "ddpm1000_cuda_vs_cpu_speedup": round(ddpm_cpu_ms / ddpm_cuda_ms, 2),
        "cuda_sampling_replays_bit_for_bit": bit_for_bit,
        "checkpoint": path,
    }


if __name__ == "__main__":
    import json
    import sys

    reason = no_gpu_reason()
    if reason:
        print(f"no CUDA benchmark: {reason}")
        sys.exit(0)
    print(json.dumps(bench("--quick" in sys.argv[1:]), indent=2))
