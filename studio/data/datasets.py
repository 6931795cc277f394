"""Dataset readers: MNIST-style IDX files, image folders and .npz arrays.

Every reader returns an ImageDataset: float32 images in [0, 1] shaped
(N, C, H, W), with optional integer labels. Problems a user can fix (empty
folder, mixed sizes, wrong channel count) raise DatasetError before any
training starts.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.paths import default_mnist
from studio.data.images import IMAGE_SUFFIXES, ImageLoadError, load_image

# Relative to the repository root; the data is never copied into the repo.

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(Exception):
    """The dataset cannot be used; the message says what to fix."""


@dataclass
class ImageDataset:
    images: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    labels: np.ndarray | None
    name: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset < expected:
        raise DatasetError(f"{path}: IDX file is truncated")
    return np.frombuffer(data, dtype=dtype, count=int(np.prod(dims)), offset=offset).reshape(dims)


def _find_idx_pair(folder: Path) -> tuple[Path, Path | None]:
    files = sorted(p for p in folder.iterdir() if "idx" in p.name)
    images = [p for p in files if "images" in p.name or "idx3" in p.name]
    if not images:
        raise DatasetError(f"{folder}: no IDX image file (…-images-idx3-ubyte[.gz]) found")
    img = images[0]
    stem = img.name.split("-images")[0] if "-images" in img.name else None
    labels = [p for p in files if "labels" in p.name or "idx1" in p.name]
    if stem:
        labels = [p for p in labels if p.name.startswith(stem)] or labels
    return img, (labels[0] if labels else None)


def load_idx(images_path: Path, labels_path: Path | None = None) -> ImageDataset:
    arr = read_idx(images_path)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim != 4:
        raise DatasetError(f"{images_path}: expected images of shape (N, H, W), got {arr.shape}")
    images = _normalise(arr, images_path)
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path).astype(np.int64)
        if labels.shape[0] != images.shape[0]:
            raise DatasetError(
                f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images"
            )
    return ImageDataset(images, labels, images_path.name)


def _normalise(arr: np.ndarray, where: Path) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        if arr.min() >= -1.0 and arr.max() <= 1.0:
            return (arr + 1.0) / 2.0
        if arr.min() >= 0 and arr.max() <= 255:
            return arr / 255.0
        raise DatasetError(f"{where}: pixel values outside [0, 1], [-1, 1] and [0, 255]")
    return arr


def load_npz(path: Path) -> ImageDataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            key = next((k for k in ("images", "x", "x_train", "arr_0") if k in keys), None)
            if key is None:
                raise DatasetError(f"{path}: no 'images', 'x' or 'arr_0' array (has {keys})")
            arr = npz[key]
            lab_key = next((k for k in ("labels", "y", "y_train") if k in keys), None)
            labels = npz[lab_key].astype(np.int64) if lab_key else None
    except DatasetError:
        raise
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read .npz ({exc})") from exc
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if arr.ndim != 4:
        raise DatasetError(f"{path}: expected images shaped (N, H, W) or (N, C, H, W), got {arr.shape}")
    return ImageDataset(_normalise(arr, path), labels, path.name)


def load_image_folder(folder: Path, channels: int | None = None) -> ImageDataset:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{folder}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    # Class subfolders become labels, as in torchvision's ImageFolder.
    classes = sorted({p.parent.name for p in files if p.parent != folder})
    labelled = classes and all(p.parent != folder for p in files)
    arrays, labels, first_size = [], [], None
    for p in files:
        try:
            img = load_image(p, channels=3)
        except ImageLoadError as exc:
            raise DatasetError(f"bad image in dataset: {exc}") from exc
        size = img.shape[:2]
        if first_size is None:
            first_size = size
        elif size != first_size:
            raise DatasetError(
                f"{folder}: images of mixed sizes ({p.name} is {size[1]}x{size[0]}, "
                f"the first is {first_size[1]}x{first_size[0]}); resize them to one size"
            )
        arrays.append(img)
        if labelled:
            labels.append(classes.index(p.parent.name))
    stack = np.stack(arrays).transpose(0, 3, 1, 2)
    gray = bool(np.allclose(stack[:, 0], stack[:, 1]) and np.allclose(stack[:, 1], stack[:, 2]))
    if channels == 1 or (channels is None and gray):
        stack = stack[:, :1]
    return ImageDataset(np.ascontiguousarray(stack), np.array(labels) if labelled else None, folder.name)


def open_dataset(path: str | os.PathLike | None) -> ImageDataset:
    """Open IDX (file or folder), an image folder or an .npz; None means the shared MNIST digits."""
    path = Path(path) if path is not None else default_mnist()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        if "idx" in path.name:
            labels = None
            guess = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
            if guess != path and guess.exists():
                labels = guess
            return load_idx(path, labels)
        raise DatasetError(f"{path}: unknown dataset file (expected IDX, .npz or a folder of images)")
    if any("idx" in p.name for p in path.iterdir()):
        return load_idx(*_find_idx_pair(path))
    return load_image_folder(path)


def check_dataset(ds: ImageDataset, channels: int, size: int) -> None:
    """Raise DatasetError if ``ds`` does not fit a model of ``channels`` x ``size`` x ``size``."""
    c, h, w = ds.shape
    if len(ds) == 0:
        raise DatasetError(f"{ds.name}: the dataset is empty")
    if c != channels:
        raise DatasetError(f"{ds.name}: images have {c} channel(s), the model needs {channels}")
    if (h, w) != (size, size):
        raise DatasetError(f"{ds.name}: images are {w}x{h}, the model needs {size}x{size}")
