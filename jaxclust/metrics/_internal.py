"""Internal clustering metrics: how well the clusters fit the geometry of the data."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

from .._checks import (
    as_float_array,
    as_int_array,
    check_choice,
    check_positive_int,
    check_same_leading,
    is_concrete,
)
from ._contingency import encode_labels

__all__ = ["silhouette_samples", "silhouette_score"]

_METRICS = ("euclidean", "cosine")


def _check_inputs(x, labels, num_clusters, metric, chunk_size):
    """Eager checks; returns ``(x, codes, k, chunk_size)`` with codes in [0, k) or padding."""
    x = as_float_array(x, "x", ndim=2, shape="[n, d]")
    labels = as_int_array(labels, "labels")
    check_same_leading([x, labels], ["x", "labels"])
    check_choice(metric, "metric", _METRICS)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    enc, _ = encode_labels(
        {"labels": labels}, {"labels": num_clusters}, {"labels": "num_clusters"}, None
    )
    codes, k = enc["labels"]
    codes = jnp.asarray(codes)
    if is_concrete(codes):
        values = np.asarray(codes)
        counted = values[(values >= 0) & (values < k)]
        num_labels = np.unique(counted).size
        if not 2 <= num_labels <= counted.size - 1:
            raise ValueError(
                f"labels has {num_labels} distinct value(s) over {counted.size} counted "
                f"sample(s); the silhouette needs 2 <= number of labels <= n - 1."
            )
    return x, codes, k, chunk_size


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _silhouette(x, labels, k: int, metric: str, chunk_size: int):
    """Per-sample silhouettes and the mask of counted samples."""
    n, d = x.shape
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    x = x.astype(dtype)
    valid = (labels >= 0) & (labels < k)
    codes = jnp.where(valid, labels, 0).astype(jnp.int32)
    clusters = jnp.arange(k, dtype=jnp.int32)
    onehot = ((codes[:, None] == clusters[None, :]) & valid[:, None]).astype(dtype)
    counts = jnp.sum(onehot, axis=0)

    if metric == "euclidean":
        # Distances are translation invariant; centring shrinks ‖y‖² and with it the
        # cancellation in ‖y_i‖² - 2<y_i, y_j> + ‖y_j‖².
        y = x - jnp.mean(x, axis=0, keepdims=True)
        sq = jnp.sum(y * y, axis=1)
    else:
        norm = jnp.sqrt(jnp.sum(x * x, axis=1, keepdims=True))
        # As in scikit-learn, an all-zero row stays zero: cosine distance 1 to everything.
        y = x / jnp.where(norm > 0, norm, 1)
        sq = None

    rows = min(chunk_size, n)
    num_chunks = -(-n // rows)
    pad = num_chunks * rows - n
    columns = jnp.arange(n)

    def block(args):
        yb, index = args
        gram = jnp.matmul(yb, y.T, precision=lax.Precision.HIGHEST)
        # Exact self-exclusion: the diagonal is set to 0 by index, not left to rounding (a
        # rounding residue of 1e-16 in d² would become 1e-8 after the square root).
        off_diagonal = index[:, None] != columns[None, :]
        if metric == "euclidean":
            d2 = jnp.sum(yb * yb, axis=1)[:, None] - 2.0 * gram + sq[None, :]
            positive = (d2 > 0) & off_diagonal
            # Double `where` keeps the gradient of sqrt finite at coincident points.
            dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, d2, 1)), 0)
        else:
            dist = jnp.where(off_diagonal, jnp.clip(1 - gram, 0, 2), 0)
        # Per-cluster distance sums [rows, k] by a one-hot matmul: no [n, n] buffer is kept.
        return jnp.matmul(dist, onehot, precision=lax.Precision.HIGHEST)

    blocks = jnp.pad(y, ((0, pad), (0, 0))).reshape(num_chunks, rows, d)
    index = jnp.arange(num_chunks * rows).reshape(num_chunks, rows)
    sums = lax.map(block, (blocks, index)).reshape(num_chunks * rows, k)[:n]

    own = jnp.take_along_axis(sums, codes[:, None], axis=1)[:, 0]
    own_count = counts[codes]
    a = own / jnp.where(own_count > 1, own_count - 1, 1)
    others = (clusters[None, :] != codes[:, None]) & (counts > 0)[None, :]
    means = sums / jnp.where(counts > 0, counts, 1)[None, :]
    b = jnp.min(jnp.where(others, means, jnp.inf), axis=1)
    has_other = jnp.isfinite(b)
    b = jnp.where(has_other, b, 0)
    denominator = jnp.maximum(a, b)
    # Singletons get 0 (Rousseeuw 1987), as do a = b = 0 (coincident points in two clusters),
    # padding, and, under jit where labels cannot be checked, a single non-empty cluster.
    ok = valid & (own_count > 1) & has_other & (denominator > 0)
    s = jnp.where(ok, (b - a) / jnp.where(ok, denominator, 1), 0)
    return s, valid


def silhouette_samples(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    num_clusters: int | None = None,
    metric: str = "euclidean",
    chunk_size: int = 512,
) -> Float[Array, " n"]:
    """Silhouette coefficient of every sample, ``s_i = (b_i - a_i) / max(a_i, b_i)``.

    ``a_i`` is the mean distance from ``x_i`` to the other members of its cluster and ``b_i`` the
    smallest mean distance from ``x_i`` to the members of another cluster; ``s_i = 0`` for
    members of singleton clusters. Rows are processed in blocks of ``chunk_size`` with
    ``lax.map``: each block forms its ``[chunk_size, n]`` distances and reduces them to
    per-cluster sums with a one-hot matmul, so the ``[n, n]`` matrix is never built. Time is
    ``O(n² (d + k))`` and peak memory ``O(chunk_size · n + n · k)`` floats: for n = 50,000 and
    the default chunk_size one [512, 50,000] float32 block is 100 MB, and a few such
    temporaries are live at once. Matmuls run at ``Precision.HIGHEST``;
    half-precision inputs are computed in float32.

    Euclidean distances come from ``‖x_i‖² - 2<x_i, x_j> + ‖x_j‖²`` on centred data, clamped
    at 0 before the square root, with the diagonal set to exactly 0. Cosine distances are
    ``1 - cos``, clipped to [0, 2] (an all-zero row is at distance 1 from everything).

    Args:
      x: data, float array of shape [n, d]; must be finite.
      labels: cluster of every sample, integer array of shape [n].
      num_clusters: number of clusters k (static: changing it recompiles). If None, labels may
        hold any integers and are remapped on the host with ``np.unique`` (needs a concrete
        array, so not under ``jit``). If given, labels outside ``[0, num_clusters)`` mark
        padding: those samples are left out of every cluster and get ``s_i = 0``.
      metric: "euclidean" (default) or "cosine".
      chunk_size: rows per block (static: changing it recompiles); bounds peak memory.

    Returns:
      Silhouettes, shape [n], in [-1, 1].

    Raises:
      TypeError: if x is not floating, labels are not integer, or chunk_size / num_clusters is
        not a Python int.
      ValueError: if x is not [n, d] or holds NaN/Inf, labels is not [n], the lengths differ,
        metric is unknown, labels need remapping but are traced (pass ``num_clusters``), or
        concrete labels do not have 2 <= number of labels <= n - 1.

    Examples:
      >>> import functools

