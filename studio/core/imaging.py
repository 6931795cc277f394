"""Array <-> picture helpers shared by the engine, trainers and benchmark."""

from __future__ import annotations

import math

import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """One (C, H, W) float image in [0, 1] -> uint8 (H, W) or (H, W, 3)."""
    out = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out[0] if out.shape[0] == 1 else np.ascontiguousarray(out.transpose(1, 2, 0))


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> one uint8 grid image (gray or RGB)."""
    n, c, h, w = images.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((c, rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, y: y + h, x: x + w] = images[i]
    out = (np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)
