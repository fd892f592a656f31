"""Readers for image datasets the user already has on disk: MNIST-style IDX, CIFAR, STL-10.

Nothing is downloaded. Every reader returns a ``Dataset`` of host NumPy arrays: ``x`` float32
images ``[n, h, w, c]`` scaled to [0, 1] and ``y`` int32 labels ``[n]`` (-1 for unlabelled).
"""

from __future__ import annotations

import errno
import gzip
import os
import pathlib
import pickle

import numpy as np

from ._dataset import Dataset

__all__ = ["load_idx", "load_cifar", "load_stl10"]

# IDX type codes (third byte of the magic number) and their big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_STL_SIDE = 96
_STL_PIXELS = 3 * _STL_SIDE * _STL_SIDE


def _directory(directory) -> pathlib.Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or os.PathLike, got {type(directory).__name__}.")
    path = pathlib.Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such directory", str(path))
    return path


def _find(directory: pathlib.Path, candidates: list[str]) -> pathlib.Path:
    for name in candidates:
        path = directory / name
        if path.is_file():
            return path
    tried = ", ".join(candidates[1:])
    raise FileNotFoundError(
        errno.ENOENT, f"No such file (also tried {tried})", str(directory / candidates[0])
    )


def _check_split(split, choices) -> str:
    if not isinstance(split, str) or split not in choices:
        raise ValueError(f"split must be one of {list(choices)}, got {split!r}.")
    return split


