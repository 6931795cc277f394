"""The one image loader: every image a user hands the app goes through here.

Any mode Pillow reads (palette, RGBA, 16-bit, CMYK, grayscale, ...) comes out
as float32 in [0, 1], EXIF orientation applied, in the channel count the model
wants. Decompression bombs and unreadable files raise ImageLoadError with a
message a person can act on.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
# Pillow's own default is ~89 Mpx with only a warning; we refuse at 64 Mpx outright.
MAX_PIXELS = 64_000_000


class ImageLoadError(Exception):
    """The input is not a usable image; the message says why."""


def _open(source: str | os.PathLike | bytes):
    from PIL import Image

    name = "<clipboard>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        p = Path(source)
        if not p.exists():
            raise ImageLoadError(f"{name}: no such file")
        if p.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image")
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    # Pillow's limit is process-wide, so it is set once at start-up (studio.engine.setup),
    # never here: this size check, made before any pixel is decoded, is what refuses.
    try:
        img = Image.open(stream)
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageLoadError(
                f"{name}: {w}x{h} pixels is too large (limit {MAX_PIXELS // 1_000_000} Mpx)"
            )
        img.seek(0)  # first frame of an animation
        img.load()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name}: refused as a possible decompression bomb ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"{name}: the image is truncated or corrupt ({exc})") from exc
    return img, name


def _normalise_mode(img):
    """Any Pillow mode -> an 'RGB' image, or an 'F' image in [0, 1] for high bit depths."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        if mode == "F":
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        else:
            top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
            arr = np.clip(arr / top, 0.0, 1.0)
        return Image.fromarray(arr.astype(np.float32), mode="F")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: transparent drawings are usually dark strokes on nothing.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # handles CMYK, YCbCr, LAB, palette, 1-bit, L


def load_image(
    source: str | os.PathLike | bytes,
    size: tuple[int, int] | None = None,
    channels: int = 3,
) -> np.ndarray:
    """Load any image as float32 in [0, 1], shape (H, W) for 1 channel or (H, W, 3).

    ``size`` is (width, height); the image is resized with antialiasing.
    """
    from PIL import Image, ImageOps

    img, name = _open(source)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not lose the picture
        pass
    img = _normalise_mode(img)
    if size is not None and img.size != tuple(size):
        # Resize before converting to floats: a 40-Mpx photo never becomes a 500 MB array.
        img = img.resize(tuple(size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if img.mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:
        rgb = np.asarray(img, dtype=np.float32) / 255.0
    if channels == 1:
        return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)
    if channels != 3:
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    return np.ascontiguousarray(rgb)


def to_digit_input(gray: np.ndarray) -> np.ndarray:
    """Make a grayscale picture look like an MNIST digit: light strokes on black.

    Photos and drawings usually have a light background; MNIST's is black.
    The border's median decides whether to invert.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray
    return gray.astype(np.float32)


def save_png(image_u8: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) image as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(image_u8)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
