"""Evaluation benchmark: ``evaluation.metrics_5000_ms``, features + FID + KID + IS for 5,000 digits.

What a user waits for once 5,000 samples exist (their features through the
digit classifier, then FID, KID and IS against the 9,000 training digits,
whose features are cached), on one thread; sampling is not counted. Also
reported: each part's share, the cold cost of the real digits' features and,
in a full run, precision/recall. Target: at most 10 s on the 2-core machine.

    python -m studio.bench.evaluation [--quick]
"""

from __future__ import annotations

import json
import sys
from typing import Any

TARGET_MS = 10_000.0


def bench(quick: bool = False) -> dict[str, Any]:
    from studio.evaluation.speed import bench as time_metrics

    result = time_metrics(quick)
    result["target_ms"] = TARGET_MS
    result["meets_target"] = result["metrics_5000_ms"] <= TARGET_MS
    return result


if __name__ == "__main__":
    print(json.dumps(bench("--quick" in sys.argv), indent=2))
