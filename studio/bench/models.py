"""Per-model figures: parameters, MFLOPs and batch-1 medians on torch and ONNX Runtime."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from studio.core.paths import shipped_checkpoint_dir
from studio.engine.runtime import ModelRuntime
from studio.core.checkpoint import CheckpointError


def cpu_peak_gflops(quick: bool) -> float:
    """Best fp32 matmul throughput over a few runs, all cores."""
    import torch

    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(3 if quick else 8):
        t0 = time.perf_counter()
        reps = 4
        for _ in range(reps):
            torch.mm(a, b)
        dt = time.perf_counter() - t0
        best = max(best, 2 * n**3 * reps / dt / 1e9)
    return round(best, 1)


def median_ms(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 4)


def graph_figures(runtime: ModelRuntime, graph: str, repeats: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    spec = runtime.graph_specs()[graph]
    example = spec.example_inputs(batch=1)
    feed = {k: v.numpy() for k, v in example.items()}  # each in its declared dtype
    params = sum(p.numel() for p in spec.module.parameters())
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        spec.module(*example.values())
    torch_backend = runtime.backend(graph, "torch", "cpu")
    onnx_backend = runtime.backend(graph, "onnx", "cpu")
    torch_ms = median_ms(lambda: torch_backend.run(feed), repeats)
    onnx_ms = median_ms(lambda: onnx_backend.run(feed), repeats)
    return {"params": int(params), "mflops": round(counter.get_total_flops() / 1e6, 3),
            "torch_ms": torch_ms, "onnx_ms": onnx_ms,
            "onnx_speedup": round(torch_ms / onnx_ms, 2) if onnx_ms > 0 else None}


def bench(quick: bool, folder: Path | None = None) -> dict:
    folder = folder or shipped_checkpoint_dir()
    from studio.engine.setup import configure_process

    configure_process(with_torch=True)  # the app's settings (all cores but one), once
    repeats = 30 if quick else 200
    out: dict[str, dict] = {}
    for path in sorted(folder.glob("*.safetensors")):
        try:
            runtime = ModelRuntime(path)
        except CheckpointError:
            continue
        for graph in runtime.graph_specs():
            out[f"{path.stem}.{graph}"] = graph_figures(runtime, graph, repeats)
    return out
