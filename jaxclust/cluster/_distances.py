"""Squared Euclidean distances and memory-bounded nearest-centroid search."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

from jaxclust import _checks

#: Default cap on the entries of one block of the [n, k] distance matrix, by backend (static).
#: On CPU, blocks of about 2**20 entries (4 MiB in float32) stay in cache, so the argmin runs on
#: hot data; accelerators want large blocks for occupancy: 2**27 entries is 512 MiB in float32.
CPU_DISTANCE_BUDGET = 2**20
ACCELERATOR_DISTANCE_BUDGET = 2**27
DEFAULT_DISTANCE_BUDGET = None


def resolve_budget(budget: int | None) -> int:
    """The distance-block budget: ``budget`` itself, or the backend default when it is None."""
    if budget is not None:
        return budget
    return CPU_DISTANCE_BUDGET if jax.default_backend() == "cpu" else ACCELERATOR_DISTANCE_BUDGET


def squared_norms(x: Float[Array, "n d"]) -> Float[Array, " n"]:
    """Row-wise squared L2 norms."""
    return jnp.sum(x * x, axis=-1)


def squared_distances(
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    x_sq: Float[Array, " n"] | None = None,
    y_sq: Float[Array, " m"] | None = None,
) -> Float[Array, "n m"]:
    """``‖x_i − y_j‖²`` as ``‖x‖² − 2⟨x, y⟩ + ‖y‖²`` clamped at 0 (METHODS.md §0.3).

    The inner products run at ``Precision.HIGHEST`` so that GPUs do not silently use TF32, whose
    10-bit mantissa is too coarse for the cancellation in this expansion.
    """
    if x_sq is None:
        x_sq = squared_norms(x)
    if y_sq is None:
        y_sq = squared_norms(y)
    xy = jnp.matmul(x, y.T, precision=lax.Precision.HIGHEST)
    return jnp.maximum(x_sq[:, None] - 2.0 * xy + y_sq[None, :], 0.0)


def rows_per_block(n: int, k: int, budget: int) -> int:
    """Rows of ``x`` per block so that a block of the [n, k] distance matrix has <= budget entries.

    Blocks are balanced (``ceil(n / num_blocks)`` rows each) so the padded tail is small.
    """
    max_rows = max(1, budget // max(k, 1))
    num_blocks = -(-n // max_rows)
    return -(-n // num_blocks)


def first_index_of_min(values: Float[Array, "n k"], minima: Float[Array, " n"]) -> Int[Array, " n"]:
    """``argmin`` along axis 1 given the row minima, ties to the lowest index.

    Written as ``k − max_j [values_j == min] · (k − j)``: two plain reductions that XLA:CPU
    vectorises, where its variadic (value, index) ``argmin`` reduction is slower than the
    distance GEMM itself (measured in ``experiments/benchmarks/kmeans.py``).
    """
    k = values.shape[1]
    iota = lax.broadcasted_iota(jnp.int32, values.shape, 1)
    hits = jnp.where(values == minima[:, None], k - iota, 0)
    return (k - jnp.max(hits, axis=1)).astype(jnp.int32)


def nearest_centroid(
    x: Float[Array, "n d"],
    centroids: Float[Array, "k d"],
    *,
    x_sq: Float[Array, " n"] | None = None,
    budget: int | None = DEFAULT_DISTANCE_BUDGET,
) -> tuple[Int[Array, " n"], Float[Array, " n"]]:
    """Index of and squared distance to the nearest centroid, ties to the lowest index.

    The argmin runs over ``‖μ_k‖² − 2⟨x, μ_k⟩`` (the ``‖x‖²`` term is the same for every centre,
    as in scikit-learn's Lloyd kernel); ``‖x‖²`` is added back to the minimum, clamped at 0.
    When ``n * k`` exceeds ``budget`` the rows are processed in blocks with ``lax.map``, so peak
    memory is ``O(min(n * k, budget))`` on top of the inputs.
    """
    n, k = x.shape[0], centroids.shape[0]
    if x_sq is None:
        x_sq = squared_norms(x)
    c_sq = squared_norms(centroids)

    def block(args):
        xb, xb_sq = args
        xc = jnp.matmul(xb, centroids.T, precision=lax.Precision.HIGHEST)
        partial = c_sq[None, :] - 2.0 * xc
        best = jnp.min(partial, axis=1)
        return first_index_of_min(partial, best), jnp.maximum(xb_sq + best, 0.0)

    rows = rows_per_block(n, k, resolve_budget(budget))
    if rows >= n:
        return block((x, x_sq))
    num_blocks = -(-n // rows)
    pad = num_blocks * rows - n
    xp = jnp.pad(x, ((0, pad), (0, 0))).reshape(num_blocks, rows, x.shape[1])
    xp_sq = jnp.pad(x_sq, (0, pad)).reshape(num_blocks, rows)
    labels, dist = lax.map(block, (xp, xp_sq))
    return labels.reshape(-1)[:n], dist.reshape(-1)[:n]


compute_dtype = _checks.compute_dtype  # re-exported for the cluster modules


__all__ = [
    "ACCELERATOR_DISTANCE_BUDGET",
    "CPU_DISTANCE_BUDGET",
    "DEFAULT_DISTANCE_BUDGET",
    "resolve_budget",
    "compute_dtype",
    "first_index_of_min",
    "nearest_centroid",
    "rows_per_block",
    "squared_distances",
    "squared_norms",
]
