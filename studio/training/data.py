"""Batches for training: torch Datasets, a resumable sampler and one DataLoader per domain.

* :class:`ArrayImages` serves images already in memory (IDX, .npz) and
  :class:`ImageFolder` decodes image files only when a batch needs them; both
  carry labels (class subfolders, IDX label files) when the data has them.
* :class:`EpochBatchSampler` shuffles each epoch with a generator seeded from
  (run seed, stream, epoch) alone, so a stream's whole future is fixed by
  (epoch, position): that pair is what a checkpoint saves, and resuming
  continues with exactly the batches an unbroken run would have drawn.
  Under torchrun every rank takes its own slice of each global batch.
* :class:`BatchStream` is one domain's DataLoader; a family with two unpaired
  domains (CycleGAN) has two streams with independent shuffles.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from studio.data.datasets import DatasetError, ImageDataset, open_dataset
from studio.data.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageLoadError, load_image

# Pillow modes that hold one grey channel.
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_EXIF_ORIENTATION = 0x0112


class Batch(NamedTuple):
    images: torch.Tensor  # float32 (B, C, H, W) in [0, 1]
    labels: torch.Tensor | None  # int64 (B,), or None when the data has no labels

    def to(self, device, non_blocking: bool = True) -> "Batch":
        labels = None if self.labels is None else self.labels.to(device, non_blocking=non_blocking)
        return Batch(self.images.to(device, non_blocking=non_blocking), labels)


class ImageSource(Dataset):
    """A torch Dataset of (image, label) with a name and one image shape (C, H, W)."""

    name: str = ""
    shape: tuple[int, int, int] = (0, 0, 0)
    has_labels: bool = False
    skipped: list[tuple[str, str]] = []  # files left out, with the reason

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitems__(self, indices: list[int]) -> Batch:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        batch = self.__getitems__([index])
        return batch.images[0], (-1 if batch.labels is None else int(batch.labels[0]))

    def split(self, n_first: int) -> tuple["ImageSource", "ImageSource"]:
        """The first ``n_first`` items and the rest (training and held-out images)."""
        raise NotImplementedError

    def first(self, n: int) -> torch.Tensor:
        """The first ``n`` images as one tensor (metrics measure on a fixed set)."""
        return self.__getitems__(list(range(min(n, len(self))))).images


class ArrayImages(ImageSource):
    """Images already decoded into one array (IDX, .npz): indexing is one tensor gather."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, name: str):
        self.images = torch.from_numpy(images)  # shares the array's memory
        self.labels = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64))
        self.name = name
        self.shape = tuple(images.shape[1:])
        self.has_labels = labels is not None
        self.skipped = []

    @classmethod
    def from_dataset(cls, ds: ImageDataset) -> "ArrayImages":
        return cls(ds.images, ds.labels, ds.name)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitems__(self, indices) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        labels = None if self.labels is None else self.labels.index_select(0, idx)
        return Batch(self.images.index_select(0, idx), labels)  # index_select: twice as fast as [idx]

    def split(self, n_first: int):
        def part(sl):
            return ArrayImages(self.images.numpy()[sl],
                               None if self.labels is None else self.labels.numpy()[sl], self.name)
        return part(slice(0, n_first)), part(slice(n_first, None))


class ImageFolder(ImageSource):
    """A folder of image files, decoded on access (class subfolders become labels).

    Opening reads only the files' headers: sizes must agree, files Pillow
    cannot open are skipped and listed. Grey files (or RGB files whose
    pixels are all grey) give one channel, anything else three.
    """

    def __init__(self, files: list[Path], labels: list[int] | None, channels: int,
                 size: tuple[int, int], name: str, skipped: list[tuple[str, str]] | None = None):
        self.files = list(files)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        self.channels = channels
        self.size = size  # (width, height)
        self.name = name
        self.shape = (channels, size[1], size[0])
        self.has_labels = labels is not None
        self.skipped = list(skipped or [])

    @classmethod
    def scan(cls, folder: Path) -> "ImageFolder":
        from PIL import Image

        folder = Path(folder)
        candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        files = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise DatasetError(
                f"{folder}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        def rel(p: Path) -> str:
            return p.relative_to(folder).as_posix()

        skipped = [(rel(p), f"not an image file ({p.suffix or 'no extension'})")
                   for p in candidates if p.suffix.lower() not in IMAGE_SUFFIXES]
        good, sizes, modes = [], [], []
        for p in files:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(p) as im:
                        im.verify()  # reads the file through: a truncated PNG fails here, not mid-run
                    with Image.open(p) as im:
                        w, h = im.size
                        if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                            w, h = h, w  # decoding applies the EXIF rotation
                        mode = im.mode
                if w * h > MAX_PIXELS:
                    raise ValueError(f"{w}x{h} pixels is too large (limit {MAX_PIXELS // 1_000_000} Mpx)")
            except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
                skipped.append((rel(p), f"unreadable ({' '.join(str(exc).split())[:160]})"))
                continue
            good.append(p)
            sizes.append((w, h))
            modes.append(mode)
        if not good:
            raise DatasetError(f"{folder}: no usable images: all {len(files)} failed to load "
                               f"(e.g. {skipped[-1][0]}: {skipped[-1][1]})")
        first = sizes[0]
        for p, size in zip(good, sizes):
            if size != first:
                raise DatasetError(
                    f"{folder}: images of mixed sizes ({p.name} is {size[0]}x{size[1]}, "
                    f"the first is {first[0]}x{first[1]}); resize them to one size")
        classes = sorted({p.parent.name for p in good if p.parent != folder})
        labelled = bool(classes) and all(p.parent != folder for p in good)
        labels = [classes.index(p.parent.name) for p in good] if labelled else None
        channels = 1 if all(m in _GREY_MODES for m in modes) else _sniff_channels(good)
        return cls(good, labels, channels, first, folder.name, sorted(skipped))

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> np.ndarray:
        path = self.files[i]
        try:
            arr = load_image(path, channels=self.channels)
        except ImageLoadError as exc:
            raise DatasetError(f"bad image in dataset: {exc}") from exc
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        if arr.shape != self.shape:
            raise DatasetError(f"{path}: decodes to {arr.shape}, the folder's images are {self.shape}")
        return arr

    def __getitems__(self, indices) -> Batch:
        images = torch.from_numpy(np.stack([self._decode(int(i)) for i in indices]))
        labels = None if self.labels is None else self.labels[torch.as_tensor(indices, dtype=torch.long)]
        return Batch(images, labels)

    def split(self, n_first: int):
        def part(sl):
            labels = None if self.labels is None else self.labels[sl].tolist()
            return ImageFolder(self.files[sl], labels, self.channels, self.size, self.name)
        return part(slice(0, n_first)), part(slice(n_first, None))


def _sniff_channels(files: list[Path], sample: int = 32) -> int:
    """1 if the first ``sample`` RGB files are all grey (R = G = B), else 3."""
    for p in files[:sample]:
        try:
            rgb = load_image(p, channels=3)
        except ImageLoadError:
            continue
        if not (np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 1], rgb[..., 2])):
            return 3
    return 1


