"""The one image loader: every image a user hands the app goes through here.

Any mode Pillow reads (palette, RGBA, 16-bit, CMYK, grayscale, ...) comes out
as float32 in [0, 1], EXIF orientation applied, in the channel count the model
wants. Decompression bombs and unreadable files raise ImageLoadError with a
message a person can act on.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
# Pillow's own default is ~89 Mpx with only a warning (an error at twice that); we refuse at 64 Mpx.
MAX_PIXELS = 64_000_000


# Set once, when the loader is first imported (warning filters are process-wide, so never per call
# from a render thread): Pillow's own bomb warning (~89 Mpx) is looser than our refusal below, and
# its warnings about damaged metadata it skips are not the user's concern: the picture loads or
# gets our message.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")


class ImageLoadError(Exception):
    """The input is not a usable image; the message says why."""


# First bytes of the formats Pillow reads here: a file that starts like one but will not open is
# damaged, not "not an image".
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
    b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WebP",
}


def _open(source: str | os.PathLike | bytes):
    from PIL import Image

    name = "<clipboard>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        head, stream = bytes(source[:1024]), io.BytesIO(source)
    else:
        p = Path(source)
        if not p.exists():
            raise ImageLoadError(f"{name}: no such file")
        if p.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image")
        try:
            with open(p, "rb") as f:
                head = f.read(1024)
        except OSError as exc:
            raise ImageLoadError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
        stream = source
    if not head:
        raise ImageLoadError(f"{name}: empty file")
    if _is_svg(head, name):
        raise ImageLoadError(f"{name}: an SVG drawing (vector graphics); export it as PNG first")
    kind = next((k for signature, k in _SIGNATURES.items() if head.startswith(signature)), None)
    try:
        img = Image.open(stream)
        img.seek(0)  # first frame of an animation
        _refuse_too_large(name, img.size[0] * img.size[1], img.size)
        img.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refused before we saw the size
        found = re.search(r"\((\d+) pixels\)", str(exc))
        _refuse_too_large(name, int(found.group(1)) if found else MAX_PIXELS + 1)
        raise
    except Image.UnidentifiedImageError as exc:
        if kind:
            raise ImageLoadError(f"{name}: the {kind} image is truncated or corrupt") from exc
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from exc
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, SyntaxError, struct.error, ...)
        raise ImageLoadError(f"{name}: the {kind or 'image'}{' image' if kind else ''} is truncated or "
                             f"corrupt ({_one_line(exc)})") from exc
    return img, name


def _refuse_too_large(name: str, pixels: int, size: tuple[int, int] | None = None) -> None:
    if pixels > MAX_PIXELS:
        dims = f"{size[0]}x{size[1]} pixels" if size else f"{pixels / 1e6:.0f} Mpx"
        raise ImageLoadError(f"{name}: {dims} is too large (limit {MAX_PIXELS // 1_000_000} Mpx); "
                             f"refused as a possible decompression bomb")


def _is_svg(head: bytes, name: str) -> bool:
    if name.lower().endswith((".svg", ".svgz")):
        return True
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


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
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _contrasting_background(rgba))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # handles CMYK, YCbCr, LAB, palette, 1-bit, L


def _contrasting_background(rgba) -> tuple[int, int, int, int]:
    """White behind dark drawings, black behind light ones: a transparent drawing's strokes must stay
    visible. The opaque pixels' brightness, weighted by alpha, decides; this also covers drawings
    whose colour is uniform and whose alpha alone carries the ink."""
    from PIL import Image

    w, h = rgba.size
    if w * h > 512 * 512:  # a nearest-neighbour sample decides as well, without a huge float copy
        scale = 512 / max(w, h)
        rgba = rgba.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.NEAREST)
    arr = np.asarray(rgba, dtype=np.float32)
    alpha = arr[..., 3] / 255.0
    weight = float(alpha.sum())
    if weight == 0.0:
        return (255, 255, 255, 255)
    luma = arr[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    ink = float((luma * alpha).sum()) / weight
    return (0, 0, 0, 255) if ink > 127.5 else (255, 255, 255, 255)


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
