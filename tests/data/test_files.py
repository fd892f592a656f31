"""Tests for jaxclust.data.load_idx / load_cifar / load_stl10 on tiny files in the real formats."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from jaxclust.data import Dataset, load_cifar, load_idx, load_stl10

# ------------------------------------------------------------------ IDX (MNIST, Fashion-MNIST)


def _write_idx(path, array, type_code=0x08, gz=False):
    # IDX: two zero bytes, the type code, the rank, then big-endian uint32 dims and the data.
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def mnist_dir(tmp_path, rng):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    data = {
        stem: (
            rng.integers(0, 256, (n, 4, 3), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8),
        )
        for stem, n in (("train", 5), ("t10k", 2))
    }
    _write_idx(folder / "train-images-idx3-ubyte.gz", data["train"][0], gz=True)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", data["train"][1], gz=True)
    _write_idx(folder / "t10k-images.idx3-ubyte", data["t10k"][0])  # dotted mirror spelling
    _write_idx(folder / "t10k-labels.idx1-ubyte", data["t10k"][1])
    return folder, data


@pytest.mark.parametrize(("split", "stem"), [("train", "train"), ("test", "t10k")])
def test_load_idx_reads_images_and_labels(mnist_dir, split, stem):
    folder, data = mnist_dir
    ds = load_idx(folder, split=split)
    images, labels = data[stem]
    assert isinstance(ds, Dataset) and ds.name == "fashion-mnist"
    assert ds.x.shape == (*images.shape, 1) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int32
    np.testing.assert_array_equal(ds.x[..., 0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y, labels)
    assert load_idx(str(folder), split=split).x.shape == ds.x.shape  # str paths too


def test_load_idx_errors(mnist_dir, tmp_path):
    folder, data = mnist_dir
    os.remove(folder / "t10k-labels.idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_idx(folder, split="test")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_idx(tmp_path / "nowhere")
    # Wrong magic: a file that starts with something else.
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x1f\x8b\x08\x00" + bytes(8))
    with pytest.raises(ValueError, match="is not an IDX file: its magic number"):
        load_idx(folder, split="test")
    # Header and size disagree.
    (folder / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 3) + bytes(2))
    with pytest.raises(ValueError, match="requires 11"):
        load_idx(folder, split="test")
    # Labels where images are expected (rank 1, magic 0x801).
    _write_idx(folder / "t10k-labels-idx1-ubyte", data["t10k"][1])
    _write_idx(folder / "t10k-images.idx3-ubyte", data["t10k"][1])
    with pytest.raises(ValueError, match="must hold uint8 images of rank 3"):
        load_idx(folder, split="test")
    # Counts differ.
    _write_idx(folder / "t10k-images.idx3-ubyte", data["train"][0])
    with pytest.raises(ValueError, match="holds 5 images but .* holds 2 labels"):
        load_idx(folder, split="test")
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\]"):
        load_idx(folder, split="val")


# ------------------------------------------------------------------ CIFAR-10 / CIFAR-100


def _cifar_rows(images):
    # Each row: the 1024 red values (row-major 32×32), then the green, then the blue.
    return np.concatenate([images[..., c].reshape(len(images), -1) for c in range(3)], axis=1)


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_load_cifar10_concatenates_batches_in_order(tmp_path, rng):
    images = rng.integers(0, 256, (5, 2, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, (5, 2))
    for i in range(5):
        _dump(
            tmp_path / f"data_batch_{i + 1}",
            {b"batch_label": b"x", b"data": _cifar_rows(images[i]), b"labels": labels[i].tolist()},
        )
    test_images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    _dump(tmp_path / "test_batch", {b"data": _cifar_rows(test_images), b"labels": [1, 2, 3]})
    ds = load_cifar(tmp_path)
    assert ds.name == "cifar10" and ds.x.shape == (10, 32, 32, 3) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, images.reshape(10, 32, 32, 3) / np.float32(255))
    np.testing.assert_array_equal(ds.y, labels.reshape(-1))
    assert ds.y.dtype == np.int32
    test = load_cifar(tmp_path, split="test")
    np.testing.assert_array_equal(test.x, test_images / np.float32(255))
    np.testing.assert_array_equal(test.y, [1, 2, 3])
    # One explicit pixel: red of image 0 at row 1, column 2 is byte 1·32 + 2 of the row.
    row = _cifar_rows(test_images)[0]
    assert test.x[0, 1, 2, 0] == np.float32(row[34]) / np.float32(255)
    assert test.x[0, 1, 2, 2] == np.float32(row[2048 + 34]) / np.float32(255)


def test_load_cifar100_fine_and_coarse(tmp_path, rng):
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    batch = {
        b"data": _cifar_rows(images),
        b"fine_labels": [99, 0, 5, 7],
        b"coarse_labels": [19, 0, 1, 2],
    }
    _dump(tmp_path / "train", batch)
    fine = load_cifar(tmp_path, which=100)
    coarse = load_cifar(tmp_path, which=100, label="coarse")
    np.testing.assert_array_equal(fine.x, images / np.float32(255))
    np.testing.assert_array_equal(fine.y, [99, 0, 5, 7])
    np.testing.assert_array_equal(coarse.y, [19, 0, 1, 2])
    assert (fine.name, coarse.name) == ("cifar100", "cifar100-coarse")


class _Exploit:
    def __reduce__(self):
        return (os.getcwd, ())


def test_load_cifar_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar(tmp_path, split="test")
    _dump(tmp_path / "test_batch", {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match="must hold the keys b'data' and b'labels'"):
        load_cifar(tmp_path, split="test")
    _dump(tmp_path / "test_batch", {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"b'data' must be uint8 of shape \[n, 3072\]"):
        load_cifar(tmp_path, split="test")
    _dump(tmp_path / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(ValueError, match="b'labels' must be 2 integer labels"):
        load_cifar(tmp_path, split="test")
    # A pickle that would call a function is refused, not executed.
    _dump(tmp_path / "test_batch", {b"data": _Exploit(), b"labels": [0]})
    with pytest.raises(ValueError, match=r"refusing to load (posix|nt)\.getcwd"):
        load_cifar(tmp_path, split="test")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="is not a CIFAR python batch"):
        load_cifar(tmp_path, split="test")
    with pytest.raises(ValueError, match="which must be 10 or 100"):
        load_cifar(tmp_path, which=20)
    with pytest.raises(ValueError, match=r"label must be one of \['fine', 'coarse'\]"):
        load_cifar(tmp_path, which=100, label="super")


# ------------------------------------------------------------------ STL-10


def _write_stl(path, images):
    # STL-10 spec: per image, each channel plane stored in column-major (Fortran) order.
    planes = [images[i, :, :, c].flatten(order="F") for i in range(len(images)) for c in range(3)]
    np.concatenate(planes).astype(np.uint8).tofile(path)


def test_load_stl10_splits_and_column_major_layout(tmp_path, rng):
    train = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    unlabeled = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    _write_stl(tmp_path / "train_X.bin", train)
    np.array([1, 10], np.uint8).tofile(tmp_path / "train_y.bin")
    _write_stl(tmp_path / "unlabeled_X.bin", unlabeled)
    ds = load_stl10(tmp_path)
    assert ds.name == "stl10" and ds.x.shape == (2, 96, 96, 3) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, train / np.float32(255))
    np.testing.assert_array_equal(ds.y, [0, 9])
    un = load_stl10(tmp_path, split="unlabeled")
    np.testing.assert_array_equal(un.x, unlabeled / np.float32(255))
    np.testing.assert_array_equal(un.y, [-1, -1, -1])
    assert un.y.dtype == np.int32
    both = load_stl10(tmp_path, split="train+unlabeled")
    assert both.x.shape == (5, 96, 96, 3)
    np.testing.assert_array_equal(both.y, [0, 9, -1, -1, -1])


def test_load_stl10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="test_X.bin"):
        load_stl10(tmp_path, split="test")
    np.zeros(100, np.uint8).tofile(tmp_path / "test_X.bin")
    with pytest.raises(ValueError, match="not a multiple of 3·96·96"):
        load_stl10(tmp_path, split="test")
    np.zeros(2 * 27648, np.uint8).tofile(tmp_path / "test_X.bin")
    with pytest.raises(FileNotFoundError, match="test_y.bin"):
        load_stl10(tmp_path, split="test")
    np.array([1, 11], np.uint8).tofile(tmp_path / "test_y.bin")
    with pytest.raises(ValueError, match=r"must hold labels 1..10"):
        load_stl10(tmp_path, split="test")
    np.array([1], np.uint8).tofile(tmp_path / "test_y.bin")
    with pytest.raises(ValueError, match="holds 2 images but test_y.bin holds 1 labels"):
        load_stl10(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        load_stl10(tmp_path, split="extra")
    with pytest.raises(TypeError, match="directory must be a str or os.PathLike"):
        load_stl10(3)
