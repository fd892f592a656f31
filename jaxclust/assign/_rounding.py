"""Rounding a soft assignment to hard labels with exact cluster sizes (METHODS.md §2.7)."""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

from jaxclust import _checks, _collectives

__all__ = ["hard_assign", "balanced_counts"]


class _GreedyState(NamedTuple):
    labels: Int[Array, " n"]
    capacity: Int[Array, " k"]
    assigned: Int[Array, ""]
    step: Int[Array, ""]


def balanced_counts(n: int, k: int) -> tuple[int, ...]:
    """Cluster sizes ``m_j = ⌊n/k⌋ + 1[j < n mod k]``: as equal as possible, summing to ``n``.

    Args:
      n: number of samples, ``>= 1``.
      k: number of clusters, ``1 <= k <= n``.

    Returns:
      A tuple of ``k`` Python ints summing to ``n``, the larger ones first.

    Raises:
      ValueError: if ``n < 1``, ``k < 1`` or ``k > n``.
      TypeError: if ``n`` or ``k`` is not an int.

    Examples:
      >>> from jaxclust.assign import balanced_counts
      >>> balanced_counts(10, 4)
      (3, 3, 2, 2)
    """
    n = _checks.check_positive_int(n, "n")
    k = _checks.check_num_clusters(k, n)
    return tuple(n // k + (j < n % k) for j in range(k))


def _check_counts(column_counts, n: int, k: int) -> tuple[int, ...]:
    if column_counts is None:
        return balanced_counts(n, k) if k <= n else ()
    try:
        counts = tuple(operator.index(c) for c in column_counts)
    except TypeError:
        raise TypeError(
            "column_counts must be a tuple of Python ints (static: changing it recompiles), got "
            f"{type(column_counts).__name__}."
        ) from None
    if len(counts) != k:
        raise ValueError(f"column_counts must have k={k} entries, got {len(counts)}.")
    if min(counts) < 0:
        raise ValueError(f"column_counts must be non-negative, got {counts}.")
    if sum(counts) != n:
        raise ValueError(f"column_counts must sum to n={n}, got sum {sum(counts)}.")
    return counts


def hard_assign(
    plan_or_scores: Float[Array, "n k"],
    *,
    column_counts: tuple[int, ...] | None = None,
) -> Int[Array, " n"]:
    """Hard labels with exactly ``column_counts[j]`` samples in cluster ``j`` (greedy rounding).

    Greedy capacitated rounding (METHODS.md §2.7, approximation 1): all ``(i, j)`` pairs are
    sorted by ``plan_or_scores[i, j]``, largest first, and visited in that order; sample ``i``
    takes label ``j`` when it is still unlabelled and cluster ``j`` still has room. The result is
    always feasible: every sample gets a label and cluster ``j`` receives exactly
    ``column_counts[j]`` samples. Ties are broken by flat index (row-major), so the result is
    deterministic.

    Greedy rounding is not optimal in general: ``Σ_i plan_or_scores[i, label_i]`` can fall short
    of the exact optimum (a linear assignment on the matrix with column ``j`` replicated
    ``column_counts[j]`` times, ``O(n³)``). On 50 random uniform 12×3 and 30×5 score matrices the
    mean relative gap is about 3% (worst 10%) when rounding the scores themselves, and 0.04-0.3%
    (worst 3%) when rounding a :func:`sinkhorn_knopp` plan of them (``epsilon=0.02``, 500 steps);
    on well-separated data the rounded low-``epsilon`` plan is the exact optimum. Rounding a converged
    Sinkhorn plan rather than raw scores is the intended use: the plan already balances the
    columns, so greedy decisions rarely conflict.

    Cost: a sort of ``n·k`` entries and a sequential ``lax.while_loop`` over the sorted pairs
    that stops once all ``n`` samples are labelled (at most ``n·k`` iterations); peak memory
    ``O(n·k)``. The result is an integer array and is not differentiable. The sort is global:
    under ``jax.jit`` on row-sharded inputs the matrix is gathered (explicitly, for meshes with
    ``AxisType.Explicit`` axes); there is no ``axis_name``.

    Args:
      plan_or_scores: soft assignment (e.g. from :func:`sinkhorn_knopp`) or scores, shape
        [n, k], floating point, finite; larger means more preferred.
      column_counts: exact number of samples per cluster, ``k`` non-negative Python ints
        summing to ``n`` (static: changing it recompiles); if None, :func:`balanced_counts`
        ``(n, k)``, which requires ``k <= n``.

    Returns:
      Labels [n], int32, in ``[0, k)``, with ``bincount(labels, length=k) == column_counts``.

    Raises:
      ValueError: if ``plan_or_scores`` is not of rank 2 or holds NaN/Inf (when concrete), or
        ``column_counts`` has the wrong length, a negative entry or does not sum to ``n``
        (or, when None, ``k > n``).
      TypeError: if ``plan_or_scores`` has a non-floating dtype or ``column_counts`` holds
        non-integers.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import hard_assign
      >>> plan = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
      >>> print(hard_assign(plan))
      [0 0 1 1]
      >>> print(hard_assign(plan, column_counts=(1, 3)))
      [0 1 1 1]

    References:
      Caron et al., SwAV, NeurIPS 2020, https://arxiv.org/abs/2006.09882 (balanced codes).
      Asano, Rupprecht, Vedaldi, SeLa, ICLR 2020, https://arxiv.org/abs/1911.05371 (hard
      equipartitioned labels from the Sinkhorn plan).
    """
    x = _checks.as_float_array(plan_or_scores, "plan_or_scores", ndim=2, shape="[n, k]")
    n, k = x.shape
    if column_counts is None and k > n:
        raise ValueError(
            f"plan_or_scores has k={k} > n={n} columns; pass column_counts (with zeros) to leave "
            "clusters empty."
        )
    counts = _check_counts(column_counts, n, k)

    if _collectives.explicit_sample_axis(x) is not None:  # the sort is global: gather the rows
        x = jax.sharding.reshard(x, jax.sharding.PartitionSpec())
    order = jnp.argsort(-x.reshape(-1), stable=True).astype(jnp.int32)
    rows, cols = order // k, order % k

    def cond(state: _GreedyState):
        return state.assigned < n

    def body(state: _GreedyState):
        i, j = rows[state.step], cols[state.step]
        take = (state.labels[i] < 0) & (state.capacity[j] > 0)
        labels = state.labels.at[i].set(jnp.where(take, j, state.labels[i]))
        capacity = state.capacity.at[j].add(-take.astype(jnp.int32))
        return _GreedyState(labels, capacity, state.assigned + take.astype(jnp.int32), state.step + 1)

    init = _GreedyState(
        labels=jnp.full((n,), -1, jnp.int32),
        capacity=jnp.asarray(counts, jnp.int32),
        assigned=jnp.int32(0),
        step=jnp.int32(0),
    )
    return lax.while_loop(cond, body, init).labels
