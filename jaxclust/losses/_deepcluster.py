"""DeepCluster helpers: label alignment across re-clusterings and uniform sampling over classes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray
from jaxclust.cluster import kmeans
from jaxclust.losses import _deep_utils as _u
from jaxclust.metrics import match_clusters_to_classes

__all__ = ["align_labels", "recluster", "class_balanced_weights", "sample_class_balanced"]


def align_labels(
    new_labels: Int[Array, " n"],
    old_labels: Int[Array, " n"],
    *,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, " n"]:
    """Renames the clusters of ``new_labels`` to best agree with ``old_labels`` (Hungarian).

    DeepCluster re-runs k-means every epoch, so cluster ids are arbitrary between epochs and the
    classifier head would be re-initialised; matching the new clusters one-to-one to the old ones
    (maximising the number of samples that keep their id, with
    :func:`jaxclust.metrics.match_clusters_to_classes`) keeps the head's rows meaningful. Labels
    outside ``[0, num_clusters)`` are passed through unchanged.

    Args:
      new_labels: labels of the new clustering, int [n].
      old_labels: labels of the previous clustering, int [n].
      num_clusters: number of clusters in both (static).
      where: optional mask [n]; masked samples do not vote in the matching.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; the matching then uses every shard. Under plain ``jax.jit`` on sharded arrays
        leave it None.

    Returns:
      int32 labels [n]: ``mapping[new_labels]``, a permutation of the new cluster ids.

    Raises:
      TypeError: if labels are not integer arrays or ``num_clusters`` is not an int.
      ValueError: if labels are not of rank 1 or their lengths differ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import align_labels
      >>> old = jnp.array([0, 0, 1, 1, 2])
      >>> new = jnp.array([2, 2, 0, 0, 1])
      >>> align_labels(new, old, num_clusters=3).tolist()
      [0, 0, 1, 1, 2]

    References:
      Caron, Bojanowski, Joulin, Douze, "Deep Clustering for Unsupervised Learning of Visual
      Features", ECCV 2018, https://arxiv.org/abs/1807.05520.
    """
    new_labels = _checks.as_int_array(new_labels, "new_labels")
    old_labels = _checks.as_int_array(old_labels, "old_labels")
    _checks.check_same_leading([new_labels, old_labels], ["new_labels", "old_labels"])
    num_clusters = _checks.check_positive_int(num_clusters, "num_clusters")
    mapping = match_clusters_to_classes(
        old_labels, new_labels, num_classes=num_clusters, num_clusters=num_clusters,
        where=where, axis_name=axis_name,
    )
    inside = (new_labels >= 0) & (new_labels < num_clusters)
    mapped = mapping[jnp.clip(new_labels, 0, num_clusters - 1)]
    return jnp.where(inside, mapped, new_labels).astype(jnp.int32)


def recluster(
    features: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    previous_labels: Int[Array, " n"] | None = None,
    n_init: int = 1,
    max_steps: int = 300,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, " n"]:
    """DeepCluster's per-epoch pseudo-labels: k-means on the features, aligned to the last ones.

    Runs :func:`jaxclust.cluster.kmeans` on ``features`` and, when ``previous_labels`` is
    given, renames the clusters with :func:`align_labels`. DeepCluster preprocesses the
    features with PCA to 256 dimensions, whitening and L2 normalisation before k-means; do that
    first (not done here).

    Args:
      features: (preprocessed) features of the whole dataset, shape [n, d].
      k: number of pseudo-classes (static; DeepCluster: 10,000 on ImageNet).
      key: PRNG key for k-means++ seeding.
      previous_labels: last epoch's labels [n] to align to, or None.
      n_init: k-means restarts (static).
      max_steps: k-means iteration cap (static).
      where: optional mask [n]; masked samples get label -1.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis (passed to k-means and the matching).

    Returns:
      int32 labels [n] in ``[0, k)``, ``-1`` where masked.

    Raises:
      TypeError: if ``features`` is not floating point or labels are not integer.
      ValueError: on wrong shapes or ``k`` out of range.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import recluster
      >>> x = jnp.array([[0.0], [0.1], [5.0], [5.1]])
      >>> recluster(x, k=2, key=jax.random.key(0), previous_labels=jnp.array([1, 1, 0, 0])).tolist()
      [1, 1, 0, 0]

    References:
      Caron, Bojanowski, Joulin, Douze, "Deep Clustering for Unsupervised Learning of Visual
      Features", ECCV 2018, https://arxiv.org/abs/1807.05520.
    """
    result = kmeans(features, k=k, key=key, n_init=n_init, max_steps=max_steps, where=where,
                    axis_name=axis_name)
    labels = result.labels.astype(jnp.int32)
    if where is not None:
        labels = jnp.where(where, labels, -1)
    if previous_labels is not None:
        labels = align_labels(labels, previous_labels, num_clusters=k, where=where,
                              axis_name=axis_name)
    return labels


def _class_counts(labels, num_clusters, where, axis_name, dtype):
    labels = _checks.as_int_array(labels, "labels")
    n = labels.shape[0]
    where = _u.check_where(where, n, "labels")
    valid = (labels >= 0) & (labels < num_clusters)
    if where is not None:
        valid = valid & where
    one_hot = jax.nn.one_hot(jnp.where(valid, labels, -1), num_clusters, dtype=dtype)
    counts = _collectives.psum(jnp.sum(one_hot, axis=0), axis_name)
    return one_hot, counts, valid


def class_balanced_weights(
    labels: Int[Array, " n"],
    *,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    """Per-sample weights ``w_i = N / (K_+ · n_{y_i})``: every pseudo-class weighs the same.

    DeepCluster trains on samples drawn uniformly over pseudo-classes so that a few huge
    clusters cannot dominate; weighting the loss by ``w`` is the deterministic equivalent.
    ``N`` is the number of valid samples and ``K_+`` the number of non-empty classes, so the
    weights average to one and each non-empty class has total weight ``N / K_+``. Invalid labels
    and masked samples get weight 0.

    Args:
      labels: pseudo-labels, int [n].
      num_clusters: number of pseudo-classes (static).
      where: optional mask [n].
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; counts are then global. Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      Non-negative weights [n].

    Raises:
      TypeError: if ``labels`` is not an integer array or ``where`` is not boolean.
      ValueError: if ``labels`` is not of rank 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import class_balanced_weights
      >>> print(class_balanced_weights(jnp.array([0, 0, 0, 1]), num_clusters=3))
      [0.66666667 0.66666667 0.66666667 2.        ]

    References:
      Caron et al., "Deep Clustering for Unsupervised Learning of Visual Features", ECCV 2018,
      https://arxiv.org/abs/1807.05520.
    """
    num_clusters = _checks.check_positive_int(num_clusters, "num_clusters")
    dtype = jnp.promote_types(jnp.float32, jnp.asarray(0.0).dtype)
    one_hot, counts, valid = _class_counts(labels, num_clusters, where, axis_name, dtype)
    total = jnp.sum(counts)
    nonempty = jnp.sum(counts > 0)
    per_class = jnp.where(counts > 0, total / (nonempty * jnp.where(counts > 0, counts, 1.0)), 0.0)
    return jnp.where(valid, one_hot @ per_class, 0.0)


def sample_class_balanced(
    key: KeyArray,
    labels: Int[Array, " n"],
    num_samples: int,
    *,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
) -> Int[Array, " num_samples"]:
    """Indices drawn i.i.d. (with replacement) uniformly over non-empty pseudo-classes.

    Each draw picks a non-empty class uniformly, then a member of it uniformly: probability
    ``1 / (K_+ · n_{y_i})`` per sample, the i.i.d. version of DeepCluster's uniform-over-labels
    sampler. Drawn by inverse CDF (a cumulative sum and a binary search), so memory is
    ``O(n + num_samples)``. Masked samples and invalid labels are never drawn.

    Args:
      key: PRNG key.
      labels: pseudo-labels, int [n].
      num_samples: number of indices to draw (static).
      num_clusters: number of pseudo-classes (static).
      where: optional mask [n].

    Returns:
      int32 indices [num_samples] into ``labels``.

    Raises:
      TypeError: if ``labels`` is not an integer array or the counts are not ints.
      ValueError: if ``labels`` is not of rank 1 or a count is < 1.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import sample_class_balanced
      >>> y = jnp.array([0] * 9 + [1])
      >>> idx = sample_class_balanced(jax.random.key(0), y, 1000, num_clusters=2)
      >>> 0.4 < float(jnp.mean(idx == 9)) < 0.6  # the singleton class is drawn half the time
      True

    References:
      Caron et al., "Deep Clustering for Unsupervised Learning of Visual Features", ECCV 2018,
      https://arxiv.org/abs/1807.05520.
    """
    num_samples = _checks.check_positive_int(num_samples, "num_samples")
    w = class_balanced_weights(labels, num_clusters=num_clusters, where=where)
    cdf = jnp.cumsum(w)
    u = jax.random.uniform(key, (num_samples,), cdf.dtype) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    return jnp.clip(idx, 0, w.shape[0] - 1).astype(jnp.int32)