def open_images(path: str | os.PathLike | None) -> ImageSource:
    """The training data at ``path``: image folders lazily, IDX and .npz in memory.

    None means the shared MNIST digits. Raises DatasetError with what to fix.
    """
    if path is not None:
        p = Path(path)
        if p.is_dir() and not any("idx" in q.name for q in p.iterdir()):
            return ImageFolder.scan(p)
    return ArrayImages.from_dataset(open_dataset(path))


def as_source(data: Any) -> ImageSource:
    """An ImageSource from an ImageSource or an in-memory ImageDataset."""
    if isinstance(data, ImageSource):
        return data
    if isinstance(data, ImageDataset):
        return ArrayImages.from_dataset(data)
    raise TypeError(f"not a dataset: {type(data).__name__}")


# ---- sampling ----------------------------------------------------------------------------


def _epoch_seed(seed: int, stream: int, epoch: int) -> int:
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream, epoch + 1]).generate_state(2)
    return (int(state[0]) << 31 | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices, reshuffled every epoch from (seed, stream, epoch) alone.

    An incomplete last batch is dropped. ``start(epoch, position)`` makes the
    next iteration begin at batch ``position`` of ``epoch``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, stream: int = 0,
                 rank: int = 0, world_size: int = 1):
        if n < 1:
            raise ValueError("no images to draw batches from")
        self.n = n
        self.batch_size = max(1, min(batch_size, n // world_size))
        self.global_batch = self.batch_size * world_size
        self.seed, self.stream, self.rank = seed, stream, rank
        self.batches_per_epoch = max(1, n // self.global_batch)
        self.epoch = 0
        self.position = 0

    def start(self, epoch: int, position: int) -> None:
        self.epoch, self.position = int(epoch), int(position)

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.stream, epoch))
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        # Read epoch and position now: the DataLoader creates this iterator before any batch.
        return _EpochIterator(self, self.permutation(self.epoch), self.position)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.position


class _EpochIterator:
    def __init__(self, sampler: EpochBatchSampler, perm: torch.Tensor, position: int):
        self.s, self.perm, self.b = sampler, perm, position

    def __iter__(self):
        return self

    def __next__(self) -> list[int]:
        s = self.s
        if self.b >= s.batches_per_epoch:
            raise StopIteration
        lo = self.b * s.global_batch + s.rank * s.batch_size
        self.b += 1
        return self.perm[lo: lo + s.batch_size].tolist()


def _already_batched(batch: Batch) -> Batch:
    return batch  # ImageSource.__getitems__ returns whole batches


class BatchStream:
    """One domain's batches: a DataLoader over an EpochBatchSampler, resumable exactly."""

    def __init__(self, source: ImageSource, batch_size: int, seed: int, stream: int,
                 device: torch.device, rank: int = 0, world_size: int = 1, workers: int = 0):
        self.source = source
        self.sampler = EpochBatchSampler(len(source), batch_size, seed, stream, rank, world_size)
        self.device = device
        # Its own generator: a DataLoader iterator otherwise draws a seed from torch's global
        # RNG each time it starts, which would shift the training noise after a resume.
        self.loader = DataLoader(source, batch_sampler=self.sampler, collate_fn=_already_batched,
                                 num_workers=workers, persistent_workers=workers > 0,
                                 pin_memory=device.type == "cuda",
                                 generator=torch.Generator().manual_seed(_epoch_seed(seed, stream, -1)))
        self.epoch = 0
        self.position = 0  # batches of this epoch already handed out
        self._iter = None

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def next(self) -> Batch:
        if self._iter is None:
            self.sampler.start(self.epoch, self.position)
            self._iter = iter(self.loader)
        try:
            batch = next(self._iter)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self.sampler.start(self.epoch, 0)
            self._iter = iter(self.loader)
            batch = next(self._iter)
        self.position += 1
        return batch.to(self.device)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iter = None  # the next batch starts a loader at the saved position
