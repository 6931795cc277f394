"""Dataset readers: IDX (gz and raw), image folders, npz; fixable problems are named."""

import gzip

import numpy as np
import pytest
from PIL import Image

from studio.data.datasets import DatasetError, check_dataset, open_dataset, read_idx


def write_idx(path, arr, compress=False):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_shared_mnist_reads_with_labels(mnist_small):
    assert mnist_small.images.shape == (512, 1, 28, 28)
    assert 0.0 <= mnist_small.images.min() and mnist_small.images.max() <= 1.0
    assert set(np.unique(mnist_small.labels)) == set(range(10))


def test_raw_and_gz_idx_agree(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 4, 4))
    write_idx(tmp_path / "x-images-idx3-ubyte", arr)
    write_idx(tmp_path / "y-images-idx3-ubyte.gz", arr, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "x-images-idx3-ubyte"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "y-images-idx3-ubyte.gz"), arr)


def test_bad_idx_is_named(tmp_path):
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04rubbish")
    with pytest.raises(DatasetError, match="not an IDX file"):
        open_dataset(bad)


def test_npz_nhwc_and_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 8, 8, 1), np.uint8), y=np.array([0, 1, 2]))
    ds = open_dataset(path)
    assert ds.images.shape == (3, 1, 8, 8) and list(ds.labels) == [0, 1, 2]


def test_image_folder_with_class_subfolders(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / cls / f"{i}.png")
    ds = open_dataset(tmp_path)
    assert ds.images.shape == (4, 1, 8, 8) and sorted(ds.labels.tolist()) == [0, 0, 1, 1]


def test_empty_folder_is_reported(tmp_path):
    with pytest.raises(DatasetError, match="holds no images"):
        open_dataset(tmp_path)


def test_mixed_sizes_are_reported(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (9, 8)).save(tmp_path / "b.png")
    with pytest.raises(DatasetError, match="mixed sizes"):
        open_dataset(tmp_path)


def test_wrong_channels_and_size_are_reported(tmp_path):
    Image.new("RGB", (28, 28), (255, 0, 0)).save(tmp_path / "a.png")
    ds = open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="3 channel"):
        check_dataset(ds, 1, 28)
    with pytest.raises(DatasetError, match="32x32"):
        check_dataset(ds, 3, 32)


def test_image_folder_trains_on_the_good_images_and_lists_the_rest(tmp_path):
    for i in range(3):
        Image.new("L", (8, 8), 60 * i).save(tmp_path / f"good{i}.png")
    whole = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fake.png").write_text("I am text")
    (tmp_path / "notes.txt").write_text("readme")
    ds = open_dataset(tmp_path)
    assert ds.images.shape == (3, 1, 8, 8)
    reasons = dict(ds.skipped)
    assert sorted(reasons) == ["cut.png", "fake.png", "notes.txt"]
    assert "truncated or corrupt" in reasons["cut.png"]
    assert "not an image" in reasons["fake.png"]
    assert reasons["notes.txt"] == "not an image file (.txt)"


def test_image_folder_with_nothing_usable_is_refused(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("nope")
    with pytest.raises(DatasetError, match="no usable images: all 2 failed to load"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("name, problem", [
    ("not_a_zip.npz", "not an .npz archive (not a zip file)"),
    ("renamed_npy.npz", "a single .npy array renamed .npz"),
    ("truncated_zip.npz", "damaged or truncated"),
    ("empty.npz", "the file is empty"),
    ("pickled_objects.npz", "holds Python objects"),
    ("lying_header.npz", "claims shape (1000000, 100000, 100000)"),
    ("nan_pixels.npz", "1 pixel value is NaN or infinite (the first at index (1, 2, 3))"),
    ("nan-images-idx3-ubyte", "1 pixel value is NaN or infinite (the first at index (0, 0, 1))"),
    ("inf_pixels.npz", "2 pixel values are NaN or infinite (the first at index (0, 3, 1))"),
    ("inf-images-idx3-ubyte", "1 pixel value is NaN or infinite (the first at index (0, 1, 0))"),
    ("short-images-idx3-ubyte", "claims 10 x 28 x 28 items (7,840 bytes), but the file holds 100"),
    ("many-dims-images-idx3-ubyte", "the IDX header claims 67 dimensions"),
])
def test_hostile_dataset_files_are_one_line_naming_the_file(tmp_path, name, problem):
    from hostile_files import hostile_datasets

    path = tmp_path / name
    path.write_bytes(dict(hostile_datasets())[name])
    with pytest.raises(DatasetError) as info:
        open_dataset(path)
    assert str(path) in str(info.value) and problem in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_is_checked_before_allocating(tmp_path, compress):
    import tracemalloc

    from hostile_files import idx_bytes

    path = tmp_path / ("huge-images-idx3-ubyte" + (".gz" if compress else ""))
    (gzip.open if compress else open)(path, "wb").write(idx_bytes([2**31] * 3, payload=b"\x00" * 64))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"huge-images-idx3-ubyte.*claims 2147483648 x 2147483648"):
            open_dataset(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_npz_labels_must_match_the_images(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(DatasetError, match=r"d.npz: labels shaped \(2,\) for 3 images"):
        open_dataset(path)
