"""Sample digits the panel translates before anything is dropped (and on "Sample digit"), without Qt.

A handwritten sample is one of the last 1,000 shared MNIST digits (the ones the project holds
out); a printed one is rendered from a set the shipped model never trained on. Both come as
PNG bytes with a name, the same way a picture pasted from the clipboard reaches the model.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.core.paths import default_mnist

HELD_OUT = 1000  # the last MNIST digits, never trained on
PRINTED_SAMPLE_SEED = 7  # not the training set's seed: digits the model has not seen
DIGIT_DOMAINS = ("handwritten", "printed")


@lru_cache(maxsize=1)
def _mnist_held_out(folder: str) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """(uint8 digits (N, 28, 28), labels, index of the first) of the held-out MNIST digits, or None."""
    from studio.data.datasets import DatasetError, read_idx

    path = Path(folder)
    images = sorted(path.glob("*images-idx3*")) if path.is_dir() else []
    if not images:
        return None
    try:
        digits = read_idx(images[0])
        labels_files = sorted(path.glob("*labels-idx1*"))
        labels = read_idx(labels_files[0]) if labels_files else None
    except DatasetError:
        return None
    if digits.ndim != 3 or digits.dtype != np.uint8 or len(digits) == 0:
        return None
    start = max(0, len(digits) - HELD_OUT)
    return digits[start:], (labels[start:] if labels is not None and len(labels) == len(digits) else None), start


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def available(domain: str) -> bool:
    if domain == "handwritten":
        return _mnist_held_out(str(default_mnist())) is not None
    return domain == "printed"


def sample_digit(domain: str, index: int) -> tuple[bytes, str] | None:
    """Digit number ``index`` (wrapping) of a built-in domain as (PNG bytes, name); None if there is none."""
    if domain == "handwritten":
        held = _mnist_held_out(str(default_mnist()))
        if held is None:
            return None
        digits, labels, start = held
        k = index % len(digits)
        label = f" {int(labels[k])}" if labels is not None else ""
        return _png(digits[k]), f"handwritten{label} (MNIST #{start + k})"
    if domain == "printed":
        from studio.data.printed import DIGIT, render_printed

        images, labels = render_printed(PRINTED_SAMPLE_SEED, index, 1, DIGIT)
        pixels = np.clip(images[0, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return _png(pixels), f"printed {int(labels[0])} (sample {index})"
    return None
