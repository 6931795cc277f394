"""How long an evaluation takes: the benchmark figure ``evaluation.metrics_5000_ms``.

It times what a user waits for after sampling 5,000 digits: their features, then
FID, KID and IS against the 9,000 training digits, whose features and statistics
are already cached (computed once per classifier; their cold cost is reported too).
Held-out digits, shifted and noised, stand in for generated ones.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from studio.evaluation import metrics as M
from studio.evaluation.features import DigitFeatureExtractor, load_extractor, reference_features


def stand_in_samples(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uint8 digits made from ``real`` by random shifts of up to 2 px and pixel noise."""
    rng = np.random.default_rng(seed)
    base = real[rng.integers(0, len(real), n)]
    out = np.empty_like(base)
    shifts = rng.integers(-2, 3, size=(n, 2))
    for i, (dy, dx) in enumerate(shifts):  # MNIST digits have a 4 px empty border: rolling is a shift
        out[i] = np.roll(base[i], (int(dy), int(dx)), axis=(-2, -1))
    out = np.clip(out + rng.normal(0.0, 0.03, out.shape), 0.0, 1.0)
    return (out * 255.0 + 0.5).astype(np.uint8)


def time_metrics(n_generated: int = 5000, extractor: DigitFeatureExtractor | None = None,
                 data=None, threads: int | None = 1, with_precision_recall: bool = False) -> dict[str, Any]:
    """Wall-clock milliseconds of features + FID + KID + IS for ``n_generated`` digits."""
    import torch

    from studio.data.datasets import open_dataset

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        extractor = extractor or load_extractor()
        t0 = time.perf_counter()
        reference = reference_features(extractor, data)
        stats = reference.train_stats
        reference_ms = (time.perf_counter() - t0) * 1000.0  # ~0 when another call warmed the cache
        samples = stand_in_samples(open_dataset(data).images[-1000:], n_generated)

        t0 = time.perf_counter()
        feats = extractor(samples)
        t1 = time.perf_counter()
        fid = M.frechet_distance(M.gaussian_stats(feats.features), stats)
        t2 = time.perf_counter()
        kid, _ = M.kid(feats.features, reference.train.features)
        t3 = time.perf_counter()
        inception, _ = M.inception_score(feats.probs)
        t4 = time.perf_counter()
        out = {
            "metrics_5000_ms" if n_generated == 5000 else f"metrics_{n_generated}_ms": round((t4 - t0) * 1000, 1),
            "features_ms": round((t1 - t0) * 1000, 1),
            "fid_ms": round((t2 - t1) * 1000, 1),
            "kid_ms": round((t3 - t2) * 1000, 1),
            "is_ms": round((t4 - t3) * 1000, 1),
            "reference_features_ms": round(reference_ms, 1),
            "n_generated": n_generated,
            "n_real": len(reference.train),
            "torch_threads": torch.get_num_threads(),
            "fid": round(fid, 4), "kid": round(kid, 6), "is": round(inception, 4),
        }
        if with_precision_recall:
            t0 = time.perf_counter()
            real, radii = reference.manifold(n_generated, M.PR_NEIGHBOURS, M.DEFAULT_SEED)
            t1 = time.perf_counter()
            M.precision_recall(feats.features, real, real_radii=radii)
            out["precision_recall_ms"] = round((time.perf_counter() - t1) * 1000, 1)
            out["real_radii_ms"] = round((t1 - t0) * 1000, 1)
        return out
    finally:
        torch.set_num_threads(previous_threads)


def bench(quick: bool = False) -> dict[str, Any]:
    """For ``python -m studio.bench``: the best of a few runs (one when ``quick``)."""
    runs = [time_metrics(with_precision_recall=not quick) for _ in range(1 if quick else 3)]
    best = min(runs, key=lambda r: r["metrics_5000_ms"])
    for cold in ("reference_features_ms", "real_radii_ms"):  # cached after the first run
        if cold in runs[0]:
            best[cold] = runs[0][cold]
    return best


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=2))
