"""Recoloured digits: the MNIST strokes with random stroke and background colours and stroke widths.

Made from the grey digits at load time (never stored), so that a StyleGAN has
something besides shape to put in its fine styles: style mixing then visibly
moves shape from one source and colour from the other. ``grey_digits`` maps
any such picture back to a light-on-dark grey digit the same way for real and
generated images (the distance of each pixel's colour from the border colour),
which is what the digit classifier of the evaluation expects.
"""

from __future__ import annotations

import numpy as np

MIN_CONTRAST = 0.6  # Euclidean RGB distance between stroke and background colours, in [0, sqrt(3)]
# Distances below this share of the strongest are background: a generated background is never as
# flat as a painted one, and the digit classifier reads a faint grey veil as strokes.
BACKGROUND_FLOOR = 0.25


def _dilate(a: np.ndarray, square: bool) -> np.ndarray:
    """Grey dilation of (N, H, W) by a plus (or 3x3 square) structuring element."""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    h, w = a.shape[1:]
    shifts = [(0, 1), (1, 0), (1, 2), (2, 1)] + ([(0, 0), (0, 2), (2, 0), (2, 2)] if square else [])
    out = a.copy()
    for dy, dx in shifts:
        np.maximum(out, p[:, dy: dy + h, dx: dx + w], out=out)
    return out


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    bad = np.linalg.norm(fg - bg, axis=1) < MIN_CONTRAST
    while bad.any():  # redraw the pairs too close to tell apart
        fg[bad], bg[bad] = rng.random((int(bad.sum()), 3)), rng.random((int(bad.sum()), 3))
        bad = np.linalg.norm(fg - bg, axis=1) < MIN_CONTRAST
    return fg.astype(np.float32), bg.astype(np.float32)


def recolour_digits(images: np.ndarray, seed: int = 0, size: int = 32) -> np.ndarray:
    """Grey digits (N, 1, H, W) in [0, 1] -> RGB (N, 3, size, size): padded, widened or thinned, coloured.

    Stroke widths: thin (ink**2.5), as drawn, bold (plus dilation), heavy (3x3 dilation).
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"recolouring takes grey digits shaped (N, 1, H, W), got {images.shape}")
    n, _, h, w = images.shape
    if h > size or w > size:
        raise ValueError(f"digits of {w}x{h} do not fit {size}x{size}")
    rng = np.random.default_rng(seed)
    ink = np.zeros((n, size, size), np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    ink[:, top: top + h, left: left + w] = images[:, 0]
    width = rng.integers(0, 4, n)
    out = ink.copy()
    out[width == 0] = ink[width == 0] ** 2.5
    out[width == 2] = _dilate(ink[width == 2], square=False)
    out[width == 3] = _dilate(ink[width == 3], square=True)
    fg, bg = _colours(rng, n)
    a = out[:, None]
    return (bg[:, :, None, None] * (1.0 - a) + fg[:, :, None, None] * a).astype(np.float32)


def grey_digits(images: np.ndarray) -> np.ndarray:
    """RGB digits (N, 3, H, W) in [0, 1] -> grey (N, 1, H, W): light strokes on black.

    Each pixel's distance from the image's border colour (the background), scaled
    so the farthest pixel is 1, with the lowest ``BACKGROUND_FLOOR`` of that range
    cut to black: the same map for real and generated pictures.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images shaped (N, 3, H, W), got {images.shape}")
    x = images.astype(np.float32)
    border = np.concatenate([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], axis=2)
    background = np.median(border, axis=2)  # (N, 3)
    dist = np.linalg.norm(x - background[:, :, None, None], axis=1)
    top = dist.reshape(len(x), -1).max(axis=1)
    scaled = dist / np.maximum(top, 1e-6)[:, None, None]
    grey = np.clip((scaled - BACKGROUND_FLOOR) / (1.0 - BACKGROUND_FLOOR), 0.0, 1.0)
    return grey[:, None].astype(np.float32)
