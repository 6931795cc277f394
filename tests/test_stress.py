"""Hostile files in bulk: every one is loaded cleanly or refused with one line naming it.

The short runs belong to the normal suite. The long runs (``pytest -m stress -s``)
fuzz thousands of files and print their figures.
"""

from __future__ import annotations

import gzip
import io
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_files import (
    checkpoint_bytes, hostile_checkpoints, hostile_datasets, idx_bytes, mutated_checkpoints, studio_meta,
)
from studio.core.checkpoint import (
    CheckpointError, check_fits_model, load_checkpoint, read_checkpoint_file, read_metadata,
)
from studio.data.datasets import DatasetError, open_dataset
from studio.data.images import ImageLoadError, load_image


def outcome(read, path: Path, error: type[Exception]) -> str:
    """'loaded' or 'refused'; anything else (a raw exception, a multi-line message, an unnamed file) fails."""
    try:
        read(path)
    except error as exc:
        message = str(exc)
        assert "\n" not in message, f"{path.name}: message spans lines: {message!r}"
        assert path.name in message, f"{path.name}: message does not name the file: {message!r}"
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
        pytest.fail(f"{path.name}: raw {type(exc).__name__} from {read.__name__}: {exc}")
    return "loaded"


def write_all(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def misfit_checkpoint() -> tuple[str, bytes]:
    """Sound file, weights of the wrong shapes for the model its config describes."""
    meta = studio_meta(config={"latent_dim": 2, "width": 8, "hidden": 32})
    weights = {"model/encoder.mu.weight": np.zeros((7, 7), np.float32)}
    return "mismatched_shapes.safetensors", checkpoint_bytes(meta, weights)


# Only the file's tensors are wrong here, so reading the metadata alone may succeed.
TENSOR_ONLY_PROBLEMS = {"nan_weights", "inf_weight", "no_weights", "bfloat16", "mismatched_shapes"}


def test_crafted_checkpoints_are_all_refused_in_one_line_and_nothing_runs(tmp_path):
    marker = tmp_path / "executed"
    paths = write_all(tmp_path / "crafted", hostile_checkpoints(marker) + [misfit_checkpoint()])
    assert len(paths) >= 30
    for path in paths:
        whole_file = "loaded" if path.stem == "mismatched_shapes" else "refused"  # sound until fitted
        assert outcome(read_checkpoint_file, path, CheckpointError) == whole_file
        expected = {"loaded", "refused"} if path.stem in TENSOR_ONLY_PROBLEMS else {"refused"}
        assert outcome(read_metadata, path, CheckpointError) in expected
    misfit = tmp_path / "crafted" / "mismatched_shapes.safetensors"
    assert outcome(lambda p: check_fits_model(load_checkpoint(p)), misfit, CheckpointError) == "refused"
    assert not marker.exists(), "a crafted file ran code"


def test_crafted_datasets_are_all_refused_in_one_line(tmp_path):
    for path in write_all(tmp_path / "crafted", hostile_datasets()):
        assert outcome(open_dataset, path, DatasetError) == "refused"


def test_damaged_checkpoints_short_run(tmp_path):
    paths = write_all(tmp_path / "mutants", mutated_checkpoints(seed=1, count=150))
    results = Counter(outcome(load_checkpoint, p, CheckpointError) for p in paths)
    assert results["refused"] > 100  # most damage is caught; what loads is still a sound file


# --- the long runs: python -m pytest -m stress -s tests/test_stress.py ---------------------------------

def base_images() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    out = []
    for mode, fmt, suffix in [("RGB", "PNG", ".png"), ("RGBA", "PNG", ".png"), ("L", "PNG", ".png"),
                              ("P", "PNG", ".png"), ("RGB", "JPEG", ".jpg"), ("L", "JPEG", ".jpg"),
                              ("RGB", "BMP", ".bmp"), ("RGB", "TIFF", ".tif"), ("P", "GIF", ".gif"),
                              ("RGB", "WEBP", ".webp"), ("I;16", "PNG", ".png")]:
        img = Image.fromarray(pixels).convert("RGB" if mode == "I;16" else mode)
        if mode == "I;16":
            img = Image.fromarray(rng.integers(0, 65536, (24, 32), dtype=np.uint16))
        buf = io.BytesIO()
        img.save(buf, fmt)
        out.append((suffix, buf.getvalue()))
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    how = rng.choice(["flip", "cut", "splice", "overwrite", "zero_run"])
    if how == "flip":
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "cut":
        data = data[: rng.randrange(len(data))]
    elif how == "splice":
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 64))
    elif how == "overwrite":  # headers live in the first bytes: hit them often
        at = rng.randrange(min(len(data), 64))
        data[at:at + 4] = rng.randbytes(4)
    else:
        at = rng.randrange(len(data))
        data[at:at + rng.randint(1, 256)] = b"\xff" * rng.randint(1, 256)
    return bytes(data)


