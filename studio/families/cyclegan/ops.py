"""CycleGAN requests and their handlers: translate pictures A->B or B->A, with the round trip.

* ``CycleTranslate`` (a renderer request): a batch of pictures (files or encoded bytes) in one
  direction -> ``CycleResult``: per picture what the model saw, its translation, the cycle
  reconstruction, the round-trip error, the digit classifier's reading of all three (digit
  models) and what was done to fit it; pictures that fail to load are listed, the rest go on.
* ``CycleTranslateFolder`` (a renderer stream) and ``translate_folder`` (a plain generator, for
  the command line): files and folders -> PNG files, batched, one ``FolderProgress`` per batch,
  per-file errors collected while the others continue; stopping the iteration cancels.
* ``translate_arrays``: (N, C, H, W) arrays through both generators (evaluation, benchmarks).

Fitting (``fit``): "pad", "crop" or "stretch" make one model-sized square ("pad" and "crop"
keep the aspect); a digit model frames a digit as MNIST does (ink scaled into 20x20, centred by
mass, light on dark: a dark-on-light drawing is inverted); "tile" translates the whole picture
in overlapping model-sized tiles blended back (studio.families.cyclegan.tiling).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from studio.core.imaging import to_uint8
from studio.data.fitting import FIT_MODES, Fitted, as_mnist_digit, centre_on, fit_picture, picture_size
from studio.data.images import IMAGE_SUFFIXES, ImageLoadError, load_image, save_png, to_digit_input
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


@dataclass(frozen=True)
class CycleTranslateFolder:
    target: Target
    inputs: tuple[str, ...]  # files and folders (folders are walked; their layout is kept under out_dir)
    out_dir: str
    direction: str = "AtoB"
    fit: str = "pad"
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 64
    save_reconstruction: bool = False  # also write NAME.cycle.png


@dataclass(frozen=True)
class FolderProgress:
    done: int  # inputs handled (written or failed)
    total: int
    written: tuple[str, ...]  # files written by this batch
    failed: tuple[tuple[str, str], ...]  # every failure so far: (input, one-line reason)
    images_per_s: float  # translated pictures per second so far (loading and writing included)
    seconds: float
    finished: bool = False


# ---- preparing pictures --------------------------------------------------------------------
@dataclass
class _Prepared:
    name: str
    pixels: np.ndarray  # float32 (C, H, W) in [0, 1]
    fitting: Fitting


def _model_facts(runtime) -> tuple[int, int, bool]:
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


def _translate_prepared(runtime, target: Target, items: list[_Prepared], direction: str,
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
    pairs, _, _ = _translate_prepared(runtime, target, items, direction, wait=True)
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


def _reason(exc: BaseException, name: str) -> str:
    """One line; a picture from the clipboard or a drop is called by its name, not "<clipboard>"."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return name + text[len("<clipboard>"):] if text.startswith("<clipboard>") else text


def translate(pool: RuntimePool, req: CycleTranslate) -> Output:
    """Translate ``req.sources``; a source that cannot load is listed in ``failed``, the rest translate.

    Raises ImageLoadError (one line, naming the first) only when none loads.
    """
    runtime = pool.get(req.target.checkpoint, family="cyclegan")
    size, channels, digits = _model_facts(runtime)
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
            failed.append((name, _reason(exc, name)))
    if not items:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ImageLoadError(failed[0][1] + more)
    pairs, model_ms, runner = _translate_prepared(runtime, req.target, items, req.direction, wait=False)
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


