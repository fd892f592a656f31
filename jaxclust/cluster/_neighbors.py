"""Exact k-nearest-neighbour search in row blocks, optionally over rows sharded across devices."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust.cluster._distances import compute_dtype, resolve_budget, squared_norms

_METRICS = ("sqeuclidean", "cosine")


class KNNResult(NamedTuple):
    """Output of :func:`knn`.

    Attributes:
      indices: global row indices of the ``k`` nearest neighbours of every query row, int32,
        shape [n, k], nearest first (ties go to the lower index). ``-1`` marks a missing
        neighbour: every entry of a row masked out by ``where``, and the tail of a row when
        fewer than ``k`` database rows are valid.
      values: the matching squared Euclidean distances (ascending, ``+inf`` where the index is
        ``-1``) for ``metric="sqeuclidean"``, or cosine similarities (descending, ``-inf``
        where the index is ``-1``) for ``metric="cosine"``; shape [n, k].
    """

    indices: Int[Array, "n k"]
    values: Float[Array, "n k"]


def _query_rows(n: int, m: int, block_size: int | None) -> int:
    """Query rows per block so that one [rows, m] score block stays within the budget."""
    if block_size is not None:
        return min(block_size, n)
    max_rows = max(1, resolve_budget(None) // max(m, 1))
    num_blocks = -(-n // max_rows)
    return -(-n // num_blocks)


def knn(
    x: Float[Array, "n d"],
    *,
    k: int,
    metric: str = "sqeuclidean",
    exclude_self: bool = True,
    block_size: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> KNNResult:
    """The ``k`` nearest rows of ``x`` to every row of ``x`` (exact, brute force).

    Scores between a block of query rows and the whole database are computed with one matrix
    product at ``Precision.HIGHEST`` and reduced with ``lax.top_k``; blocks run one after another
    under ``lax.map``. Squared distances use ``‖q‖² − 2⟨q, x⟩ + ‖x‖²`` clamped at 0 (the data are
    centred first to limit cancellation); cosine similarities are inner products of unit rows
    (a zero row has similarity 0 with everything).

    Peak memory beyond the inputs is ``O(N·d + block_size·N)`` for a database of ``N`` rows: one
    [block_size, N] score block at a time, never the dense N×N matrix. With ``block_size=None``
    blocks hold at most 2**20 scores on CPU and 2**27 on accelerators (the budget of
    :func:`jaxclust.cluster.kmeans`).

    Args:
      x: data, shape [n, d], floating point, finite. The rows are both the queries and the
        database.
      k: number of neighbours per row (static: changing it recompiles). At most the number of
        database rows, minus one when ``exclude_self``.
      metric: ``"sqeuclidean"`` (values are squared distances, ascending) or ``"cosine"``
        (values are cosine similarities, descending) (static).
      exclude_self: if True (default) a row is never its own neighbour (by index, so exact
        duplicates of a row still count) (static).
      block_size: query rows per block (static); None picks it from the budget above.
      where: validity mask, shape [n]; rows where it is False are not in the database and their
        own result rows are ``-1`` with ``+inf`` (``-inf`` for cosine) values.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, the queries are the local rows, the database is
        all rows gathered over the axis (``N = n · num_shards`` rows on every shard) and indices
        are global (shard ``s`` holds rows ``s·n … s·n + n − 1``). Under plain ``jax.jit`` on
        sharded arrays leave it None.

    Returns:
      A :class:`KNNResult` with ``indices`` [n, k] and ``values`` [n, k].

    Raises:
      TypeError: if ``x`` is not floating point, ``k`` or ``block_size`` is not an int, or
        ``where`` is not boolean.
      ValueError: if ``x`` is not [n, d] or holds NaN/Inf, ``k`` is out of range, ``metric`` is
        unknown, or ``where`` has the wrong length.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import knn
      >>> x = jnp.array([[0.0], [1.0], [3.0], [7.0]])
      >>> result = knn(x, k=2)
      >>> result.indices.tolist()
      [[1, 2], [0, 2], [1, 0], [2, 1]]
      >>> result.values[3].tolist()
      [16.0, 36.0]

    References:
      Cover & Hart, "Nearest neighbor pattern classification", IEEE Trans. Inf. Theory 13(1),
      1967. Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs",
      https://arxiv.org/abs/1702.08734 (blocked brute-force k-selection on accelerators).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    k = _checks.check_positive_int(k, "k")
    _checks.check_choice(metric, "metric", _METRICS)
    if block_size is not None:
        block_size = _checks.check_positive_int(block_size, "block_size")
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=x.shape[0], other="x")
    if axis_name is None:
        available = x.shape[0] - int(bool(exclude_self))
        if k > available:
            raise ValueError(
                f"k must be <= {available} (the number of rows of x"
                f"{' minus one, as exclude_self=True' if exclude_self else ''}), got k={k}."
            )
    x = x.astype(compute_dtype(x.dtype))
    solve = functools.partial(
        _knn, k=k, metric=metric, exclude_self=bool(exclude_self), block_size=block_size
    )
    explicit_axis = _collectives.explicit_sample_axis(x) if axis_name is None else None
    if explicit_axis is None:
        return solve(x, where, axis_name=axis_name)
    mask = jnp.ones(x.shape[0], bool) if where is None else where
    spec = jax.sharding.PartitionSpec(explicit_axis)
    return _collectives.map_over_samples(
        lambda x, mask, axis_name: solve(x, mask, axis_name=axis_name),
        explicit_axis, (x, mask), (), out_specs=KNNResult(spec, spec),
    )


