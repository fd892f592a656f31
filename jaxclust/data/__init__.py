"""Datasets: bundled real data (``load``), user ``.npz`` files and synthetic generators.

Every loader and generator returns a ``Dataset(x, y, name)`` whose rows are samples.
"""

from ._bundled import DATASETS as DATASETS
from ._bundled import load as load
from ._dataset import Dataset as Dataset
from ._synthetic import make_blobs as make_blobs
from ._synthetic import make_circles as make_circles
from ._synthetic import make_moons as make_moons
from ._synthetic import make_subspaces as make_subspaces

__all__ = [
    "DATASETS",
    "Dataset",
    "load",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_subspaces",
]
