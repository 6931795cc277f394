"""What the evaluation asks of a DCGAN: samples from z ~ N(0, I) through its ``generate`` graph.

(The latent explorer's requests for both GAN families live with the StyleGAN, in
studio.families.stylegan.ops.)
"""

from __future__ import annotations

import numpy as np

from studio.engine.latent import sample_from_prior


def sample_for_evaluation(runtime, n: int, seed: int = 0, backend: str = "onnx", device: str = "auto",
                          batch_size: int = 500, progress=None) -> tuple[np.ndarray, float]:
    """``n`` images generated from z ~ N(0, I) (no truncation: the fair setting for FID): float32
    (n, C, H, W) in [0, 1], and ms per image, timing only the generator calls."""
    return sample_from_prior(runtime, "generate", int(runtime.config.get("z_dim", 64)), n, seed, backend, device,
                             batch_size, progress)