def _knn(x, where, *, k, metric, exclude_self, block_size, axis_name) -> KNNResult:
    n = x.shape[0]
    if axis_name is None:
        db, db_where, offset = x, where, 0
    else:
        db = lax.all_gather(x, axis_name, tiled=True)
        db_where = None if where is None else lax.all_gather(where, axis_name, tiled=True)
        offset = lax.axis_index(axis_name) * n
    m = db.shape[0]
    if k > m - int(exclude_self):
        raise ValueError(f"k must be <= {m - int(exclude_self)} for {m} database rows, got k={k}.")

    if metric == "cosine":
        def unit(a):
            norms = jnp.linalg.norm(a, axis=1, keepdims=True)
            return a / jnp.where(norms > 0, norms, 1.0)

        db, x = unit(db), unit(x)
    else:
        # Centring does not change distances and reduces cancellation in the expansion.
        valid = jnp.ones(m, db.dtype) if db_where is None else db_where.astype(db.dtype)
        shift = jnp.sum(valid[:, None] * db, axis=0) / jnp.maximum(jnp.sum(valid), 1.0)
        db, x = db - shift[None, :], x - shift[None, :]
    db_sq = squared_norms(db)
    # Scores are "higher is nearer": negated squared distances, or similarities.
    bad = jnp.zeros(m, bool) if db_where is None else ~db_where
    column = lax.broadcasted_iota(jnp.int32, (1, m), 1)

    def block(args):
        xb, rows = args  # rows: global indices of the queries in this block
        xy = jnp.matmul(xb, db.T, precision=lax.Precision.HIGHEST)
        if metric == "cosine":
            scores = xy
        else:
            scores = -jnp.maximum(squared_norms(xb)[:, None] - 2.0 * xy + db_sq[None, :], 0.0)
        drop = bad[None, :]
        if exclude_self:
            drop = drop | (column == rows[:, None])
        scores = jnp.where(drop, -jnp.inf, scores)
        top, idx = lax.top_k(scores, k)
        missing = top == -jnp.inf
        idx = jnp.where(missing, -1, idx).astype(jnp.int32)
        values = top if metric == "cosine" else -top
        return idx, values

    rows_global = offset + jnp.arange(n, dtype=jnp.int32)
    rows = _query_rows(n, m, block_size)
    if rows >= n:
        idx, values = block((x, rows_global))
    else:
        num_blocks = -(-n // rows)
        pad = num_blocks * rows - n
        xp = jnp.pad(x, ((0, pad), (0, 0))).reshape(num_blocks, rows, x.shape[1])
        rp = jnp.pad(rows_global, (0, pad), constant_values=-1).reshape(num_blocks, rows)
        idx, values = lax.map(block, (xp, rp))
        idx = idx.reshape(-1, k)[:n]
        values = values.reshape(-1, k)[:n]
    if where is not None:
        empty = jnp.inf if metric == "sqeuclidean" else -jnp.inf
        idx = jnp.where(where[:, None], idx, -1)
        values = jnp.where(where[:, None], values, empty)
    return KNNResult(indices=idx, values=values)


__all__ = ["KNNResult", "knn"]
