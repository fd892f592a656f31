"""SCAN: neighbour-consistency clustering loss, confident self-labelling, neighbour mining."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import knn
from jaxclust.losses import _deep_utils as _u

__all__ = ["ScanLoss", "scan_loss", "scan_self_label_loss", "sample_neighbors", "mine_neighbors"]

# The reference computes the consistency term as a BCE against 1, whose log is clamped at −100.
_LOG_CLAMP = -100.0


class ScanLoss(NamedTuple):
    """Output of :func:`scan_loss` (all scalars, global over shards).

    Attributes:
      total: ``consistency − entropy_weight · entropy``, the quantity to minimise.
      consistency: ``mean_i −ln⟨Φ(x_i), Φ(n_i)⟩`` over the unmasked anchors.
      entropy: ``H(Φ̄)``, entropy of the mean anchor prediction (natural log).
    """

    total: Float[Array, ""]
    consistency: Float[Array, ""]
    entropy: Float[Array, ""]


def scan_loss(
    anchor_logits: Float[Array, "n k"],
    neighbor_logits: Float[Array, "n k"],
    *,
    entropy_weight: ScalarLike = 5.0,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> ScanLoss:
    """SCAN clustering loss: neighbour consistency plus entropy of the mean prediction (Eq. 2).

    ``L = mean_i −ln⟨Φ(x_i), Φ(n_i)⟩ − λ H(Φ̄)`` with ``Φ = softmax(logits)``, ``n_i`` a
    neighbour of anchor ``x_i`` (the reference draws one of the ``K_nn`` mined neighbours per
    anchor and step: :func:`sample_neighbors`), and ``Φ̄ = mean_i Φ(x_i)`` over the anchors.
    The entropy is that of the *mean* prediction, not the mean entropy: it spreads the samples
    over clusters. It couples the whole (global) batch, so the loss is a scalar.

    Numerics (METHODS.md §3.3): ``ln⟨Φ_a, Φ_n⟩ = LSE_c(log_softmax(a)_c + log_softmax(n)_c)``,
    clamped at −100 as the reference's BCE does; ``H`` via ``xlogy``. Gradients flow through both
    the anchor and the neighbour logits.

    Args:
      anchor_logits: clustering-head logits of the anchors, shape [n, k].
      neighbor_logits: logits of one neighbour per anchor, shape [n, k].
      entropy_weight: ``λ >= 0`` (5.0 in every released SCAN config).
      where: optional mask [n]; masked anchors (and their neighbours) are ignored.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the means are global. Under plain ``jax.jit``
        on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      A :class:`ScanLoss` of scalars; ``total`` is what to minimise.

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2, or ``entropy_weight`` is negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import scan_loss
      >>> a = jnp.array([[5.0, 0.0], [0.0, 5.0]])
      >>> out = scan_loss(a, a, entropy_weight=1.0)
      >>> print(round(float(out.consistency), 4), round(float(out.entropy), 4))
      0.0134 0.6931

    References:
      Van Gansbeke, Vandenhende, Georgoulis, Proesmans, Van Gool, "SCAN: Learning to Classify
      Images without Labels", ECCV 2020, https://arxiv.org/abs/2005.12320 (Eq. 2).
    """
    anchor_logits = _checks.as_float_array(anchor_logits, "anchor_logits", ndim=2, shape="[n, k]")
    neighbor_logits = _checks.as_float_array(
        neighbor_logits, "neighbor_logits", ndim=2, shape="[n, k]"
    )
    _u.check_same_shape(anchor_logits, neighbor_logits, "anchor_logits", "neighbor_logits")
    _checks.check_nonnegative_scalar(entropy_weight, "entropy_weight")
    n = anchor_logits.shape[0]
    where = _u.check_where(where, n, "anchor_logits")
    dtype = _u.compute_dtype(jnp.promote_types(anchor_logits.dtype, neighbor_logits.dtype))
    log_a = jax.nn.log_softmax(anchor_logits.astype(dtype), axis=1)
    log_n = jax.nn.log_softmax(neighbor_logits.astype(dtype), axis=1)
    w = _u.row_weights(where, n, dtype)
    log_dot = jnp.maximum(jax.nn.logsumexp(log_a + log_n, axis=1), _LOG_CLAMP)
    consistency = _u.global_mean(-log_dot, w, axis_name)
    total_w = jnp.maximum(_collectives.psum(jnp.sum(w), axis_name), 1.0)
    mean_p = _collectives.psum(jnp.sum(w[:, None] * jnp.exp(log_a), axis=0), axis_name) / total_w
    entropy = _u.entropy(mean_p)
    total = consistency - jnp.asarray(entropy_weight, dtype) * entropy
    return ScanLoss(total=total, consistency=consistency, entropy=entropy)


def scan_self_label_loss(
    logits_weak: Float[Array, "n k"],
    logits_strong: Float[Array, "n k"],
    *,
    threshold: ScalarLike = 0.99,
    class_balance: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """SCAN's self-labelling loss: cross-entropy on confident pseudo-labels (SCAN, Sec. 2.3).

    With ``p^w = softmax(sg(logits_weak))`` (weak augmentation), the mask
    ``m_i = [max_c p^w_ic > threshold]`` and pseudo-labels ``ŷ_i = argmax_c p^w_ic``::

        L = Σ_i m_i ω_{ŷ_i} CE(logits_strong_i, ŷ_i) / Σ_i m_i ω_{ŷ_i}

    with class weights ``ω_c = n_conf / n_conf,c`` for the classes present among the confident
    samples (1 otherwise), as the reference does (METHODS.md §3.3), or ``ω = 1`` when
    ``class_balance=False``. Counts and sums are global over shards, so the result is a scalar
    coupling the batch. It is 0 (with zero gradient) when no sample is confident.

    Args:
      logits_weak: logits of the weakly augmented views, shape [n, k]; no gradient flows here.
      logits_strong: logits of the strongly augmented views, shape [n, k].
      threshold: confidence threshold in [0, 1] (paper: 0.99).
      class_balance: whether to weight classes inversely to their confident counts (static).
      where: optional mask [n]; masked samples are never confident.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and counts are global. Under plain ``jax.jit`` on
        sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar loss.

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2, or ``threshold`` is not in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import scan_self_label_loss
      >>> weak = jnp.array([[9.0, 0.0], [0.0, 0.0]])  # only the first sample is confident
      >>> strong = jnp.array([[0.0, 0.0], [5.0, 0.0]])
      >>> print(round(float(scan_self_label_loss(weak, strong)), 4))  # ln 2
      0.6931

    References:
      Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020,
      https://arxiv.org/abs/2005.12320 (Sec. 2.3).
    """
    logits_weak = _checks.as_float_array(logits_weak, "logits_weak", ndim=2, shape="[n, k]")
    logits_strong = _checks.as_float_array(logits_strong, "logits_strong", ndim=2, shape="[n, k]")
    _u.check_same_shape(logits_weak, logits_strong, "logits_weak", "logits_strong")
    _u.check_positive_scalar(threshold, "threshold", allow_zero=True, upper=1.0)
    n, k = logits_weak.shape
    where = _u.check_where(where, n, "logits_weak")
    dtype = _u.compute_dtype(jnp.promote_types(logits_weak.dtype, logits_strong.dtype))
    log_w = jax.nn.log_softmax(lax.stop_gradient(logits_weak.astype(dtype)), axis=1)
    labels = jnp.argmax(log_w, axis=1)
    confident = jnp.max(log_w, axis=1) > jnp.log(jnp.asarray(threshold, dtype))
    if where is not None:
        confident = confident & where
    m = confident.astype(dtype)
    one_hot = jax.nn.one_hot(labels, k, dtype=dtype)
    if class_balance:
        counts = _collectives.psum(jnp.sum(m[:, None] * one_hot, axis=0), axis_name)
        n_conf = jnp.sum(counts)
        omega = jnp.where(counts > 0, n_conf / jnp.where(counts > 0, counts, 1.0), 1.0)
        weights = m * (one_hot @ omega)
    else:
        weights = m
    ce = -jnp.sum(one_hot * jax.nn.log_softmax(logits_strong.astype(dtype), axis=1), axis=1)
    num = _collectives.psum(jnp.sum(weights * ce), axis_name)
    den = _collectives.psum(jnp.sum(weights), axis_name)
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def sample_neighbors(
    key: KeyArray,
    neighbor_indices: Int[Array, "n m"],
) -> Int[Array, " n"]:
    """Draws one neighbour per anchor uniformly from its mined neighbours (SCAN's estimator).

    The reference pairs each anchor with one of its ``K_nn`` neighbours, drawn anew at every
    step. Entries ``< 0`` (padding, e.g. from a mask in the neighbour search) are never drawn; an
    anchor with no valid neighbour gets ``-1``.

    Args:
      key: PRNG key.
      neighbor_indices: neighbour indices of each anchor, shape [n, m], integer.

    Returns:
      int32 array [n] of drawn neighbour indices (``-1`` where none is valid).

    Raises:
      TypeError: if ``neighbor_indices`` is not an integer array.
      ValueError: if it is not of rank 2.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import sample_neighbors
      >>> idx = jnp.array([[1, 2], [0, -1]])
      >>> out = sample_neighbors(jax.random.key(0), idx)
      >>> bool(out[0] in (1, 2)), int(out[1])
      (True, 0)
    """
    neighbor_indices = _checks.as_int_array(neighbor_indices, "neighbor_indices", ndim=2,
                                            shape="[n, m]")
    valid = neighbor_indices >= 0
    gumbel = jax.random.gumbel(key, neighbor_indices.shape)
    choice = jnp.argmax(jnp.where(valid, gumbel, -jnp.inf), axis=1)
    picked = jnp.take_along_axis(neighbor_indices, choice[:, None], axis=1)[:, 0]
    return jnp.where(jnp.any(valid, axis=1), picked, -1).astype(jnp.int32)


def mine_neighbors(
    z: Float[Array, "n d"],
    *,
    k: int,
    block_size: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, "n k"]:
    """Indices of the ``k`` nearest neighbours of every sample by cosine similarity (SCAN stage 1).

    SCAN mines ``K_nn`` neighbours (20 on CIFAR/STL, 50 on ImageNet) on the L2-normalised pretext
    features, excluding the sample itself. This is :func:`jaxclust.cluster.knn` with
    ``metric="cosine"`` and ``exclude_self=True``; it runs in row blocks, so peak memory is
    ``O(block_size · n)``.

    Args:
      z: pretext features, shape [n, d].
      k: number of neighbours (static: changing it recompiles).
      block_size: rows per block of the similarity computation (static); None lets ``knn``
        choose.
      where: optional mask [n]; masked samples are never neighbours and their own rows are
        ``-1`` (as are missing neighbours when fewer than ``k`` samples are valid;
        :func:`sample_neighbors` skips them).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then indices refer to the global sample order (shard ``s`` holds rows
        ``s·n … s·n + n − 1``). Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      int32 array [n, k] of neighbour indices, nearest first (ties to the lower index).

    Raises:
      TypeError: if ``z`` is not floating point or ``k`` is not an int.
      ValueError: if ``z`` is not of rank 2 or ``k`` is not in ``[1, n − 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import mine_neighbors
      >>> z = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
      >>> mine_neighbors(z, k=1).tolist()
      [[1], [0], [3], [2]]

    References:
      Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020,
      https://arxiv.org/abs/2005.12320 (Sec. 2.1).
    """
    result = knn(z, k=k, metric="cosine", exclude_self=True, block_size=block_size, where=where,
                 axis_name=axis_name)
    return result.indices.astype(jnp.int32)
