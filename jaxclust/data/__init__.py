"""Datasets: bundled real data (``load``), user ``.npz`` files and synthetic generators.

Every loader and generator returns a ``Dataset(x, y, name)`` whose rows are samples.
"""

from ._augment import augment as augment
from ._augment import color_jitter as color_jitter
from ._augment import gaussian_noise as gaussian_noise
from ._augment import random_affine as random_affine
from ._augment import random_flip as random_flip
from ._augment import random_grayscale as random_grayscale
from ._augment import random_resized_crop as random_resized_crop
from ._bundled import DATASETS as DATASETS
from ._bundled import load as load
from ._dataset import Dataset as Dataset
from ._multivector import MultiVectorRetrieval as MultiVectorRetrieval
from ._multivector import make_multivector_retrieval as make_multivector_retrieval
from ._files import load_cifar as load_cifar
from ._files import load_idx as load_idx
from ._files import load_stl10 as load_stl10
from ._synthetic import make_blobs as make_blobs
from ._synthetic import make_circles as make_circles
from ._synthetic import make_moons as make_moons
from ._synthetic import make_subspaces as make_subspaces

__all__ = [
    "DATASETS",
    "Dataset",
    "MultiVectorRetrieval",
    "augment",
    "color_jitter",
    "gaussian_noise",
    "load",
    "load_cifar",
    "load_idx",
    "load_stl10",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_multivector_retrieval",
    "make_subspaces",
    "random_affine",
    "random_flip",
    "random_grayscale",
    "random_resized_crop",
]
