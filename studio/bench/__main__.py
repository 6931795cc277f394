"""``python -m studio.bench [--quick] --json OUT.json``: the project's benchmark (not a test)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studio.bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    p.add_argument("--json", required=True, metavar="OUT.json")
    p.add_argument("--only", nargs="*", default=None,
                   help="areas to run: models gui diffusion training evaluation (default: all)")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from studio.bench.models import bench as bench_models, cpu_peak_gflops
    from studio.core.threads import compute_threads, cpu_count

    report: dict = {
        "machine": {"cpus": cpu_count(), "compute_threads": compute_threads(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    areas = args.only or ["models", "gui", "diffusion", "training", "evaluation"]
    report["cpu_peak_gflops"] = cpu_peak_gflops(args.quick)
    print(f"cpu_peak_gflops {report['cpu_peak_gflops']}", flush=True)
    for area in areas:
        t0 = time.perf_counter()
        try:
            if area == "models":
                result = bench_models(args.quick)
            else:
                module = importlib.import_module(f"studio.bench.{area}")
                result = module.bench(args.quick)
        except ModuleNotFoundError as exc:
            result = {"error": f"not available: {exc}"}
        except Exception as exc:  # one area failing must not lose the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
        report[area] = result
        print(f"{area} ({time.perf_counter() - t0:.0f} s): {json.dumps(result)}", flush=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