def _read_idx(path: pathlib.Path) -> np.ndarray:
    """Parses one IDX file (optionally gzip-compressed) into a NumPy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{str(path)!r} is not a readable IDX file: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{str(path)!r} is not an IDX file: its magic number must be 0x0000TTDD with type "
            f"code TT in {[hex(t) for t in _IDX_DTYPES]}, got {data[:4].hex()!r}."
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{str(path)!r} is truncated inside its IDX header.")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{str(path)!r} holds {len(data)} bytes, but its IDX header (dims {dims}, dtype "
            f"{dtype}) requires {expected}."
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims)


def _scale_bytes(pixels: np.ndarray) -> np.ndarray:
    # Integers 0..255 are exact in float32, so this is one correctly rounded division.
    return pixels.astype(np.float32) / np.float32(255)


def load_idx(directory: str | os.PathLike[str], *, split: str = "train") -> Dataset:
    """Loads MNIST or Fashion-MNIST from the IDX files in ``directory``.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (``split="train"``) or
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (``split="test"``), each raw or
    gzip-compressed (``.gz``); the ``.idx3-ubyte`` spelling of some mirrors is accepted too.
    The IDX header (magic number ``0x00000803`` for images, ``0x00000801`` for labels, then
    big-endian uint32 dimensions) is validated against the file size.

    Args:
      directory: folder holding the files.
      split: ``"train"`` or ``"test"``.

    Returns:
      ``Dataset`` with ``x`` float32 [n, h, w, 1] (grey levels / 255), ``y`` int32 [n], and
      ``name`` the folder's name.

    Raises:
      FileNotFoundError: if the folder or a file is missing (the message names the path).
      ValueError: for a bad magic number or header, non-uint8 images, a wrong rank, or image
        and label counts that differ; or an unknown ``split``.
      TypeError: if ``directory`` is not a path.

    Examples:
      >>> import gzip, os, struct, tempfile
      >>> import numpy as np
      >>> from jaxclust.data import load_idx
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), "wb") as f:
      ...         _ = f.write(struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18)))
      ...     with open(os.path.join(folder, "t10k-labels-idx1-ubyte"), "wb") as f:
      ...         _ = f.write(struct.pack(">II", 0x801, 2) + bytes([7, 1]))
      ...     ds = load_idx(folder, split="test")
      >>> ds.x.shape, ds.x.dtype, ds.y.tolist()
      ((2, 3, 3, 1), dtype('float32'), [7, 1])

    References:
      Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of handwritten digits"
      (IDX format). https://yann.lecun.com/exdb/mnist/

      H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST", 2017. https://arxiv.org/abs/1708.07747
    """
    folder = _directory(directory)
    split = _check_split(split, tuple(_IDX_STEMS))
    paths = []
    for stem in _IDX_STEMS[split]:
        dotted = stem.replace("-idx", ".idx")
        paths.append(_find(folder, [stem, stem + ".gz", dotted, dotted + ".gz"]))
    images, labels = _read_idx(paths[0]), _read_idx(paths[1])
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"{str(paths[0])!r} must hold uint8 images of rank 3 [n, h, w] (magic 0x00000803), "
            f"got dtype {images.dtype} and shape {images.shape}."
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{str(paths[1])!r} must hold labels of rank 1 [n] (magic 0x00000801), got shape "
            f"{labels.shape}."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{paths[0].name} holds {len(images)} images but {paths[1].name} holds "
            f"{len(labels)} labels."
        )
    return Dataset(
        x=_scale_bytes(images)[..., None], y=labels.astype(np.int32), name=folder.name
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and NumPy arrays: CIFAR files cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "ndarray":
            return np.ndarray
        if name == "dtype":
            return np.dtype
        core = getattr(np, "_core", None) or np.core
        return getattr(core.multiarray, name)


def _read_cifar_batch(path: pathlib.Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, IndexError) as e:
        raise ValueError(f"{str(path)!r} is not a CIFAR python batch: {e}") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{str(path)!r} must hold a dict, got {type(batch).__name__}.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def load_cifar(
    directory: str | os.PathLike[str],
    *,
    which: int = 10,
    split: str = "train",
    label: str = "fine",
) -> Dataset:
    """Loads CIFAR-10 or CIFAR-100 from the python pickles in ``directory``.

    CIFAR-10 (``cifar-10-batches-py``): ``data_batch_1`` .. ``data_batch_5`` (train) and
    ``test_batch``, each a dict with ``b"data"`` uint8 [10000, 3072] and ``b"labels"``.
    CIFAR-100 (``cifar-100-python``): ``train`` and ``test`` with ``b"data"``,
    ``b"fine_labels"`` (100 classes) and ``b"coarse_labels"`` (20 superclasses). Each row holds
    the 1024 red, then green, then blue values of a row-major 32×32 image. The pickles are read
    with an unpickler that only rebuilds NumPy arrays and plain containers, so a tampered file
    cannot execute code.

    Args:
      directory: folder holding the batch files.
      which: 10 or 100.
      split: ``"train"`` or ``"test"``.
      label: CIFAR-100 only: ``"fine"`` (default) or ``"coarse"``.

    Returns:
      ``Dataset`` with ``x`` float32 [n, 32, 32, 3] in [0, 1], ``y`` int32 [n], ``name``
      ``"cifar10"``/``"cifar100"`` (``"cifar100-coarse"`` for coarse labels).

    Raises:
      FileNotFoundError: if the folder or a batch file is missing (the message names the path).
      ValueError: for a file that is not a CIFAR batch (wrong pickle, missing keys, wrong
        shape or dtype), or an unknown ``which``/``split``/``label``.
      TypeError: if ``directory`` is not a path.

    Examples:
      >>> import os, pickle, tempfile
      >>> import numpy as np
      >>> from jaxclust.data import load_cifar
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 5]}
      ...     with open(os.path.join(folder, "test_batch"), "wb") as f:
      ...         pickle.dump(batch, f)
      ...     ds = load_cifar(folder, split="test")
      >>> ds.name, ds.x.shape, ds.y.tolist()
      ('cifar10', (2, 32, 32, 3), [3, 5])

    References:
      A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report,
      2009. https://www.cs.toronto.edu/~kriz/cifar.html
    """
    folder = _directory(directory)
    if which not in (10, 100) or isinstance(which, bool):
        raise ValueError(f"which must be 10 or 100, got {which!r}.")
    split = _check_split(split, ("train", "test"))
    if which == 10:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        key, name = "labels", "cifar10"
    else:
        if label not in ("fine", "coarse"):
            raise ValueError(f"label must be one of ['fine', 'coarse'], got {label!r}.")
        names = [split]
        key = f"{label}_labels"
        name = "cifar100" if label == "fine" else "cifar100-coarse"
    xs, ys = [], []
    for file_name in names:
        path = folder / file_name
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such CIFAR batch file", str(path))
        batch = _read_cifar_batch(path)
        if "data" not in batch or key not in batch:
            raise ValueError(
                f"{str(path)!r} must hold the keys b'data' and b'{key}', got "
                f"{sorted(map(str, batch))}."
            )
        data = np.asarray(batch["data"])
        labels = np.asarray(batch[key])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(
                f"{str(path)!r}: b'data' must be uint8 of shape [n, 3072], got {data.dtype} "
                f"{data.shape}."
            )
        if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{str(path)!r}: b'{key}' must be {len(data)} integer labels, got "
                f"{labels.dtype} {labels.shape}."
            )
        # Channel-planar rows: [3, 32, 32] per image, moved to NHWC.
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(labels.astype(np.int32))
    x = _scale_bytes(np.concatenate(xs))
    return Dataset(x=x, y=np.concatenate(ys), name=name)


def _stl_images(path: pathlib.Path) -> np.ndarray:
    size = path.stat().st_size
    if size % _STL_PIXELS:
        raise ValueError(
            f"{str(path)!r} holds {size} bytes, not a multiple of 3·96·96 = {_STL_PIXELS}: not "
            f"an STL-10 image file."
        )
    raw = np.fromfile(path, np.uint8)
    # Each image is 3 channel planes, each plane stored column-major: [c, col, row] → [row, col, c].
    return raw.reshape(-1, 3, _STL_SIDE, _STL_SIDE).transpose(0, 3, 2, 1)


def load_stl10(directory: str | os.PathLike[str], *, split: str = "train") -> Dataset:
    """Loads STL-10 from its binary files in ``directory`` (``stl10_binary``).

    Images ``{split}_X.bin`` are uint8, 3×96×96 per image, stored channel by channel with each
    channel in column-major order (as MATLAB writes them); labels ``{split}_y.bin`` are uint8
    1..10, returned as 0..9. ``split="unlabeled"`` reads ``unlabeled_X.bin`` and gives labels
    -1; ``"train+unlabeled"`` concatenates both (SCAN/SimCLR pretraining). Memory: the float32
    unlabelled set alone needs 100,000 × 27,648 × 4 B ≈ 11 GB.

    Args:
      directory: folder holding the ``.bin`` files.
      split: ``"train"``, ``"test"``, ``"unlabeled"`` or ``"train+unlabeled"``.

    Returns:
      ``Dataset`` with ``x`` float32 [n, 96, 96, 3] in [0, 1], ``y`` int32 [n] (-1 for
      unlabelled images), ``name`` ``"stl10"``.

    Raises:
      FileNotFoundError: if the folder or a file is missing (the message names the path).
      ValueError: for a file size that is not a whole number of images, labels outside 1..10,
        image and label counts that differ, or an unknown ``split``.
      TypeError: if ``directory`` is not a path.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from jaxclust.data import load_stl10
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     np.zeros(2 * 3 * 96 * 96, np.uint8).tofile(os.path.join(folder, "test_X.bin"))
      ...     np.array([1, 10], np.uint8).tofile(os.path.join(folder, "test_y.bin"))
      ...     ds = load_stl10(folder, split="test")
      >>> ds.x.shape, ds.y.tolist()
      ((2, 96, 96, 3), [0, 9])

    References:
      A. Coates, H. Lee and A. Y. Ng, "An Analysis of Single-Layer Networks in Unsupervised
      Feature Learning", AISTATS 2011. https://cs.stanford.edu/~acoates/stl10/
    """
    folder = _directory(directory)
    split = _check_split(split, ("train", "test", "unlabeled", "train+unlabeled"))
    xs, ys = [], []
    for part in split.split("+"):
        x_path = folder / f"{part}_X.bin"
        if not x_path.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such STL-10 image file", str(x_path))
        images = _stl_images(x_path)
        if part == "unlabeled":
            labels = np.full(len(images), -1, np.int32)
        else:
            y_path = folder / f"{part}_y.bin"
            if not y_path.is_file():
                raise FileNotFoundError(errno.ENOENT, "No such STL-10 label file", str(y_path))
            raw = np.fromfile(y_path, np.uint8)
            if len(raw) != len(images):
                raise ValueError(
                    f"{x_path.name} holds {len(images)} images but {y_path.name} holds "
                    f"{len(raw)} labels."
                )
            if raw.size and (raw.min() < 1 or raw.max() > 10):
                raise ValueError(
                    f"{str(y_path)!r} must hold labels 1..10, got values in "
                    f"[{raw.min()}, {raw.max()}]."
                )
            labels = raw.astype(np.int32) - 1
        xs.append(_scale_bytes(images))
        ys.append(labels)
    x = xs[0] if len(xs) == 1 else np.concatenate(xs)
    y = ys[0] if len(ys) == 1 else np.concatenate(ys)
    return Dataset(x=x, y=y, name="stl10")
