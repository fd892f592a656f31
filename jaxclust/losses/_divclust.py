"""DivClust: diversity between several clusterings, its adaptive threshold, and consensus."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import kmeans
from jaxclust.losses import _deep_utils as _u
from jaxclust.metrics import nmi

__all__ = [
    "DivClustState",
    "divclust_similarity",
    "divclust_loss",
    "divclust_init",
    "divclust_update",
    "co_association",
    "consensus_clustering",
]


class DivClustState(NamedTuple):
    """State of DivClust's adaptive diversity threshold (:func:`divclust_update`).

    Attributes:
      threshold: the current threshold ``d`` in [0, 1], scalar.
      step: number of :func:`divclust_update` calls so far, int32 scalar.
      memory: argmax labels of the last ``m`` samples per head, int32 [h, m]; ``-1`` = empty.
      position: next write position in the ring buffer ``memory``, int32 scalar.
      mean_nmi: mean pairwise NMI between heads at the last threshold update, scalar.
    """

    threshold: Float[Array, ""]
    step: Int[Array, ""]
    memory: Int[Array, "h m"]
    position: Int[Array, ""]
    mean_nmi: Float[Array, ""]


def _check_heads(assignments):
    assignments = _checks.as_float_array(assignments, "assignments", ndim=3, shape="[h, n, k]")
    return assignments


def divclust_similarity(
    assignments: Float[Array, "h n k"],
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "h h"]:
    """DivClust's similarity between every pair of clusterings.

    With ``Â^{(h)}`` the assignments of head ``h`` with each cluster column L2-normalised over
    the (global) batch, ``S^{(g,h)} = Â^{(g)ᵀ} Â^{(h)}`` (``k × k``) and
    ``sim(g, h) = (1/k) Σ_c max_{c'} S^{(g,h)}_{cc'}`` (METHODS.md §3.5): how well each cluster
    of ``g`` is matched by some cluster of ``h``. Not symmetric in general; ``sim(h, h) = 1``
    for heads without empty clusters. Column norms and products are ``psum``-ed over shards.

    Args:
      assignments: soft assignments of ``h`` heads, shape [h, n, k], non-negative.
      where: optional mask [n]; masked rows are ignored.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the similarities are global. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      ``sim``, shape [h, h], entries in [0, 1] for non-negative assignments.

    Raises:
      TypeError: if ``assignments`` is not floating point or ``where`` is not boolean.
      ValueError: if ``assignments`` is not of rank 3.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import divclust_similarity
      >>> a = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> b = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
      >>> print(divclust_similarity(jnp.stack([a, a[:, ::-1], b])).round(3))
      [[1.  1.  0.5]
       [1.  1.  0.5]
       [0.5 0.5 1. ]]

    References:
      Metaxas, Tzimiropoulos, Patras, "DivClust: Controlling Diversity in Deep Clustering",
      CVPR 2023, https://arxiv.org/abs/2304.01042.
    """
    assignments = _check_heads(assignments)
    h, n, k = assignments.shape
    where = _u.check_where(where, n, "assignments[0]")
    if axis_name is None:  # explicitly sharded samples: run the axis_name path under shard_map
        by_sample = jnp.transpose(assignments, (1, 0, 2))
        explicit = _collectives.explicit_sample_axis(by_sample)
        if explicit is not None:
            mask = jnp.ones((n,), bool) if where is None else where
            return _collectives.map_over_samples(
                lambda a, m, axis_name: divclust_similarity(
                    jnp.transpose(a, (1, 0, 2)), where=m, axis_name=axis_name),
                explicit, (by_sample, mask), (), out_specs=jax.sharding.PartitionSpec(),
            )
    dtype = _u.compute_dtype(assignments.dtype)
    a = assignments.astype(dtype) * _u.row_weights(where, n, dtype)[None, :, None]
    sq = _collectives.psum(jnp.sum(a * a, axis=1), axis_name)  # [h, k]
    inv = jnp.where(sq > 0, lax.rsqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    gram = _collectives.psum(
        jnp.einsum("gic,hid->ghcd", a, a, precision=lax.Precision.HIGHEST), axis_name
    )  # [h, h, k, k]
    s = gram * inv[:, None, :, None] * inv[None, :, None, :]
    return jnp.mean(jnp.max(s, axis=3), axis=2)


def divclust_loss(
    assignments: Float[Array, "h n k"],
    threshold: ScalarLike,
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """DivClust's diversity loss ``Σ_{g ≠ h} ReLU(sim(g, h) − d)`` over ordered head pairs.

    ``sim`` is :func:`divclust_similarity` (clipped at 1 so that rounding never makes
    ``d = 1`` bite) and ``d`` the adaptive threshold of :func:`divclust_update`. Pairs already
    less similar than ``d`` contribute nothing. Add it to the base loss (e.g.
    :func:`cc_loss`) summed over heads. Batch-coupled: a scalar.

    Args:
      assignments: soft assignments of ``h`` heads, shape [h, n, k].
      threshold: ``d`` in [0, 1] (may be traced: pass ``state.threshold``).
      where: optional mask [n]; masked rows are ignored.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count. Under plain ``jax.jit`` on sharded arrays leave it
        None and XLA inserts the collectives.

    Returns:
      Scalar loss (0 when ``h = 1`` or ``d = 1``).

    Raises:
      TypeError: if ``assignments`` is not floating point or ``where`` is not boolean.
      ValueError: if ``assignments`` is not of rank 3 or a concrete ``threshold`` is outside
        [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import divclust_loss
      >>> a = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> b = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
      >>> print(round(float(divclust_loss(jnp.stack([a, b]), 0.4)), 4))  # 2 · (0.5 − 0.4)
      0.2

    References:
      Metaxas, Tzimiropoulos, Patras, "DivClust: Controlling Diversity in Deep Clustering",
      CVPR 2023, https://arxiv.org/abs/2304.01042.
    """
    _u.check_positive_scalar(threshold, "threshold", allow_zero=True, upper=1.0)
    sim = jnp.minimum(divclust_similarity(assignments, where=where, axis_name=axis_name), 1.0)
    h = sim.shape[0]
    off_diagonal = ~jnp.eye(h, dtype=bool)
    excess = jax.nn.relu(sim - jnp.asarray(threshold, sim.dtype))
    return jnp.sum(jnp.where(off_diagonal, excess, 0.0))


def divclust_init(
    num_heads: int,
    *,
    memory_size: int = 10_000,
    threshold: ScalarLike = 1.0,
) -> DivClustState:
    """Initial state of DivClust's threshold controller: ``d = d₀`` and an empty label memory.

    Args:
      num_heads: number of clusterings ``h`` (static).
      memory_size: samples remembered per head (static; reference: 10,000).
      threshold: initial ``d₀`` in [0, 1] (reference: 1).

    Returns:
      A :class:`DivClustState`.

    Raises:
      TypeError: if ``num_heads`` or ``memory_size`` is not an int.
      ValueError: if they are < 1 or ``threshold`` is outside [0, 1].

    Examples:
      >>> from jaxclust.losses import divclust_init
      >>> state = divclust_init(3, memory_size=5)
      >>> state.memory.shape, float(state.threshold)
      ((3, 5), 1.0)
    """
    num_heads = _checks.check_positive_int(num_heads, "num_heads")
    memory_size = _checks.check_positive_int(memory_size, "memory_size")
    _u.check_positive_scalar(threshold, "threshold", allow_zero=True, upper=1.0)
    dtype = jnp.promote_types(jnp.asarray(threshold).dtype, jnp.float32)
    return DivClustState(
        threshold=jnp.asarray(threshold, dtype),
        step=jnp.int32(0),
        memory=jnp.full((num_heads, memory_size), -1, jnp.int32),
        position=jnp.int32(0),
        mean_nmi=jnp.asarray(0.0, dtype),
    )


def divclust_update(
    state: DivClustState,
    labels: Int[Array, "h n"],
    *,
    num_clusters: int,
    nmi_target: ScalarLike,
    update_every: int = 5,
    rate: ScalarLike = 0.01,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> DivClustState:
    """One step of DivClust's threshold controller (METHODS.md §3.5).

    Writes this batch's argmax labels into the ring-buffer memory (masked rows are written as
    ``-1``, which NMI ignores), then every ``update_every`` calls computes the mean pairwise
    NMI (arithmetic normalisation, :func:`jaxclust.metrics.nmi`) between the heads over the
    memory and moves ``d``: ``d ← (1 − rate) d`` when ``NMI > nmi_target`` (the heads agree too
    much: push them apart), else ``d ← (1 + rate) d``; clipped to [0, 1]. With
    ``nmi_target >= 1`` (or one head) ``d`` never drops below 1 and the loss stays 0.

    Args:
      state: the current :class:`DivClustState`.
      labels: argmax labels of every head for this batch, int [h, n], in ``[0, num_clusters)``.
      num_clusters: clusters per head (static).
      nmi_target: target inter-head NMI in [0, 1].
      update_every: threshold update interval in calls (static; reference: 5).
      rate: multiplicative step (reference: 0.01, i.e. factors 0.99 and 1.01).
      where: optional mask [n] of valid samples.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; each shard then remembers its own samples and the NMI is computed over all of
        them.

    Returns:
      The updated :class:`DivClustState`.

    Raises:
      TypeError: if ``labels`` is not an integer array or ``where`` is not boolean.
      ValueError: if ``labels`` does not have shape [h, n] matching ``state.memory``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import divclust_init, divclust_update
      >>> y = jnp.array([[0, 0, 1, 1], [0, 0, 1, 1]])  # identical heads: NMI = 1
      >>> state = divclust_init(2, memory_size=8)
      >>> state = divclust_update(state, y, num_clusters=2, nmi_target=0.5, update_every=1)
      >>> print(round(float(state.threshold), 4))
      0.99

    References:
      Metaxas, Tzimiropoulos, Patras, "DivClust: Controlling Diversity in Deep Clustering",
      CVPR 2023, https://arxiv.org/abs/2304.01042.
    """
    labels = _checks.as_int_array(labels, "labels", ndim=2, shape="[h, n]")
    h, m = state.memory.shape
    if labels.shape[0] != h:
        raise ValueError(f"labels must have shape [h, n] with h={h} (as state.memory), got "
                         f"{tuple(labels.shape)}.")
    num_clusters = _checks.check_positive_int(num_clusters, "num_clusters")
    update_every = _checks.check_positive_int(update_every, "update_every")
    _u.check_positive_scalar(nmi_target, "nmi_target", allow_zero=True, upper=1.0)
    _u.check_positive_scalar(rate, "rate", upper=1.0)
    n = labels.shape[1]
    where = _u.check_where(where, n, "labels[0]")
    new = labels.astype(jnp.int32)
    if where is not None:
        new = jnp.where(where[None, :], new, -1)
    if n >= m:  # only the last m samples fit
        memory, position = new[:, n - m:], jnp.int32(0)
    else:
        slots = (state.position + jnp.arange(n)) % m
        memory = state.memory.at[:, slots].set(new)
        position = (state.position + n) % m
    step = state.step + 1

    def mean_nmi():
        valid = jnp.all(memory >= 0, axis=0)
        pairs = list(itertools.combinations(range(h), 2))
        if not pairs:
            return jnp.asarray(0.0, state.threshold.dtype)
        scores = [
            nmi(memory[g], memory[j], num_classes=num_clusters, num_clusters=num_clusters,
                where=valid, axis_name=axis_name)
            for g, j in pairs
        ]
        return jnp.mean(jnp.stack(scores)).astype(state.threshold.dtype)

    due = step % update_every == 0
    score = lax.cond(due, mean_nmi, lambda: state.mean_nmi)
    rate = jnp.asarray(rate, state.threshold.dtype)
    factor = jnp.where(score > nmi_target, 1.0 - rate, 1.0 + rate)
    threshold = jnp.where(due, jnp.clip(state.threshold * factor, 0.0, 1.0), state.threshold)
    if h == 1:
        threshold = state.threshold
    return DivClustState(threshold=threshold, step=step, memory=memory, position=position,
                         mean_nmi=score)


def _check_labelings(labels):
    labels = _checks.as_int_array(labels, "labels", ndim=2, shape="[h, n]")
    return labels


def co_association(
    labels: Int[Array, "h n"],
    *,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, "n n"]:
    """Co-association matrix ``A_ij = (1/h) Σ_h [y^h_i = y^h_j]`` of ``h`` clusterings.

    The fraction of clusterings that put samples ``i`` and ``j`` together (Fred & Jain's
    evidence accumulation). Labels ``< 0`` never co-occur. Memory is ``O(n²)``: for large ``n``
    use :func:`consensus_clustering`, which never forms it.

    Args:
      labels: ``h`` labelings of the same ``n`` samples, int [h, n].
      where: optional mask [n]; rows and columns of masked samples are 0.

    Returns:
      ``A``, shape [n, n], entries in [0, 1].

    Raises:
      TypeError: if ``labels`` is not an integer array or ``where`` is not boolean.
      ValueError: if ``labels`` is not of rank 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import co_association
      >>> print(co_association(jnp.array([[0, 0, 1], [0, 1, 1]])))
      [[1.  0.5 0. ]
       [0.5 1.  0.5]
       [0.  0.5 1. ]]

    References:
      Fred, Jain, "Combining Multiple Clusterings Using Evidence Accumulation", IEEE TPAMI
      27(6), 2005, https://doi.org/10.1109/TPAMI.2005.113.
    """
    labels = _check_labelings(labels)
    h, n = labels.shape
    where = _u.check_where(where, n, "labels[0]")
    same = (labels[:, :, None] == labels[:, None, :]) & (labels >= 0)[:, :, None]
    a = jnp.mean(same.astype(jnp.promote_types(jnp.float32, jnp.asarray(0.0).dtype)), axis=0)
    if where is not None:
        a = jnp.where(where[:, None] & where[None, :], a, 0.0)
    return a


def consensus_clustering(
    labels: Int[Array, "h n"],
    *,
    k: int,
    num_clusters: int,
    key: KeyArray,
    n_init: int = 10,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, " n"]:
    """Consensus of ``h`` clusterings: k-means on the co-association geometry.

    Each sample is encoded by the concatenation of its one-hot labels over the heads, scaled
    by ``1/√h`` (``[n, h · num_clusters]``). The squared distance between two codes is
    ``2 (1 − A_ij)`` with ``A`` the :func:`co_association` matrix, so k-means on the codes
    minimises the within-cluster sum of co-association distances without ever forming the
    ``n × n`` matrix (memory ``O(n · h · num_clusters)``). This is one common consensus method
    [C]; METHODS.md does not specify DivClust's consensus procedure.

    Args:
      labels: ``h`` labelings, int [h, n], in ``[0, num_clusters)`` (``-1``: no vote).
      k: number of consensus clusters (static).
      num_clusters: clusters per labeling (static).
      key: PRNG key for k-means++ seeding.
      n_init: k-means restarts (static).
      where: optional mask [n]; masked samples get label -1 and do not move the centres.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis (passed to :func:`jaxclust.cluster.kmeans`).

    Returns:
      int32 consensus labels [n] in ``[0, k)``, ``-1`` where masked.

    Raises:
      TypeError: if ``labels`` is not an integer array.
      ValueError: if ``labels`` is not of rank 2 or ``k`` is out of range.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import consensus_clustering
      >>> y = jnp.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]])
      >>> out = consensus_clustering(y, k=2, num_clusters=2, key=jax.random.key(0))
      >>> bool(out[0] == out[1]), bool(out[2] == out[3]), bool(out[0] != out[3])
      (True, True, True)

    References:
      Fred, Jain, "Combining Multiple Clusterings Using Evidence Accumulation", IEEE TPAMI
      27(6), 2005, https://doi.org/10.1109/TPAMI.2005.113.
    """
    labels = _check_labelings(labels)
    h, n = labels.shape
    num_clusters = _checks.check_positive_int(num_clusters, "num_clusters")
    where = _u.check_where(where, n, "labels[0]")
    dtype = jnp.promote_types(jnp.float32, jnp.asarray(0.0).dtype)
    codes = jax.nn.one_hot(labels, num_clusters, dtype=dtype)  # [h, n, c]; -1 → zero row
    codes = jnp.transpose(codes, (1, 0, 2)).reshape(n, h * num_clusters) / jnp.sqrt(h)
    result = kmeans(codes, k=k, key=key, n_init=n_init, where=where, axis_name=axis_name)
    out = result.labels.astype(jnp.int32)
    return out if where is None else jnp.where(where, out, -1)
