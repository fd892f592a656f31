"""Collectives that reduce to the identity when no mesh axis is named.

Functions that reduce over samples take ``axis_name``: inside ``jax.shard_map`` with the sample axis
split over that mesh axis, these helpers combine per-shard partial results; with ``axis_name=None``
they are no-ops, so one code path serves single-device, ``jit``-on-sharded-arrays and ``shard_map``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def psum(x, axis_name: str | None):
    """``lax.psum`` over ``axis_name``, or ``x`` itself when ``axis_name`` is None."""
    return x if axis_name is None else lax.psum(x, axis_name)


def pmax(x, axis_name: str | None):
    """``lax.pmax`` over ``axis_name``, or ``x`` itself when ``axis_name`` is None."""
    return x if axis_name is None else lax.pmax(x, axis_name)


def shard_index(axis_name: str | None):
    """Index of this shard along ``axis_name`` (0 when unsharded)."""
    return jnp.int32(0) if axis_name is None else lax.axis_index(axis_name)


def all_gather(x, axis_name: str | None):
    """Stacks ``x`` from every shard along a new leading axis (size 1 when unsharded).

    Built from a ``psum`` of one-hot placements rather than ``lax.all_gather`` so that the result
    is typed as replicated (invariant) under ``shard_map``'s varying-axis checks, which loop carries
    holding replicated state (centroids) require. Meant for small per-shard candidate sets.
    """
    if axis_name is None:
        return x[None]
    size = lax.psum(1, axis_name)
    placed = jnp.zeros((size,) + x.shape, x.dtype).at[lax.axis_index(axis_name)].set(x)
    return lax.psum(placed, axis_name)


def pvary(x, axis_name: str | None):
    """Marks a replicated value as varying over ``axis_name`` (for per-shard loop carries)."""
    if axis_name is None or not hasattr(lax, "pcast"):
        return x
    return lax.pcast(x, axis_name, to="varying")


def fold_in_shard(key: jax.Array, axis_name: str | None) -> jax.Array:
    """A key that differs between shards (the same ``key`` when unsharded)."""
    return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))
