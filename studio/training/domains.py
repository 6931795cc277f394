"""Unpaired image domains for translation models (CycleGAN): built-in digit sets or any folder.

A domain is named by a string:

* ``"handwritten"``: the shared MNIST digits (28x28, padded to the model's size);
* ``"printed"``: digits rendered by ``studio.data.printed`` (lazily, batch by batch);
* a path: an image folder whose pictures may have any sizes and modes (each fitted to the
  model's square by ``crop``, ``stretch`` or ``pad``, decoded once and then kept), or an
  IDX file/folder or .npz as ``open_images`` reads them.

Every domain comes out as an ImageSource of float32 (C, size, size) in [0, 1], so the
trainer's BatchStreams (one per domain, independent shuffles, exact resume) serve them.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from studio.data.datasets import DatasetError
from studio.data.fitting import FIT_MODES, fit_picture
from studio.data.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageLoadError
from studio.data.printed import render_printed
from studio.training.data import Batch, ImageSource, open_images

HANDWRITTEN = "handwritten"
PRINTED = "printed"
DIGIT_DOMAINS = (HANDWRITTEN, PRINTED)
PRINTED_COUNT = 10_000  # as many as the shared MNIST digits
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class PrintedDigits(ImageSource):
    """``count`` printed digits of set ``seed``, rendered the first time a batch needs them."""

    has_labels = True

    def __init__(self, seed: int = 0, count: int = PRINTED_COUNT, size: int = 32, start: int = 0):
        self.seed, self.count, self.size, self.start = int(seed), int(count), int(size), int(start)
        self.shape = (1, self.size, self.size)
        self.name = f"printed digits (seed {self.seed})"
        self.skipped = []
        self._images = np.zeros((self.count, 1, self.size, self.size), np.float32)
        self._labels = np.zeros(self.count, np.int64)
        self._done = np.zeros(self.count, bool)

    def __len__(self) -> int:
        return self.count

    def _render(self, indices: np.ndarray) -> None:
        todo = np.unique(indices[~self._done[indices]])
        for i in todo:  # one by one: digit i depends on (seed, start + i) alone
            image, label = render_printed(self.seed, self.start + int(i), 1, self.size)
            self._images[i], self._labels[i] = image[0], label[0]
        self._done[todo] = True

    def __getitems__(self, indices) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        self._render(idx)
        return Batch(torch.from_numpy(self._images[idx]), torch.from_numpy(self._labels[idx]))

    def split(self, n_first: int):
        return (PrintedDigits(self.seed, n_first, self.size, self.start),
                PrintedDigits(self.seed, self.count - n_first, self.size, self.start + n_first))


class FittedImageFolder(ImageSource):
    """A folder of pictures of any sizes, each fitted to (channels, size, size) when first read."""

    def __init__(self, files: list[Path], channels: int, size: int, fit: str, name: str,
                 skipped: list[tuple[str, str]] | None = None, grey: bool = False):
        self.files = list(files)
        self.channels, self.size, self.fit = int(channels), int(size), fit
        self.shape = (self.channels, self.size, self.size)
        self.name = name
        self.grey = grey  # every picture is grey (what a model's channel count is chosen from)
        self.has_labels = False
        self.skipped = list(skipped or [])
        self._cache: dict[int, np.ndarray] = {}

    @classmethod
    def scan(cls, folder: Path, size: int, fit: str, channels: int | None = None) -> "FittedImageFolder":
        """Read every picture's header; unreadable files are skipped and listed, none usable is an error."""
        from PIL import Image

        folder = Path(folder)
        if fit not in FIT_MODES:
            raise DatasetError(f"unknown fit '{fit}' (choose {', '.join(FIT_MODES)})")
        try:
            entries = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        except OSError as exc:
            raise DatasetError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from exc
        files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise DatasetError(f"{folder}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        skipped = [(p.relative_to(folder).as_posix(), f"not an image file ({p.suffix or 'no extension'})")
                   for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES]
        good, modes = [], []
        for p in files:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(p) as im:
                        im.verify()  # reads the file through: a truncated file fails here, not mid-run
                    with Image.open(p) as im:
                        if im.size[0] * im.size[1] > MAX_PIXELS:
                            raise ValueError(f"{im.size[0]}x{im.size[1]} pixels is too large "
                                             f"(limit {MAX_PIXELS // 1_000_000} Mpx)")
                        modes.append(im.mode)
            except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
                skipped.append((p.relative_to(folder).as_posix(), f"unreadable ({' '.join(str(exc).split())[:160]})"))
                continue
            good.append(p)
        if not good:
            raise DatasetError(f"{folder}: no usable images: all {len(files)} failed to load "
                               f"(e.g. {skipped[-1][0]}: {skipped[-1][1]})")
        grey = all(m in _GREY_MODES for m in modes) or _all_grey(good)
        return cls(good, channels or (1 if grey else 3), size, fit, folder.name, sorted(skipped), grey)

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> np.ndarray:
        if i not in self._cache:
            try:
                pixels, _ = fit_picture(self.files[i], self.size, self.channels, self.fit)
            except ImageLoadError as exc:
                raise DatasetError(f"bad image in dataset: {exc}") from exc
            self._cache[i] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1).copy()
        return self._cache[i]

    def __getitems__(self, indices) -> Batch:
        return Batch(torch.from_numpy(np.stack([self._decode(int(i)) for i in indices])), None)

    def split(self, n_first: int):
        def part(sl):
            return FittedImageFolder(self.files[sl], self.channels, self.size, self.fit, self.name, grey=self.grey)
        return part(slice(0, n_first)), part(slice(n_first, None))


