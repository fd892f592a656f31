"""Shared type aliases.

One dimension vocabulary is used across the library (see ``STYLE.md``): ``n`` samples (the
per-shard count inside ``jax.shard_map``), ``m`` a second point set, ``d`` features, ``k``
clusters or prototypes, ``t`` tokens, ``v`` views.
"""

from typing import TypeAlias

import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Float

#: A hyperparameter that may be a Python float or a traced scalar.
ScalarLike: TypeAlias = float | Float[Array, ""]
#: A JAX PRNG key, either a new-style typed key or a legacy ``uint32[2]`` key.
KeyArray: TypeAlias = jax.Array
#: Anything ``jnp.asarray`` accepts: JAX arrays, NumPy arrays, Python scalars and sequences.
ArrayLikeT: TypeAlias = ArrayLike | np.ndarray

__all__ = ["ScalarLike", "KeyArray", "ArrayLikeT"]