@pytest.mark.stress
def test_long_checkpoint_fuzz(tmp_path):
    started = time.perf_counter()
    marker = tmp_path / "executed"
    rng = random.Random(7)
    files = mutated_checkpoints(seed=7, count=6000)
    # Random values of random JSON types in every metadata field.
    choices = [None, True, -1, 0, 3, 2**70, 1.5, float("nan"), "", "ten", "vae", [], [1], {}, {"a": 1}]
    for i in range(2000):
        meta = studio_meta(**{k: rng.choice(choices) for k in rng.sample(sorted(studio_meta()), rng.randint(1, 4))})
        files.append((f"typed_{i:05d}.safetensors", checkpoint_bytes(meta)))
    for round_ in range(20):
        files += [(f"r{round_}_{name}", data) for name, data in hostile_checkpoints(marker)]
    results = Counter()
    for path in write_all(tmp_path / "fuzz", files):
        results[outcome(read_checkpoint_file, path, CheckpointError)] += 1
        outcome(read_metadata, path, CheckpointError)
        path.unlink()
    seconds = time.perf_counter() - started
    print(f"\ncheckpoint fuzz: {len(files)} files, {results['refused']} refused in one line, "
          f"{results['loaded']} loaded (harmless damage), 0 raw errors, {seconds:.1f} s")
    assert not marker.exists()
    assert sum(results.values()) == len(files)


@pytest.mark.stress
def test_long_image_fuzz(tmp_path):
    started = time.perf_counter()
    rng = random.Random(11)
    bases = base_images()
    results = Counter()
    folder = tmp_path / "images"
    folder.mkdir()
    n = 4000
    for i in range(n):
        suffix, data = rng.choice(bases)
        path = folder / f"fuzz_{i:05d}{suffix}"
        path.write_bytes(mutate(rng, data))
        try:
            image = load_image(path, size=(28, 28))
        except ImageLoadError as exc:
            assert "\n" not in str(exc) and path.name in str(exc), str(exc)
            results["refused"] += 1
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{path.name}: raw {type(exc).__name__}: {exc}")
        else:
            assert image.shape == (28, 28, 3) and image.dtype == np.float32
            assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
            results["loaded"] += 1
        path.unlink()
    seconds = time.perf_counter() - started
    print(f"\nimage fuzz: {n} files, {results['refused']} refused in one line, {results['loaded']} loaded "
          f"as valid [0, 1] images, 0 raw errors, {seconds:.1f} s")


@pytest.mark.stress
def test_long_dataset_fuzz(tmp_path):
    started = time.perf_counter()
    rng = random.Random(13)
    npz = io.BytesIO()
    np.savez(npz, images=np.zeros((4, 8, 8), np.uint8), labels=np.arange(4))
    npz_compressed = io.BytesIO()
    np.savez_compressed(npz_compressed, x=np.ones((4, 8, 8, 1), np.float32), y=np.arange(4))
    idx = idx_bytes([4, 8, 8], payload=bytes(256))
    bases = [("d.npz", npz.getvalue()), ("c.npz", npz_compressed.getvalue()),
             ("t-images-idx3-ubyte", idx), ("g-images-idx3-ubyte.gz", gzip.compress(idx))]
    results = Counter()
    n = 3000
    for i in range(n):
        name, data = rng.choice(bases)
        path = tmp_path / f"f{i:05d}-{name}"
        path.write_bytes(mutate(rng, data))
        results[outcome(open_dataset, path, DatasetError)] += 1
        path.unlink()
    # Image folders of fuzzed images: good ones train, bad ones are listed.
    for k in range(20):
        folder = tmp_path / f"folder{k}"
        folder.mkdir()
        for j in range(10):
            buf = io.BytesIO()
            Image.new("L", (8, 8), 20 * j).save(buf, "PNG")
            data = buf.getvalue() if rng.random() < 0.5 else mutate(rng, buf.getvalue())
            (folder / f"{j}.png").write_bytes(data)
        try:
            ds = open_dataset(folder)
            assert len(ds) + len(ds.skipped) == 10
            results["folder loaded"] += 1
        except DatasetError as exc:
            assert "\n" not in str(exc) and folder.name in str(exc)
            results["folder refused"] += 1
    seconds = time.perf_counter() - started
    print(f"\ndataset fuzz: {n} files and 20 folders: {dict(results)}, 0 raw errors, {seconds:.1f} s")
