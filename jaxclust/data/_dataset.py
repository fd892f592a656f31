"""The ``Dataset`` container returned by every loader and generator in ``jaxclust.data``."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["Dataset"]


class Dataset(NamedTuple):
    """A feature matrix with optional ground-truth labels; rows are samples.

    ``load`` returns NumPy arrays (host data that the caller places or shards, e.g. with
    ``jax.device_put``); the synthetic generators return JAX arrays. Either kind goes straight into
    any ``jaxclust`` function.

    ``Dataset`` is a pytree whose leaves are ``x`` and ``y`` (when not ``None``); ``name`` is
    static metadata. So a ``Dataset`` can be returned from ``jax.jit`` or ``jax.vmap``, passed to
    ``jax.device_put`` with a sharding, or mapped with ``jax.tree.map``, and keeps its name.

    Attributes:
      x: features, shape [n, d]; ``float32`` (the generators accept another floating ``dtype``).
        Bundled image sets are scaled to [0, 1].
      y: ground-truth class labels, shape [n], ``int32``; ``None`` when the source has none.
      name: short name of the source: ``"digits"``, ``"mnist5k"``, the stem of a loaded ``.npz``
        file, or the generator (``"blobs"``, ``"subspaces"``, ``"moons"``, ``"circles"``).

    Examples:
      >>> import numpy as np
      >>> from jaxclust.data import Dataset
      >>> ds = Dataset(x=np.zeros((4, 2), np.float32), y=None, name="toy")
      >>> x, y, name = ds
      >>> x.shape, y, name
      ((4, 2), None, 'toy')
      >>> import jax
      >>> jax.tree.map(lambda a: a.shape, ds)
      Dataset(x=(4, 2), y=None, name='toy')
    """

    x: Float[Array | np.ndarray, "n d"]
    y: Int[Array | np.ndarray, " n"] | None
    name: str


# Registered explicitly (this takes precedence over JAX's generic namedtuple handling) so that the
# string ``name`` is auxiliary data rather than a leaf: jit and vmap cannot return a str leaf.
jax.tree_util.register_pytree_with_keys(
    Dataset,
    lambda ds: (
        ((jax.tree_util.GetAttrKey("x"), ds.x), (jax.tree_util.GetAttrKey("y"), ds.y)),
        ds.name,
    ),
    lambda name, children: Dataset(x=children[0], y=children[1], name=name),
    flatten_func=lambda ds: ((ds.x, ds.y), ds.name),
)