# ---- folders ------------------------------------------------------------------------------
def collect_inputs(inputs: Iterable[str | Path], out_dir: str | Path | None = None
                   ) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Files to translate, each with its output path relative to the output folder; and the inputs
    that are not there. Folders are walked (hidden files and anything under ``out_dir`` left out)
    and their layout kept; every other file in them is an input, so a stray text file is reported."""
    inputs = list(inputs)
    out = Path(out_dir).resolve() if out_dir is not None else None
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    for given in inputs:
        p = Path(given)
        if not p.exists():
            missing.append((str(given), "no such file or folder"))
        elif p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if out is not None and out in f.resolve().parents:
                    continue  # earlier outputs in a folder under the input: not inputs
                found.append((f, Path(p.name) / rel if len(inputs) > 1 else rel))
        else:
            found.append((p, Path(p.name)))
    return found, missing


def _output_names(files: list[tuple[Path, Path]]) -> list[Path]:
    """The PNG each input becomes, relative to the output folder: NAME.png, except where that
    name belongs to another input (a.jpg beside a.png: a.png keeps "a.png", a.jpg becomes "a.jpg.png")."""
    own = {rel for _, rel in files if rel.suffix.lower() == ".png"}
    names = []
    for _, rel in files:
        name = rel if rel.suffix.lower() == ".png" else rel.with_suffix(".png")
        if name in own and name != rel:
            name = rel.with_name(rel.name + ".png")
        names.append(name)
    return names


def translate_folder(pool: RuntimePool, target: Target, inputs: Iterable[str | Path], out_dir: str | Path,
                     direction: str = "AtoB", fit: str = "pad", overlap: int = DEFAULT_OVERLAP,
                     batch_size: int = 64, save_reconstruction: bool = False) -> Iterator[FolderProgress]:
    """Translate files and folders into PNGs under ``out_dir``, one FolderProgress per batch.

    A file that fails (not an image, truncated, unwritable output) is listed with its reason and
    the others go on. Raises ValueError (one line) for what stops everything: a bad direction or
    fit, an output folder that cannot be made.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}' (AtoB or BtoA)")
    if fit not in FITS:
        raise ValueError(f"unknown fit '{fit}' (choose {', '.join(FITS)})")
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    runtime = pool.get(target.checkpoint, family="cyclegan")
    size, channels, digits = _model_facts(runtime)
    out_dir = Path(out_dir)
    inputs = list(inputs)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    files, failed = collect_inputs(inputs, out_dir)
    names = _output_names(files)
    total = len(files) + len(failed)
    t0, done, translated = time.perf_counter(), len(failed), 0
    for start in range(0, len(files), batch_size):
        chunk = files[start: start + batch_size]
        items, outputs = [], []
        for (path, _), name in zip(chunk, names[start: start + batch_size]):
            try:
                items.append(prepare(str(path), str(path), size, channels, digits, fit, overlap))
                outputs.append(out_dir / name)
            except (ImageLoadError, ValueError, OSError) as exc:
                failed.append((str(path), _reason(exc, str(path))))
        written = []
        if items:
            pairs, _, _ = _translate_prepared(runtime, target, items, direction, wait=True)
            for item, (fake, rec), dest in zip(items, pairs, outputs):
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    written.append(str(save_png(to_uint8(fake), dest)))
                    if save_reconstruction:
                        save_png(to_uint8(rec), dest.with_name(dest.stem + ".cycle.png"))
                    translated += 1
                except OSError as exc:
                    failed.append((item.name, f"cannot write {dest} ({exc.strerror or exc})"))
        done += len(chunk)
        seconds = time.perf_counter() - t0
        yield FolderProgress(done, total, tuple(written), tuple(failed), translated / seconds if seconds > 0 else 0.0,
                             seconds, finished=done >= total)
    if not files:
        yield FolderProgress(done, total, (), tuple(failed), 0.0, time.perf_counter() - t0, finished=True)


def translate_folder_stream(pool: RuntimePool, req: CycleTranslateFolder) -> Iterator[Output]:
    """The renderer's view of ``translate_folder``: one Output per batch (cancel by superseding)."""
    for progress in translate_folder(pool, req.target, req.inputs, req.out_dir, req.direction, req.fit,
                                     req.overlap, req.batch_size, req.save_reconstruction):
        yield Output(None, progress, req.target.backend, req.target.device, final=progress.finished)


HANDLERS = {CycleTranslate: translate, CycleTranslateFolder: translate_folder_stream}


def register(renderer, pool: RuntimePool) -> None:
    """Register the CycleGAN handlers on a renderer (or a render bridge)."""
    for request_type, fn in HANDLERS.items():
        renderer.register(request_type, lambda req, fn=fn: fn(pool, req))


__all__ = [
    "BATCH", "CycleResult", "CycleTranslate", "CycleTranslateFolder", "DigitReading", "FITS", "FolderProgress",
    "Fitting", "Readings", "Target", "TranslatedImage", "classifier_path", "collect_inputs", "prepare",
    "read_digits", "register", "translate", "translate_arrays", "translate_folder", "translate_folder_stream",
]