def _all_grey(files: list[Path], sample: int = 32) -> bool:
    """Whether the first ``sample`` colour files are grey in fact (R = G = B)."""
    from studio.data.images import load_image

    for p in files[:sample]:
        try:
            rgb = load_image(p, size=(64, 64), channels=3)
        except ImageLoadError:
            continue
        if not (np.allclose(rgb[..., 0], rgb[..., 1], atol=2 / 255) and np.allclose(rgb[..., 1], rgb[..., 2], atol=2 / 255)):
            return False
    return True


class Reshaped(ImageSource):
    """Another source's images brought to (channels, size, size): smaller ones centred (never enlarged,
    so MNIST's 28x28 digits are padded to 32x32 as the other digit families take them), larger ones
    resized, grey repeated to RGB or RGB averaged to grey."""

    def __init__(self, inner: ImageSource, channels: int, size: int):
        self.inner, self.channels, self.size = inner, int(channels), int(size)
        self.shape = (self.channels, self.size, self.size)
        self.name = inner.name
        self.has_labels = inner.has_labels
        self.skipped = list(inner.skipped)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitems__(self, indices) -> Batch:
        batch = self.inner.__getitems__(indices)
        return Batch(reshape_images(batch.images, self.channels, self.size), batch.labels)

    def split(self, n_first: int):
        a, b = self.inner.split(n_first)
        return Reshaped(a, self.channels, self.size), Reshaped(b, self.channels, self.size)


def reshape_images(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, channels, size, size), as ``Reshaped`` describes."""
    if x.shape[1] != channels:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    h, w = x.shape[-2:]
    if h <= size and w <= size:
        if (h, w) == (size, size):
            return x.contiguous()
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(x, (left, size - w - left, top, size - h - top))
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)


def domain_kind(spec: str) -> str:
    """"handwritten", "printed" or "path"."""
    return spec if spec in DIGIT_DOMAINS else "path"


@lru_cache(maxsize=8)
def _scan_cached(folder: str, mtime_ns: int, size: int, fit: str) -> FittedImageFolder:
    return FittedImageFolder.scan(Path(folder), size, fit)


def open_domain(spec: str, size: int, fit: str = "crop", seed: int = 0,
                main: ImageSource | None = None) -> ImageSource:
    """The images of domain ``spec`` (see the module's docstring), before channels are settled.

    ``spec`` "" is ``main`` (the run's own dataset). Raises DatasetError with what to fix.
    """
    if spec == "":
        if main is None:
            raise DatasetError("no dataset for this domain")
        return main
    if spec == HANDWRITTEN:
        return open_images(None)
    if spec == PRINTED:
        return PrintedDigits(seed, PRINTED_COUNT, max(size, 28))
    path = Path(os.path.expanduser(spec))
    if not path.exists():
        raise DatasetError(f"{spec}: no such file or folder (a domain is '{HANDWRITTEN}', '{PRINTED}' "
                           "or a folder of images)")
    if path.is_dir() and not any("idx" in q.name for q in path.iterdir()):
        return _scan_cached(str(path.resolve()), path.stat().st_mtime_ns, int(size), fit)
    return open_images(path)


def is_grey(source: ImageSource) -> bool:
    return source.shape[0] == 1 or bool(getattr(source, "grey", False))


def fit_to(source: ImageSource, channels: int, size: int) -> ImageSource:
    """``source`` with images of exactly (channels, size, size)."""
    if isinstance(source, FittedImageFolder) and source.channels != channels:
        source = FittedImageFolder(source.files, channels, source.size, source.fit, source.name,
                                   source.skipped, source.grey)
    if tuple(source.shape) == (channels, size, size):
        return source
    return Reshaped(source, channels, size)