import jax
import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0], [9.0, 9.0]])
      >>> s = jaxclust.metrics.silhouette_samples(x, jnp.array([0, 0, 1, 1, 2]))
      >>> [round(float(v), 3) for v in s]
      [0.802, 0.802, 0.802, 0.802, 0.0]

    References:
      Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
      analysis", Journal of Computational and Applied Mathematics 20 (1987),
      https://doi.org/10.1016/0377-0427(87)90125-7.
    """
    x, codes, k, chunk_size = _check_inputs(x, labels, num_clusters, metric, chunk_size)
    return _silhouette(x, codes, k, metric, chunk_size)[0]


def silhouette_score(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    num_clusters: int | None = None,
    metric: str = "euclidean",
    chunk_size: int = 512,
) -> Float[Array, ""]:
    """Mean silhouette coefficient over the samples (see :func:`silhouette_samples`).

    Padding samples (labels outside ``[0, num_clusters)`` when ``num_clusters`` is given) are
    left out of the mean. Peak memory is ``O(chunk_size · n + n · k)`` floats.

    Args:
      x: data, float array of shape [n, d]; must be finite.
      labels: cluster of every sample, integer array of shape [n].
      num_clusters: number of clusters k (static: changing it recompiles). If None, labels may
        hold any integers and are remapped on the host with ``np.unique`` (needs a concrete
        array, so not under ``jit``). If given, labels outside ``[0, num_clusters)`` mark
        padding.
      metric: "euclidean" (default) or "cosine".
      chunk_size: rows per block (static: changing it recompiles); bounds peak memory.

    Returns:
      Scalar in [-1, 1]; NaN when no sample is counted (possible only under jit).

    Raises:
      TypeError: if x is not floating, labels are not integer, or chunk_size / num_clusters is
        not a Python int.
      ValueError: if x is not [n, d] or holds NaN/Inf, labels is not [n], the lengths differ,
        metric is unknown, labels need remapping but are traced (pass ``num_clusters``), or
        concrete labels do not have 2 <= number of labels <= n - 1.

    Examples:
      >>> import jax
      >>> import functools

import jax
import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]])
      >>> print(f"{float(jaxclust.metrics.silhouette_score(x, jnp.array([3, 3, 8, 8]))):.3f}")
      0.802
      >>> f = jax.jit(lambda x, y: jaxclust.metrics.silhouette_score(x, y, num_clusters=2))
      >>> print(f"{float(f(x, jnp.array([0, 0, 1, -1]))):.3f}")  # -1 is padding
      0.535

    References:
      Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
      analysis", Journal of Computational and Applied Mathematics 20 (1987),
      https://doi.org/10.1016/0377-0427(87)90125-7.
    """
    x, codes, k, chunk_size = _check_inputs(x, labels, num_clusters, metric, chunk_size)
    s, valid = _silhouette(x, codes, k, metric, chunk_size)
    return jnp.sum(s) / jnp.sum(valid).astype(s.dtype)
