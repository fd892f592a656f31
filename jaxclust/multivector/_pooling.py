"""Token pooling: shrink a document's token vectors by clustering them and averaging each cluster."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks
from jaxclust._typing import KeyArray
from jaxclust.cluster._ward import _agglomerate

__all__ = ["PooledTokens", "token_pool"]


class PooledTokens(NamedTuple):
    """Output of :func:`token_pool`.

    Attributes:
      tokens: pooled token vectors, shape [t, d], padded with zeros: the protected prefix first
        (unchanged), then one vector per cluster.
      mask: which rows of ``tokens`` are real, boolean [t]; its count is the pooled length.
      labels: cluster of every input token, int32 [t] (a row of ``tokens``); ``-1`` for padded
        input tokens. Protected tokens map to their own row.
    """

    tokens: Float[Array, "t d"]
    mask: Bool[Array, " t"]
    labels: Int[Array, " t"]


def _target(n, pool_factor: int, rounding: str):
    if rounding == "floor":
        return jnp.maximum(n // pool_factor, 1)
    return jnp.maximum(-(-n // pool_factor), 1)


def _static_target(n: int, pool_factor: int, rounding: str) -> int:
    return max(n // pool_factor if rounding == "floor" else -(-n // pool_factor), 1)


def _normalize(x):
    norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.where(norm > 0, norm, 1.0)


def _kmeans_labels(x, valid, num_clusters, k_max: int, key, num_steps: int):
    """Masked Lloyd on unit vectors with ``num_clusters <= k_max`` live centres (METHODS.md §1.5)."""
    t = x.shape[0]
    scores = jnp.where(valid, jax.random.gumbel(key, (t,), x.dtype), -jnp.inf)
    start = lax.top_k(scores, k_max)[1]  # distinct random valid tokens
    centres = x[start]
    live = jnp.arange(k_max) < num_clusters

    def assign(c):
        d = jnp.sum(c * c, 1)[None, :] - 2 * x @ c.T
        return jnp.argmin(jnp.where(live[None, :], d, jnp.inf), axis=1)

    def step(_, c):
        lab = assign(c)
        w = valid.astype(x.dtype)
        sums = jax.ops.segment_sum(w[:, None] * x, lab, k_max)
        cnt = jax.ops.segment_sum(w, lab, k_max)
        return jnp.where((cnt > 0)[:, None], sums / jnp.where(cnt > 0, cnt, 1.0)[:, None], c)

    centres = lax.fori_loop(0, num_steps, step, centres)
    lab = assign(centres)
    used = jax.ops.segment_sum(valid.astype(jnp.int32), lab, k_max) > 0
    rank = jnp.cumsum(used.astype(jnp.int32)) - 1  # drop clusters left empty
    return jnp.where(valid, rank[lab], -1).astype(jnp.int32)


def token_pool(
    tokens: Float[Array, "t d"],
    mask: Bool[Array, " t"] | None = None,
    *,
    pool_factor: int = 2,
    method: str = "ward",
    rounding: str = "floor",
    num_protected: int = 0,
    renormalize: bool = False,
    key: KeyArray | None = None,
    kmeans_steps: int = 10,
) -> PooledTokens:
    """Pool a document's token embeddings into about ``1/pool_factor`` as many vectors.

    METHODS.md §5.2 (Clavié et al. 2024): the first ``num_protected`` valid-or-not rows are kept
    as they are; the other ``n'`` valid tokens are clustered into ``n_c = max(1, ⌊n'/f⌋)``
    clusters (``rounding="ceil"``: ``⌈n'/f⌉``) and each cluster is replaced by the mean of its
    members. ``method="ward"`` clusters the L2-normalised tokens with Ward linkage in Euclidean
    geometry (:func:`jaxclust.cluster.agglomerative`, cut at exactly ``n_c`` clusters when there
    are no ties; ``‖x̂ − ŷ‖² = 2 − 2cos``, never ``1 − cos`` as a distance). ``method="kmeans"``
    runs ``kmeans_steps`` Lloyd steps from ``n_c`` random valid tokens (needs ``key``) and drops
    clusters left empty. The reference implementations do not re-normalise the means
    (``renormalize=False``).

    Fixed shapes throughout, so ``jax.vmap`` pools a padded batch of documents ``[m, t, d]``
    with masks ``[m, t]``, each document with its own ``n_c``. The Ward loop runs ``(t − p) −
    n_c(t − p)`` merge steps (the most any document of length ``t`` needs), each ``O(t)``;
    memory is ``O(t²)`` per document. On CPU, pool a large corpus with ``jax.lax.map(...,
    batch_size=16)`` rather than one ``vmap`` over every document: small batches keep the
    ``[batch, t, t]`` matrices in cache and the per-merge refresh loop runs as long as the
    slowest document of a batch, not of the whole corpus.

    Args:
      tokens: token embeddings of one document, shape [t, d].
      mask: valid tokens, boolean [t]; None means all valid.
      pool_factor: ``f >= 1`` (static); 1 returns the valid tokens unchanged.
      method: ``"ward"`` (default) or ``"kmeans"`` (static).
      rounding: ``"floor"`` (both reference implementations) or ``"ceil"`` (static).
      num_protected: ``p``, leading rows kept unpooled (PyLate uses 1, Stanford ColBERT 0).
      renormalize: L2-normalise the pooled means (static).
      key: PRNG key, required for ``method="kmeans"``.
      kmeans_steps: Lloyd steps for ``method="kmeans"`` (static).

    Returns:
      A :class:`PooledTokens` ``(tokens [t, d], mask [t], labels [t])``.

    Raises:
      TypeError: if ``tokens`` is not floating point or ``mask`` is not boolean.
      ValueError: on wrong shapes, NaN/Inf, unknown ``method``/``rounding``, ``pool_factor < 1``,
        ``num_protected`` outside ``[0, t]``, or a missing ``key`` for k-means.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.multivector import token_pool
      >>> x = jnp.array([[1.0, 0.0], [0.98, 0.2], [0.0, 1.0], [0.2, 0.98]])
      >>> out = token_pool(x, pool_factor=2)
      >>> out.mask.tolist(), out.labels.tolist()
      ([True, True, False, False], [0, 0, 1, 1])
      >>> out.tokens[:2].round(2).tolist()
      [[0.99, 0.1], [0.1, 0.99]]

    References:
      Clavié, Chaffin & Adams, "Reducing the Footprint of Multi-Vector Retrieval with Minimal
      Performance Impact via Token Pooling", arXiv:2409.14683 (https://arxiv.org/abs/2409.14683).
    """
    tokens = _checks.as_float_array(tokens, "tokens", ndim=2, shape="[t, d]")
    t = tokens.shape[0]
    if mask is None:
        mask = jnp.ones(t, bool)
    else:
        mask = _checks.as_bool_array(mask, "mask", n=t, other="tokens")
    pool_factor = _checks.check_positive_int(pool_factor, "pool_factor")
    _checks.check_choice(method, "method", ("ward", "kmeans"))
    _checks.check_choice(rounding, "rounding", ("floor", "ceil"))
    num_protected = _checks.check_positive_int(num_protected, "num_protected", minimum=0)
    if num_protected > t:
        raise ValueError(f"num_protected must be <= the number of tokens t={t}, got {num_protected}.")
    kmeans_steps = _checks.check_positive_int(kmeans_steps, "kmeans_steps", minimum=0)
    if method == "kmeans" and key is None:
        raise ValueError("key is required for method='kmeans' (random initial centres).")
    if not jnp.issubdtype(tokens.dtype, jnp.float64):
        tokens = tokens.astype(jnp.float32)

    rows = jnp.arange(t)
    protected = rows < num_protected
    pooled_in = mask & ~protected
    n = jnp.sum(pooled_in.astype(jnp.int32))
    n_c = _target(n, pool_factor, rounding)
    free = t - num_protected
    unit = _normalize(tokens)
    if free == 0:
        labels = jnp.full(t, -1, jnp.int32)
    elif method == "ward":
        max_merges = free - _static_target(free, pool_factor, rounding)
        labels = _agglomerate(unit, pooled_in, n_c, "ward", max(max_merges, 0)).labels
    else:
        k_max = _static_target(free, pool_factor, rounding)
        labels = _kmeans_labels(unit, pooled_in, n_c, k_max, key, kmeans_steps)

    # Protected tokens keep their own row; cluster c goes to row p + c.
    out_row = jnp.where(protected, rows, jnp.where(labels >= 0, labels + num_protected, -1))
    out_row = jnp.where(mask, out_row, -1).astype(jnp.int32)
    w = (out_row >= 0).astype(tokens.dtype)
    target = jnp.where(out_row >= 0, out_row, t)  # dropped into an extra segment
    sums = jax.ops.segment_sum(w[:, None] * tokens, target, t + 1)[:t]
    counts = jax.ops.segment_sum(w, target, t + 1)[:t]
    new_mask = counts > 0
    pooled = sums / jnp.where(new_mask, counts, 1.0)[:, None]
    if renormalize:
        pooled = _normalize(pooled)
    return PooledTokens(tokens=pooled, mask=new_mask, labels=out_row)
