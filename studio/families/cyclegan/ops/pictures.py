"""Translating pictures: the ``CycleTranslate`` request, fitting, the generators, the classifier's readings.

A digit model frames each picture as MNIST does (ink scaled into 20x20, centred by mass, light on
dark: a dark-on-light drawing is inverted); other models fit it to their square by "pad",
"crop" or "stretch"; "tile" translates the whole picture in overlapping model-sized tiles blended
back (studio.families.cyclegan.tiling).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.imaging import to_uint8
from studio.data.fitting import FIT_MODES, Fitted, as_mnist_digit, centre_on, fit_picture, picture_size
from studio.data.images import ImageLoadError, load_image, to_digit_input
from studio.engine.renderer import Output
from studio.engine.requests import Target
from studio.engine.runtime import RuntimePool
from studio.families.cyclegan.graphs import DIRECTIONS
from studio.families.cyclegan.tiling import MAX_TILES, blend, split, tile_grid

FITS = FIT_MODES + ("tile",)
DEFAULT_OVERLAP = 8
DIGIT_LOAD_SIDE = 256  # a dropped digit photo is read at most this large before it is framed
BATCH = 256  # pictures (or tiles) per generator call


# ---- requests and what the handlers return -------------------------------------------------
@dataclass(frozen=True)
class CycleTranslate:
    target: Target  # a cyclegan checkpoint; extra role "classifier" overrides the shipped digit classifier
    sources: tuple[str | bytes, ...]  # file paths, or encoded image bytes (clipboard, a browser's drop)
    direction: str = "AtoB"  # or "BtoA"
    fit: str = "pad"  # "pad", "crop", "stretch" or "tile"
    overlap: int = DEFAULT_OVERLAP  # tile overlap in pixels (fit="tile")
    names: tuple[str, ...] = ()  # what messages call each source (default: its path, or "image N")


@dataclass(frozen=True)
class DigitReading:
    """What the frozen digit classifier reads: the most likely digit and its softmax probability."""

    label: int
    confidence: float


@dataclass(frozen=True)
class Readings:
    input: DigitReading
    translation: DigitReading
    reconstruction: DigitReading


@dataclass(frozen=True)
class Fitting:
    """How a picture was brought to the model."""

    original: tuple[int, int]  # (width, height), EXIF rotation applied
    size: tuple[int, int]  # (width, height) the model translated
    mode: str  # "pad", "crop", "stretch", "digit" or "tile"
    description: str  # one line for the panel, e.g. "640x480 in 567 tiles of 32x32 (overlap 8), blended"
    inverted: bool = False  # a digit drawn dark on light was turned light on dark
    tiles: int = 0
    overlap: int = 0


@dataclass(frozen=True)
class TranslatedImage:
    name: str
    input: np.ndarray  # uint8 (H, W) or (H, W, 3): what the model saw
    translation: np.ndarray  # uint8, same shape
    reconstruction: np.ndarray  # uint8, same shape: the translation translated back
    cycle_l1: float  # mean |reconstruction - input| on the 0..1 scale
    translation_l1: float  # mean |translation - input|: the round trip should come back closer than this
    readings: Readings | None  # None: not a digit model
    fitting: Fitting


@dataclass(frozen=True)
class CycleResult:
    direction: str
    images: tuple[TranslatedImage, ...]
    failed: tuple[tuple[str, str], ...]  # (name, one-line reason) of the sources that did not load
    model_ms: float  # both generators, all pictures
    classifier_ms: float
    backend: str  # what ran the generators ("onnx" or "torch")


# ---- preparing pictures --------------------------------------------------------------------
@dataclass
class _Prepared:
    name: str
    pixels: np.ndarray  # float32 (C, H, W) in [0, 1]
    fitting: Fitting


def model_facts(runtime) -> tuple[int, int, bool]:
    cfg = runtime.config
    return int(cfg["image_size"]), int(cfg["channels"]), bool(cfg.get("digits", False)) and int(cfg["channels"]) == 1


def _chw(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1), dtype=np.float32)


def _load_bounded(source, channels: int, side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The picture, scaled down (never up) so its longer side is at most ``side``; and its original size."""
    w, h = picture_size(source)
    scale = min(1.0, side / max(w, h))
    size = None if scale >= 1.0 else (max(1, round(w * scale)), max(1, round(h * scale)))
    return load_image(source, size, channels), (w, h)


