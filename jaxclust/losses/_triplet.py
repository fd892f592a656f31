"""Triplet loss with online batch-hard or semi-hard mining."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import (
    _gather,
    _is_self,
    _mask,
    _normalize,
    _squared_distances,
)

_MINING = ("semi-hard", "batch-hard")
_CHUNK_BUDGET = 1 << 24  # entries of the [chunk, n, n] semi-hard tensor held at once


def _pairwise(x, y, squared):
    sq = _squared_distances(x, y)
    if squared:
        return sq
    # sqrt has an infinite slope at 0 (self-distances, duplicates): guard value and gradient.
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def triplet_loss(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    margin: ScalarLike = 0.2,
    mining: str = "semi-hard",
    squared: bool = True,
    normalize: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    r"""Triplet loss ``max(0, d(a,p) − d(a,n) + α)`` with negatives mined inside the batch.

    ``mining="semi-hard"`` (FaceNet; the online rule of TF-Addons' ``triplet_semihard_loss``,
    METHODS.md §3.15): for every anchor–positive pair ``(a, p)`` (same label, ``a ≠ p``) the
    negative is ``n* = argmin{d_an : d_an > d_ap, y_n ≠ y_a}``, the closest negative farther than
    the positive; if there is none, ``n* = argmax_{y_n ≠ y_a} d_an``, the farthest negative. The
    loss is the mean of ``max(0, d_ap − d_an* + α)`` over all anchor–positive pairs.

    ``mining="batch-hard"`` (Hermans et al.): for every anchor the hardest positive
    ``max_p d_ap`` and the hardest negative ``min_n d_an``; the loss is the mean over anchors of
    ``max(0, max_p d_ap − min_n d_an + α)``.

    Pairs or anchors without any negative (a batch of one class) and anchors without a positive
    are left out of the mean; the loss is 0 when nothing is left. The loss is batch-coupled (a
    scalar). Semi-hard mining looks at ``[n, n]`` candidates per anchor (``[N, N]`` with ``N``
    the global batch under ``axis_name``), in chunks of anchors so that at most about 16M entries
    are held at once.

    Args:
      x: embeddings, shape [n, d].
      labels: integer classes, shape [n]; negative labels mark padding.
      margin: ``α ≥ 0``, default 0.2 (FaceNet). May be traced.
      mining: "semi-hard" (default) or "batch-hard"; static.
      squared: distances are squared Euclidean (default, FaceNet) or Euclidean (False; the
        gradient of the square root is guarded at 0).
      normalize: L2-normalise the embeddings first (FaceNet embeds on the unit sphere).
      where: optional validity mask [n]; invalid samples take no part in any triplet.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, positives and negatives are mined among the
        embeddings and labels of all shards (gathered with a differentiable ``all_gather``), the
        mean runs over the anchors (pairs) of the global batch, and every shard returns the
        single-device loss of the global batch. Under plain ``jax.jit`` on sharded arrays leave
        it None and XLA inserts the collectives.

    Returns:
      The mean triplet loss, a scalar.

    Raises:
      TypeError: non-floating ``x``, non-integer ``labels``, non-boolean ``where``.
      ValueError: bad ranks or lengths, unknown ``mining``, a negative margin.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import triplet_loss
      >>> x = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
      >>> float(triplet_loss(x, jnp.array([0, 0, 1, 1])))  # classes far apart: margin satisfied
      0.0

    References:
      Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and
      Clustering", CVPR 2015, https://arxiv.org/abs/1503.03832; Hermans, Beyer, Leibe, "In
      Defense of the Triplet Loss for Person Re-Identification", 2017,
      https://arxiv.org/abs/1703.07737.
    """
    x = _checks.as_float_array(x, "x", 2, "[n, d]")
    labels = _checks.as_int_array(labels, "labels", 1, "[n]")
    _checks.check_same_leading([x, labels], ["x", "labels"])
    _checks.check_choice(mining, "mining", _MINING)
    _checks.check_nonnegative_scalar(margin, "margin")
    n = x.shape[0]
    valid = _mask(where, n, "where", "x") & (labels >= 0)
    if normalize:
        x = _normalize(x)
    # Rows are this shard's anchors, columns the candidates of the global batch (shard-major).
    x_all = _gather(x, axis_name)
    labels_all = _gather(labels, axis_name)
    valid_all = _gather(valid, axis_name)
    num = x_all.shape[0]
    dist = _pairwise(x, x_all, squared)  # [n, N]
    same = labels[:, None] == labels_all[None, :]
    both = valid[:, None] & valid_all[None, :]
    pos = both & same & ~_is_self(n, num, axis_name)
    neg = both & ~same
    has_neg = jnp.any(neg, axis=1)
    if mining == "batch-hard":
        hardest_pos = jnp.max(jnp.where(pos, dist, -jnp.inf), axis=1)
        hardest_neg = jnp.min(jnp.where(neg, dist, jnp.inf), axis=1)
        ok = jnp.any(pos, axis=1) & has_neg
        per = jnp.maximum(
            jnp.where(ok, hardest_pos, 0.0) - jnp.where(ok, hardest_neg, 0.0) + margin, 0.0
        )
        per = jnp.where(ok, per, 0.0)
        return _global_mean(per, ok, axis_name)

    def one_anchor(a):
        d_a, neg_a = dist[a], neg[a]
        d_ap = d_a  # the positive's distance, indexed by p along axis 0 below
        farther = neg_a[None, :] & (d_a[None, :] > d_ap[:, None])  # [p, n]
        outside = jnp.min(jnp.where(farther, d_a[None, :], jnp.inf), axis=1)
        inside = jnp.max(jnp.where(neg_a, d_a, -jnp.inf))
        d_an = jnp.where(jnp.any(farther, axis=1), outside, inside)
        ok = pos[a] & has_neg[a]
        d_an = jnp.where(ok, d_an, 0.0)
        return jnp.where(ok, jnp.maximum(d_ap - d_an + margin, 0.0), 0.0), ok

    batch = max(1, min(n, _CHUNK_BUDGET // max(num * num, 1)))
    per, ok = lax.map(one_anchor, jnp.arange(n), batch_size=batch)
    return _global_mean(per, ok, axis_name)


def _global_mean(per, ok, axis_name):
    """Mean of ``per`` over the kept entries of every shard (0 when none is kept)."""
    total = _collectives.psum(jnp.sum(per), axis_name)
    count = _collectives.psum(jnp.sum(ok, dtype=jnp.int32), axis_name)
    return total / jnp.maximum(count, 1).astype(total.dtype)
