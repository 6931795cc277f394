"""``python -m studio.bench [--quick] [--only AREA ...] [--device cuda] [--json OUT.json]``: the project's
benchmark (not a test).

``--device cuda`` measures torch on the GPU (UNet step eager and as a CUDA
graph, DDPM-1000 through the handler) beside the same work on the CPU; on a
machine without a GPU it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback

AREAS = ["models", "gui", "diffusion", "training", "evaluation", "cyclegan"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studio.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    p.add_argument("--json", metavar="OUT.json", help="also write the figures to this file")
    p.add_argument("--only", nargs="*", default=None, choices=AREAS,
                   help="areas to run (default: all)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: the GPU figures beside their CPU counterparts, instead of the CPU areas")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    if args.device == "cuda":
        from studio.bench.cuda import no_gpu_reason

        reason = no_gpu_reason()
        if reason:
            print(f"no CUDA benchmark: {reason}", flush=True)
            return 0

    from studio.engine.setup import configure_process

    configure_process(with_torch=True)  # process-wide settings, once, before any work

    from studio.bench.models import cpu_peak_gflops
    from studio.core.threads import compute_threads, cpu_count

    report: dict = {
        "machine": {"cpus": cpu_count(), "compute_threads": compute_threads(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "quick": args.quick,
        "device": args.device,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    areas = ["cuda"] if args.device == "cuda" else (args.only or AREAS)
    report["cpu_peak_gflops"] = cpu_peak_gflops(args.quick)
    print(f"cpu_peak_gflops {report['cpu_peak_gflops']}", flush=True)
    for area in areas:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"studio.bench.{area}")
            result = module.bench(args.quick)
        except ModuleNotFoundError as exc:
            result = {"error": f"not available: {exc}"}
        except Exception as exc:  # one area failing must not lose the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
        report[area] = result
        print(f"{area} ({time.perf_counter() - t0:.0f} s): {json.dumps(result)}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