def prepare(source: str | bytes, name: str, size: int, channels: int, digits: bool, fit: str,
            overlap: int = DEFAULT_OVERLAP) -> _Prepared:
    """One picture as the model takes it; ImageLoadError or ValueError says why it cannot."""
    if fit not in FITS:
        raise ValueError(f"unknown fit '{fit}' (choose {', '.join(FITS)})")
    if fit == "tile":
        return _prepare_tiles(source, name, size, channels, digits, overlap)
    if digits:
        grey, original = _load_bounded(source, 1, DIGIT_LOAD_SIDE)
        light = to_digit_input(grey)
        inverted = not np.array_equal(light, grey)
        pixels = as_mnist_digit(light, size)
        fitted = Fitted(original, (size, size), "digit", inverted)
        return _Prepared(name, pixels[None], Fitting(original, (size, size), "digit", fitted.describe(), inverted))
    pixels, fitted = fit_picture(source, size, channels, fit)
    return _Prepared(name, _chw(pixels), Fitting(fitted.original, fitted.size, fit, fitted.describe()))


def _prepare_tiles(source, name: str, tile: int, channels: int, digits: bool, overlap: int) -> _Prepared:
    if not 0 <= overlap < tile:
        raise ValueError(f"the tile overlap must be in [0, {tile}) pixels, not {overlap}")
    w, h = picture_size(source)
    step = tile - overlap
    # More tiles than MAX_TILES: scale the picture down until they fit.
    scale = min(1.0, (MAX_TILES ** 0.5) * step / max(1.0, (w * h) ** 0.5))
    size = None if scale >= 1.0 else (max(1, round(w * scale)), max(1, round(h * scale)))
    pixels = load_image(source, size, channels)
    inverted = False
    if digits:
        light = to_digit_input(pixels)
        inverted = not np.array_equal(light, pixels)
        pixels = light
    ph, pw = pixels.shape[:2]
    if ph < tile or pw < tile:  # smaller than one tile: centred on its border colour
        pixels = centre_on(pixels, max(pw, tile), max(ph, tile))
        ph, pw = pixels.shape[:2]
    grid = tile_grid(ph, pw, tile, overlap)
    scaled = f", scaled to {pw}x{ph} first" if size is not None else ""
    text = (f"{w}x{h}{scaled}: {grid.count} tile{'s' if grid.count > 1 else ''} of {tile}x{tile} "
            f"(overlap {overlap}), blended" + ("; inverted (dark ink on light)" if inverted else ""))
    return _Prepared(name, _chw(pixels), Fitting((w, h), (pw, ph), "tile", text, inverted, grid.count, overlap))


# ---- running the generators ----------------------------------------------------------------
def _run(runtime, graph: str, images: np.ndarray, target: Target, wait: bool):
    parts, runner = [], None
    for start in range(0, len(images), BATCH):
        out, runner = runtime.run(graph, {"image": images[start: start + BATCH]}, target.backend, target.device,
                                  wait=wait)
        parts.append(out["translated"])
    return np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32), runner


def translate_prepared(runtime, target: Target, items: list[_Prepared], direction: str,
                        wait: bool) -> tuple[list[tuple[np.ndarray, np.ndarray]], float, object]:
    """(translation, reconstruction) of each item, both (C, H, W); model milliseconds; the runner."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}' (AtoB or BtoA)")
    there = DIRECTIONS[direction]
    back = DIRECTIONS["BtoA" if direction == "AtoB" else "AtoB"]
    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(items)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        key = ("tile", item.fitting.overlap) if item.fitting.mode == "tile" else item.pixels.shape
        groups[key].append(i)
    ms, runner = 0.0, None
    for key, members in groups.items():
        if key[0] == "tile":
            tile = int(runtime.config["image_size"])
            grids = [tile_grid(items[i].pixels.shape[1], items[i].pixels.shape[2], tile, key[1]) for i in members]
            batch = np.concatenate([split(items[i].pixels, g) for i, g in zip(members, grids)])
        else:
            batch = np.stack([items[i].pixels for i in members])
        t0 = time.perf_counter()
        fake, runner = _run(runtime, there, batch, target, wait)
        rec, _ = _run(runtime, back, fake, target, wait)
        ms += (time.perf_counter() - t0) * 1000.0
        if key[0] == "tile":
            start = 0
            for i, g in zip(members, grids):
                part = slice(start, start + g.count)
                results[i] = (blend(fake[part], g), blend(rec[part], g))
                start += g.count
        else:
            for k, i in enumerate(members):
                results[i] = (fake[k], rec[k])
    return results, ms, runner


def translate_arrays(runtime, images: np.ndarray, direction: str = "AtoB", backend: str = "onnx",
                     device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(translations, reconstructions) of float32 (N, C, H, W) pictures in [0, 1], already model-shaped."""
    target = Target(str(runtime.path), backend, device)
    items = [_Prepared("", np.ascontiguousarray(x, dtype=np.float32), Fitting((0, 0), (0, 0), "as-is", ""))
             for x in images]
    pairs, _, _ = translate_prepared(runtime, target, items, direction, wait=True)
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# ---- the digit classifier's readings ----------------------------------------------------------
def _to_28(images: list[np.ndarray]) -> np.ndarray:
    """Grey pictures (1, H, W) -> (N, 1, 28, 28) as the classifier's graph takes them."""
    from PIL import Image

    out = []
    for x in images:
        g = x[0]
        h, w = g.shape
        if (h, w) == (28, 28):
            out.append(g)
        elif h == w and h > 28 and (h - 28) % 2 == 0 and h <= 36:  # padded digits: the middle 28x28
            m = (h - 28) // 2
            out.append(g[m: m + 28, m: m + 28])
        else:
            out.append(np.asarray(Image.fromarray(g, mode="F").resize((28, 28), Image.Resampling.BILINEAR)))
    return np.stack(out)[:, None].astype(np.float32)


