"""Fitting a picture of any size to a model's square input: crop, stretch or pad, and digits as MNIST's.

Every mode loads through ``studio.data.images.load_image`` (any mode, EXIF rotation, bombs
refused) and resizes before the pixels become floats, so a 40-Mpx photo never becomes a huge
array. A picture no larger than the target on both sides is never enlarged: it is centred on a
canvas of its border colour (MNIST's 28x28 digits become the 32x32 the digit models take).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from studio.data.images import ImageLoadError, load_image

FIT_MODES = ("crop", "stretch", "pad")
MNIST_BOX = 20  # MNIST digits are scaled to fit 20x20, then centred by mass in 28x28
MNIST_SIZE = 28


@dataclass(frozen=True)
class Fitted:
    """What fitting did to one picture, in words a panel can show."""

    original: tuple[int, int]  # (width, height), EXIF rotation applied
    size: tuple[int, int]  # (width, height) of the result
    mode: str
    inverted: bool = False  # a digit drawn dark on light was turned light on dark

    def describe(self) -> str:
        (w, h), (tw, th) = self.original, self.size
        if (w, h) == (tw, th):
            what = f"{w}x{h}, used as it is"
        elif self.mode == "digit":
            what = f"{w}x{h}: digit cropped to its ink, scaled into {MNIST_BOX}x{MNIST_BOX} and centred in {tw}x{th} (as MNIST)"
        elif w <= tw and h <= th:
            what = f"{w}x{h} centred on a {tw}x{th} canvas (not enlarged)"
        else:
            verb = {"crop": "scaled and centre-cropped", "stretch": "stretched", "pad": "scaled and padded"}[self.mode]
            what = f"{w}x{h} {verb} to {tw}x{th}"
        return what + ("; inverted (dark ink on light)" if self.inverted else "")


def picture_size(source: str | os.PathLike | bytes) -> tuple[int, int]:
    """(width, height) after the EXIF rotation, read from the header; ImageLoadError if unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated a quarter turn
                w, h = h, w
            return w, h
    except Exception:  # noqa: BLE001 - the loader names what is wrong with it
        load_image(source, channels=3)  # raises ImageLoadError with the reason
        raise ImageLoadError(f"{_name(source)}: cannot read the picture's size") from None


def _name(source) -> str:
    return "<clipboard>" if isinstance(source, (bytes, bytearray)) else str(source)


def _border_colour(pixels: np.ndarray) -> np.ndarray:
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.median(edge, axis=0)


def centre_on(pixels: np.ndarray, width: int, height: int, fill=None) -> np.ndarray:
    """(h, w[, 3]) pixels in the middle of a (height, width) canvas of their border colour (or ``fill``)."""
    h, w = pixels.shape[:2]
    fill = _border_colour(pixels) if fill is None else fill
    canvas = np.empty((height, width) + pixels.shape[2:], np.float32)
    canvas[...] = fill
    top, left = (height - h) // 2, (width - w) // 2
    canvas[top: top + h, left: left + w] = pixels
    return canvas


def fit_picture(source: str | os.PathLike | bytes, size: int, channels: int = 3,
                mode: str = "crop") -> tuple[np.ndarray, Fitted]:
    """One picture as float32 (size, size) (grey) or (size, size, 3) in [0, 1], and what was done.

    ``crop``: scaled so the shorter side fits, the middle kept; ``stretch``: scaled to the
    square, whatever its shape; ``pad``: scaled so the longer side fits, on its border colour.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit '{mode}' (choose {', '.join(FIT_MODES)})")
    w, h = picture_size(source)
    if w <= size and h <= size:
        pixels = load_image(source, channels=channels)
        return centre_on(pixels, size, size), Fitted((w, h), (size, size), mode)
    if mode == "stretch":
        return load_image(source, (size, size), channels), Fitted((w, h), (size, size), mode)
    scale = size / (min(w, h) if mode == "crop" else max(w, h))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    pixels = load_image(source, (tw, th), channels)
    if mode == "crop":
        top, left = (th - size) // 2, (tw - size) // 2
        pixels = pixels[top: top + size, left: left + size]
    else:
        pixels = centre_on(pixels, size, size)
    return np.ascontiguousarray(pixels, dtype=np.float32), Fitted((w, h), (size, size), mode)


def as_mnist_digit(gray: np.ndarray, size: int = 32) -> np.ndarray:
    """A light-on-dark grey digit of any size, framed as MNIST frames its digits, then padded to ``size``.

    The ink's bounding box is scaled to fit 20x20 and centred by its centre of mass in 28x28
    (LeCun et al.'s preprocessing); the 28x28 then sits in the middle of ``size`` x ``size``.
    A picture with no ink at all is only resized.
    """
    from PIL import Image

    if size < MNIST_SIZE:
        raise ValueError(f"an MNIST-framed digit needs at least {MNIST_SIZE}x{MNIST_SIZE}, not {size}")
    g = np.clip(gray.astype(np.float32), 0.0, 1.0)
    top = float(g.max())
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    ink = np.argwhere(g > 0.25 * top) if top > 0.05 else np.empty((0, 2))
    if len(ink):
        (y0, x0), (y1, x1) = ink.min(axis=0), ink.max(axis=0) + 1
        crop = g[y0:y1, x0:x1]
        scale = MNIST_BOX / max(crop.shape)
        tw, th = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
        digit = np.asarray(Image.fromarray(crop, mode="F").resize((tw, th), Image.Resampling.LANCZOS))
        digit = np.clip(digit, 0.0, 1.0)
        total = float(digit.sum()) or 1.0
        cy = float((digit.sum(axis=1) * np.arange(th)).sum()) / total
        cx = float((digit.sum(axis=0) * np.arange(tw)).sum()) / total
        y = int(np.clip(round(MNIST_SIZE / 2 - cy), 0, MNIST_SIZE - th))
        x = int(np.clip(round(MNIST_SIZE / 2 - cx), 0, MNIST_SIZE - tw))
        out[y: y + th, x: x + tw] = digit
    else:
        out = np.asarray(Image.fromarray(g, mode="F").resize((MNIST_SIZE, MNIST_SIZE), Image.Resampling.LANCZOS))
    m = (size - MNIST_SIZE) // 2
    padded = np.zeros((size, size), np.float32)
    padded[m: m + MNIST_SIZE, m: m + MNIST_SIZE] = np.clip(out, 0.0, 1.0)
    return padded
