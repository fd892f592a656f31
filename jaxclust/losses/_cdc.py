"""CDC calibration: super-cluster soft targets for a calibration head, confident selection.

Only what METHODS.md §3.9 states precisely is implemented: the calibration head's target and
loss, and the per-class confident selection for the clustering head. Left out, because the
spec does not define them: the loss weights, the per-class budget ``n``, the number of
super-clusters and any schedule (all are arguments here, with no defaults claimed to be the
paper's), and the head initialisation from k-means centroids made near-orthogonal by fitting a
cosine-softmax (a training-loop procedure, not a loss). Super-clusters are computed by the caller,
e.g. ``jaxclust.cluster.kmeans`` on L1-normalised features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust.losses import _deep_utils as _u

__all__ = ["cdc_calibration_targets", "cdc_calibration_loss", "cdc_select_confident"]


def cdc_calibration_targets(
    cluster_probs: Float[Array, "n k"],
    super_labels: Int[Array, " n"],
    *,
    num_super_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "n k"]:
    """Soft calibration targets: the mean clustering-head prediction of each sample's super-cluster.

    ``t_i = mean_{j : s_j = s_i} p_j`` where ``s`` are the labels of a fine k-means
    "super-clustering" of the (L1-normalised) features and ``p`` the clustering head's
    probabilities (METHODS.md §3.9). Sums and counts run over the unmasked rows of every
    shard. Returned under ``stop_gradient``: it is a target.

    Args:
      cluster_probs: clustering-head probabilities, shape [n, k].
      super_labels: super-cluster of every sample, int [n] in ``[0, num_super_clusters)``.
      num_super_clusters: number of super-clusters (static).
      where: optional mask [n]; masked rows do not enter the means (their target is still
        that of their super-cluster).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; the means are then global.

    Returns:
      Targets [n, k]; each row is a probability vector (zero for an invalid super label).

    Raises:
      TypeError: if ``cluster_probs`` is not floating point or ``super_labels`` not integer.
      ValueError: on wrong ranks or lengths.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cdc_calibration_targets
      >>> p = jnp.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
      >>> print(cdc_calibration_targets(p, jnp.array([0, 0, 1]), num_super_clusters=2))
      [[0.7 0.3]
       [0.7 0.3]
       [0.2 0.8]]

    References:
      Jia, Cheng, Liu, Hou, "Towards Calibrated Deep Clustering Network", ICLR 2025,
      https://arxiv.org/abs/2403.02998.
    """
    cluster_probs = _checks.as_float_array(cluster_probs, "cluster_probs", ndim=2, shape="[n, k]")
    super_labels = _checks.as_int_array(super_labels, "super_labels")
    _checks.check_same_leading([cluster_probs, super_labels], ["cluster_probs", "super_labels"])
    num_super_clusters = _checks.check_positive_int(num_super_clusters, "num_super_clusters")
    n = cluster_probs.shape[0]
    where = _u.check_where(where, n, "cluster_probs")
    explicit = _collectives.explicit_sample_axis(cluster_probs) if axis_name is None else None
    if explicit is not None:  # explicitly sharded rows: run the axis_name path under shard_map
        mask = jnp.ones((n,), bool) if where is None else where
        return _collectives.map_over_samples(
            lambda p, s, m, axis_name: cdc_calibration_targets(
                p, s, num_super_clusters=num_super_clusters, where=m, axis_name=axis_name),
            explicit, (cluster_probs, super_labels, mask), (),
            out_specs=jax.sharding.PartitionSpec(explicit),
        )
    dtype = _u.compute_dtype(cluster_probs.dtype)
    p = lax.stop_gradient(cluster_probs.astype(dtype))
    member = jax.nn.one_hot(super_labels, num_super_clusters, dtype=dtype)  # invalid → 0 row
    w = _u.row_weights(where, n, dtype)[:, None]
    sums = _collectives.psum(jnp.matmul((member * w).T, p, precision=lax.Precision.HIGHEST),
                             axis_name)  # [s, k]
    counts = _collectives.psum(jnp.sum(member * w, axis=0), axis_name)  # [s]
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    return jnp.matmul(member, means, precision=lax.Precision.HIGHEST)


def cdc_calibration_loss(
    calibration_logits: Float[Array, "n k"],
    targets: Float[Array, "n k"],
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """CDC calibration-head loss: soft cross-entropy plus the negative entropy of the mean.

    ``L = mean_i [−Σ_c sg(t_ic) ln r_ic] + Σ_c r̄_c ln r̄_c`` with ``r = softmax(calibration
    logits)``, ``t`` from :func:`cdc_calibration_targets` and ``r̄`` the (global) batch mean of
    ``r``; the second term is ``−H(r̄)`` and pushes towards balanced clusters (METHODS.md §3.9).
    The relative weight of the two terms is not specified by METHODS.md: both have weight one.
    Batch-coupled: a scalar.

    Args:
      calibration_logits: calibration-head logits, shape [n, k].
      targets: soft targets, shape [n, k].
      where: optional mask [n]; masked rows are ignored.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; the means are then global.

    Returns:
      Scalar loss.

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cdc_calibration_loss
      >>> t = jnp.array([[0.5, 0.5], [0.5, 0.5]])
      >>> print(round(float(cdc_calibration_loss(jnp.zeros((2, 2)), t)), 4))  # ln 2 − ln 2
      0.0

    References:
      Jia, Cheng, Liu, Hou, "Towards Calibrated Deep Clustering Network", ICLR 2025,
      https://arxiv.org/abs/2403.02998.
    """
    calibration_logits = _checks.as_float_array(calibration_logits, "calibration_logits", ndim=2,
                                                shape="[n, k]")
    targets = _checks.as_float_array(targets, "targets", ndim=2, shape="[n, k]")
    _u.check_same_shape(calibration_logits, targets, "calibration_logits", "targets")
    n = targets.shape[0]
    where = _u.check_where(where, n, "calibration_logits")
    dtype = _u.compute_dtype(jnp.promote_types(calibration_logits.dtype, targets.dtype))
    log_r = jax.nn.log_softmax(calibration_logits.astype(dtype), axis=1)
    w = _u.row_weights(where, n, dtype)
    ce = -jnp.sum(lax.stop_gradient(targets.astype(dtype)) * log_r, axis=1)
    mean_ce = _u.global_mean(ce, w, axis_name)
    total_w = jnp.maximum(_collectives.psum(jnp.sum(w), axis_name), 1.0)
    r_bar = _collectives.psum(jnp.sum(w[:, None] * jnp.exp(log_r), axis=0), axis_name) / total_w
    return mean_ce - _u.entropy(r_bar)


def cdc_select_confident(
    calibration_probs: Float[Array, "n k"],
    *,
    num_per_class: int,
    where: Bool[Array, " n"] | None = None,
) -> tuple[Int[Array, " n"], Bool[Array, " n"]]:
    """CDC's confident pseudo-labels for the clustering head.

    For each class ``c``, the samples whose calibrated prediction is ``c`` are ranked by their
    calibrated probability ``r_ic`` and the top ``⌊num_per_class · r̄⌋`` are kept, with ``r̄`` the
    mean calibrated confidence ``mean_i max_c r_ic`` of the (unmasked) batch (METHODS.md §3.9).
    Restricting the ranking to samples predicted as ``c`` (so that no sample is selected for
    two classes) is our reading [C]; the spec says only "per class, rank samples by calibrated
    probability". Train the clustering head with cross-entropy on ``labels`` where ``mask``
    (e.g. :func:`sela_loss` with ``where=mask``). The ranking is local to the given samples:
    there is no ``axis_name``.

    Args:
      calibration_probs: calibration-head probabilities, shape [n, k].
      num_per_class: the budget ``n`` per class (static; not specified by METHODS.md).
      where: optional mask [n]; masked samples are never selected.

    Returns:
      ``(labels, mask)``: int32 argmax labels [n] and the boolean selection [n].

    Raises:
      TypeError: if ``calibration_probs`` is not floating point or ``num_per_class`` not an int.
      ValueError: if ``calibration_probs`` is not of rank 2 or ``num_per_class < 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cdc_select_confident
      >>> r = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
      >>> labels, mask = cdc_select_confident(r, num_per_class=2)
      >>> labels.tolist(), mask.tolist()  # budget ⌊2 · 0.825⌋ = 1 per class
      ([0, 0, 0, 1], [True, False, False, True])

    References:
      Jia, Cheng, Liu, Hou, "Towards Calibrated Deep Clustering Network", ICLR 2025,
      https://arxiv.org/abs/2403.02998.
    """
    calibration_probs = _checks.as_float_array(calibration_probs, "calibration_probs", ndim=2,
                                               shape="[n, k]")
    num_per_class = _checks.check_positive_int(num_per_class, "num_per_class")
    n, k = calibration_probs.shape
    where = _u.check_where(where, n, "calibration_probs")
    r = lax.stop_gradient(calibration_probs)
    labels = jnp.argmax(r, axis=1).astype(jnp.int32)
    conf = jnp.max(r, axis=1)
    valid = jnp.ones((n,), bool) if where is None else where
    w = valid.astype(conf.dtype)
    mean_conf = jnp.sum(w * conf) / jnp.maximum(jnp.sum(w), 1.0)
    budget = jnp.floor(num_per_class * mean_conf)
    # Rank within class: sort by (class, −confidence); invalid samples go last in their class.
    score = jnp.where(valid, conf, -jnp.inf)
    order = jnp.lexsort((-score, labels))
    sorted_labels = labels[order]
    first = jnp.searchsorted(sorted_labels, jnp.arange(k), side="left")  # start of each class
    rank_sorted = jnp.arange(n) - first[sorted_labels]
    rank = jnp.zeros((n,), jnp.int32).at[order].set(rank_sorted.astype(jnp.int32))
    return labels, valid & (rank < budget)