def classifier_path(target: Target) -> str | None:
    """The digit classifier a request uses: its "classifier" role, or the shipped one if present."""
    if "classifier" in target.roles:
        return target.checkpoint_for("classifier")
    from studio.core.paths import shipped_checkpoint_dir

    path = shipped_checkpoint_dir() / "digit_classifier.safetensors"
    return str(path) if path.exists() else None


def read_digits(pool: RuntimePool, target: Target, images: list[np.ndarray]) -> list[DigitReading]:
    """The classifier's reading of grey pictures (1, H, W) of any size (resized to 28x28 unless padded digits)."""
    path = classifier_path(target)
    if path is None or not images:
        return []
    out, _ = pool.get(path, family="classifier").run("classify", {"image": _to_28(images)}, target.backend,
                                                     target.device, wait=False)
    logits = out["logits"].astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return [DigitReading(int(p.argmax()), float(p.max())) for p in probs]


# ---- the handlers ----------------------------------------------------------------------
def _source_name(source, names: tuple[str, ...], i: int) -> str:
    if i < len(names) and names[i]:
        return names[i]
    return str(source) if isinstance(source, (str, Path)) else f"image {i + 1}"


def failure_reason(exc: BaseException, name: str) -> str:
    """One line; a picture from the clipboard or a drop is called by its name, not "<clipboard>"."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return name + text[len("<clipboard>"):] if text.startswith("<clipboard>") else text


def translate(pool: RuntimePool, req: CycleTranslate) -> Output:
    """Translate ``req.sources``; a source that cannot load is listed in ``failed``, the rest translate.

    Raises ImageLoadError (one line, naming the first) only when none loads.
    """
    runtime = pool.get(req.target.checkpoint, family="cyclegan")
    size, channels, digits = model_facts(runtime)
    if req.fit not in FITS:
        raise ValueError(f"unknown fit '{req.fit}' (choose {', '.join(FITS)})")
    if req.direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{req.direction}' (AtoB or BtoA)")
    if not req.sources:
        raise ValueError("nothing to translate: no pictures were given")
    items, failed = [], []
    for i, source in enumerate(req.sources):
        name = _source_name(source, req.names, i)
        try:
            items.append(prepare(source, name, size, channels, digits, req.fit, req.overlap))
        except (ImageLoadError, ValueError, OSError) as exc:
            failed.append((name, failure_reason(exc, name)))
    if not items:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ImageLoadError(failed[0][1] + more)
    pairs, model_ms, runner = translate_prepared(runtime, req.target, items, req.direction, wait=False)
    readings: list[Readings | None] = [None] * len(items)
    classifier_ms = 0.0
    if digits:
        t0 = time.perf_counter()
        flat = read_digits(pool, req.target, [x for item, (f, r) in zip(items, pairs) for x in (item.pixels, f, r)])
        classifier_ms = (time.perf_counter() - t0) * 1000.0
        if flat:
            readings = [Readings(*flat[3 * k: 3 * k + 3]) for k in range(len(items))]
    images = tuple(
        TranslatedImage(item.name, to_uint8(item.pixels), to_uint8(fake), to_uint8(rec),
                        float(np.abs(rec - item.pixels).mean()), float(np.abs(fake - item.pixels).mean()),
                        reading, item.fitting)
        for item, (fake, rec), reading in zip(items, pairs, readings))
    first = images[0]
    strip = np.concatenate([first.input, _gap(first.input), first.translation, _gap(first.input),
                            first.reconstruction], axis=1)
    payload = CycleResult(req.direction, images, tuple(failed), model_ms, classifier_ms, runner.name)
    return Output.ran(runner, strip, payload)


def _gap(image: np.ndarray) -> np.ndarray:
    return np.zeros((image.shape[0], 2) + image.shape[2:], np.uint8)
