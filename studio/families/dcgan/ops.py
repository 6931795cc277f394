"""What the evaluation asks of a DCGAN: samples from z ~ N(0, I) through its ``generate`` graph.

(The latent explorer's requests for both GAN families live with the StyleGAN, in
studio.families.stylegan.ops.)
"""

from __future__ import annotations

import time

import numpy as np


def sample_for_evaluation(runtime, n: int, seed: int = 0, backend: str = "onnx", device: str = "auto",
                          batch_size: int = 500, progress=None) -> tuple[np.ndarray, float]:
    """``n`` images generated from z ~ N(0, I) (no truncation: the fair setting for FID): float32
    (n, C, H, W) in [0, 1], and ms per image, timing only the generator calls."""
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    z = np.random.default_rng(int(seed)).standard_normal((int(n), int(runtime.config.get("z_dim", 64))),
                                                         dtype=np.float32)
    runtime.run("generate", {"z": z[:1]}, backend, device)  # load the backend before the clock starts
    parts, ms = [], 0.0
    for start in range(0, len(z), batch_size):
        t0 = time.perf_counter()
        out, _ = runtime.run("generate", {"z": z[start: start + batch_size]}, backend, device)
        ms += (time.perf_counter() - t0) * 1000.0
        parts.append(out["image"])
        if progress is not None:
            progress(min(start + batch_size, len(z)), len(z))
    return np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32), ms / len(z)
