"""Dataset readers: MNIST-style IDX files, image folders and .npz arrays.

Every reader returns an ImageDataset: float32 images in [0, 1] shaped
(N, C, H, W), with optional integer labels. Problems a user can fix (empty
folder, mixed sizes, wrong channel count) raise DatasetError before any
training starts. Every file is treated as hostile: sizes in headers are checked
against the file before anything is allocated, pickled arrays are refused, and
NaN pixels are named. An image folder trains on the images that load and lists
the rest, with reasons, in ``ImageDataset.skipped``.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.paths import default_mnist
from studio.data.images import IMAGE_SUFFIXES, ImageLoadError, load_image

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate expands at most ~1032-fold: a compressed file cannot hold more than this many bytes per byte.
_MAX_DEFLATE_RATIO = 1032
_IDX_MAX_DIMS = 8
_NPZ_IMAGE_KEYS = ("images", "x", "x_train", "arr_0")
_NPZ_LABEL_KEYS = ("labels", "y", "y_train")


class DatasetError(Exception):
    """The dataset cannot be used; the message says what to fix."""


@dataclass
class ImageDataset:
    images: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    labels: np.ndarray | None
    name: str
    # Files left out of an image folder, as (path relative to the folder, reason).
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a numpy array, checking its header against the file size first."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return _parse_idx(path, f, size * _MAX_DEFLATE_RATIO, "the compressed file can hold at most")
        with open(path, "rb") as f:
            return _parse_idx(path, f, size, "the file holds")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc


def _parse_idx(path: Path, f, room: int, room_is: str) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = head[3]
    if ndim > _IDX_MAX_DIMS:
        raise DatasetError(f"{path}: the IDX header claims {ndim} dimensions (image data has at most 4)")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: IDX file is truncated (in its header)")
    dims = [int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[head[2]])
    count = math.prod(dims)
    expected = count * dtype.itemsize
    if 4 + 4 * ndim + expected > room:
        raise DatasetError(
            f"{path}: the IDX header claims {' x '.join(map(str, dims))} items ({expected:,} bytes), "
            f"but {room_is} {max(room - 4 - 4 * ndim, 0):,}"
        )
    data = f.read(expected)
    if len(data) < expected:
        raise DatasetError(f"{path}: IDX file is truncated ({len(data):,} of {expected:,} data bytes)")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(dims)


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
    _refuse_non_finite(arr, images_path)
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
    with open(path, "rb") as f:
        head = f.read(6)
    if not head:
        raise DatasetError(f"{path}: the file is empty")
    if head == b"\x93NUMPY":
        raise DatasetError(f"{path}: a single .npy array renamed .npz; save the images with "
                           f"numpy.savez(path, images=...)")
    if not head.startswith(b"PK"):
        raise DatasetError(f"{path}: not an .npz archive (not a zip file)")
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {n[:-4]: n for n in archive.namelist() if n.endswith(".npy")}
            key = next((k for k in _NPZ_IMAGE_KEYS if k in arrays), None)
            if key is None:
                raise DatasetError(f"{path}: no 'images', 'x' or 'arr_0' array (has {sorted(arrays)})")
            arr = _read_npz_member(path, archive, arrays[key])
            lab_key = next((k for k in _NPZ_LABEL_KEYS if k in arrays), None)
            labels = _read_npz_member(path, archive, arrays[lab_key]) if lab_key else None
    except DatasetError:
        raise
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{path}: the .npz archive is damaged or truncated ({_one_line(exc)})") from exc
    except (OSError, EOFError, ValueError, KeyError, zlib.error, NotImplementedError,
            MemoryError) as exc:
        raise DatasetError(f"{path}: cannot read .npz ({type(exc).__name__}: {_one_line(exc)})") from exc
    _refuse_non_finite(arr, path)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if arr.ndim != 4:
        raise DatasetError(f"{path}: expected images shaped (N, H, W) or (N, C, H, W), got {arr.shape}")
    return ImageDataset(_normalise(arr, path), _checked_labels(labels, len(arr), path), path.name)


def _read_npz_member(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array of an .npz, after checking its header against the archive (no pickles, no huge claims)."""
    info = archive.getinfo(name)
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise DatasetError(f"{path}: '{name}' holds Python objects, which would need unpickling; refused")
    need = math.prod(shape) * dtype.itemsize
    room = min(info.file_size, path.stat().st_size * _MAX_DEFLATE_RATIO)
    if need > room:
        raise DatasetError(f"{path}: '{name}' claims shape {shape} ({need:,} bytes), "
                           f"but the archive holds only {room:,} bytes for it")
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _checked_labels(labels: np.ndarray | None, n: int, path: Path) -> np.ndarray | None:
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) != n:
        raise DatasetError(f"{path}: labels shaped {labels.shape} for {n} images (expected ({n},))")
    if labels.dtype.kind not in "iub":
        if labels.dtype.kind != "f" or not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DatasetError(f"{path}: labels must be whole numbers (got {labels.dtype})")
    return labels.astype(np.int64)


