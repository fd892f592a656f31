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


def logsumexp_over_samples(x, axis_name: str | None):
    """``logsumexp`` over axis 0 (the sample axis) of ``x``, global across shards.

    Each shard reduces its rows to ``ℓ_s``; then ``m = pmax(ℓ_s)`` and
    ``LSE = m + ln psum(exp(ℓ_s − m))`` (METHODS.md §2.1, sharding). Columns that are ``-inf``
    everywhere stay ``-inf`` without producing NaN.
    """
    return combine_logsumexp(jax.nn.logsumexp(x, axis=0), axis_name)


def combine_logsumexp(local, axis_name: str | None):
    """The global ``logsumexp`` from each shard's own ``local`` one (``local`` itself when
    ``axis_name`` is None); ``-inf`` everywhere stays ``-inf`` without producing NaN."""
    if axis_name is None:
        return local
    m = lax.pmax(lax.stop_gradient(local), axis_name)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m + jnp.log(lax.psum(jnp.exp(local - m), axis_name))


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


def segment_sum(data, segment_ids, num_segments: int):
    """``jax.ops.segment_sum`` that also works on explicitly sharded samples.

    Under a mesh with ``AxisType.Explicit`` axes (``jax.make_mesh``'s default in recent JAX), a
    scatter over sharded ``segment_ids`` cannot infer its output sharding, so a replicated output
    is requested and XLA reduces the per-shard sums. Out-of-range ids are dropped.
    """
    sharding = getattr(jax.typeof(segment_ids), "sharding", None)
    spec = getattr(sharding, "spec", None)
    if spec is not None and any(axis is not None for axis in spec):
        out = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        zeros = jnp.zeros((num_segments,) + data.shape[1:], data.dtype)
        return zeros.at[segment_ids].add(data, mode="drop", out_sharding=out)
    return jax.ops.segment_sum(data, segment_ids, num_segments=num_segments)


def explicit_sample_axis(x):
    """The mesh axis that explicitly shards the rows of ``x``, or None.

    Under a mesh with ``AxisType.Explicit`` axes (``jax.make_mesh``'s default in recent JAX),
    shardings are part of array types and many ops (scatter, top-k, reshapes of sharded axes)
    demand annotations. Solvers that reduce over samples therefore run themselves under
    ``jax.shard_map`` over this axis, reusing their ``axis_name`` code path (see
    :func:`map_over_samples`). Returns None for unsharded or auto-sharded arrays, where XLA's
    partitioner handles ``jit`` on its own.
    """
    typeof = getattr(jax, "typeof", None)
    sharding = getattr(typeof(x), "sharding", None) if typeof is not None else None
    spec = getattr(sharding, "spec", None)
    if not spec or spec[0] is None or any(s is not None for s in spec[1:]):
        return None
    return spec[0]


def map_over_samples(fn, axis, samples: tuple, replicated: tuple, *, out_specs):
    """Runs ``fn(*samples, *replicated, axis_name=axis)`` under ``jax.shard_map`` over ``axis``.

    Arrays in ``samples`` have samples on their leading axis and are resharded to ``P(axis)``;
    arrays in ``replicated`` (keys, centres) are passed whole to every shard. Explicitly sharded
    inputs cannot be closed over, so every array argument goes through here.
    """
    mesh = jax.typeof(samples[0]).sharding.mesh
    spec = jax.sharding.PartitionSpec(axis)
    samples = tuple(jax.sharding.reshard(a, spec) for a in samples)
    mapped = jax.shard_map(
        lambda *args: fn(*args, axis_name=axis),
        mesh=mesh,
        in_specs=(spec,) * len(samples) + (jax.sharding.PartitionSpec(),) * len(replicated),
        out_specs=out_specs,
    )
    return mapped(*samples, *replicated)