def _refuse_non_finite(arr: np.ndarray, where: Path) -> None:
    """NaN or infinite pixels would silently poison training: name how many and where the first is."""
    if arr.dtype.kind not in "fc":
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = int(finite.size - np.count_nonzero(finite))
    first = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
    raise DatasetError(f"{where}: {bad:,} pixel value{'s are' if bad > 1 else ' is'} NaN or infinite "
                       f"(the first at index {first})")


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "…"


def load_image_folder(folder: Path, channels: int | None = None) -> ImageDataset:
    """Every image under ``folder``; files that are not images or do not load are listed in ``skipped``."""
    entries = sorted(p for p in folder.rglob("*") if p.is_file())
    candidates = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [(_relative(p, folder), f"not an image file ({p.suffix or 'no extension'})")
               for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not candidates:
        others = f"; {len(skipped)} other file(s) skipped" if skipped else ""
        raise DatasetError(
            f"{folder}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}){others}"
        )
    # Class subfolders become labels, as in torchvision's ImageFolder.
    classes = sorted({p.parent.name for p in candidates if p.parent != folder})
    labelled = classes and all(p.parent != folder for p in candidates)
    arrays, labels, first = [], [], None
    for p in candidates:
        try:
            img = load_image(p, channels=3)
        except ImageLoadError as exc:
            skipped.append((_relative(p, folder), str(exc).removeprefix(f"{p}: ")))
            continue
        if first is None:
            first = (p, img.shape[:2])
        elif img.shape[:2] != first[1]:
            (h, w), (h0, w0) = img.shape[:2], first[1]
            raise DatasetError(
                f"{folder}: images of mixed sizes ({p.name} is {w}x{h}, {first[0].name} is {w0}x{h0}); "
                f"resize them to one size"
            )
        arrays.append(img)
        if labelled:
            labels.append(classes.index(p.parent.name))
    if not arrays:
        name, why = skipped[-1]
        raise DatasetError(f"{folder}: no usable images: all {len(candidates)} failed to load "
                           f"(e.g. {name}: {why})")
    stack = np.stack(arrays).transpose(0, 3, 1, 2)
    gray = bool(np.allclose(stack[:, 0], stack[:, 1]) and np.allclose(stack[:, 1], stack[:, 2]))
    if channels == 1 or (channels is None and gray):
        stack = stack[:, :1]
    return ImageDataset(np.ascontiguousarray(stack), np.array(labels) if labelled else None, folder.name,
                        sorted(skipped))


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def open_dataset(path: str | os.PathLike | None) -> ImageDataset:
    """Open IDX (file or folder), an image folder or an .npz; None means the shared MNIST digits."""
    path = Path(path) if path is not None else default_mnist()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".npz":
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
