"""Contrastive Clustering (CC): instance-level and cluster-level contrastive losses."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses import _deep_utils as _u
from jaxclust.losses._contrastive import nt_xent

__all__ = ["CCLoss", "cc_loss", "cc_cluster_loss"]


class CCLoss(NamedTuple):
    """Output of :func:`cc_loss` (all scalars, global over shards).

    Attributes:
      total: ``instance + cluster``, the quantity to minimise.
      instance: NT-Xent over the ``2B`` instance projections.
      cluster: ``column NT-Xent − entropy``, the cluster-level loss ``L_clu``.
      entropy: ``H(Y) = H(P^a) + H(P^b)`` of the two views' cluster marginals.
    """

    total: Float[Array, ""]
    instance: Float[Array, ""]
    cluster: Float[Array, ""]
    entropy: Float[Array, ""]


def _column_gram(u, v, axis_name):
    """``uᵀv`` summed over the sample axis of every shard, at full precision."""
    return _collectives.psum(jnp.matmul(u.T, v, precision=lax.Precision.HIGHEST), axis_name)


def cc_cluster_loss(
    y_a: Float[Array, "n k"],
    y_b: Float[Array, "n k"],
    *,
    temperature: ScalarLike = 1.0,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """CC's cluster-level loss: NT-Xent over assignment columns minus the marginal entropy.

    Cluster ``j`` of view ``v`` is represented by the column ``y^v_j ∈ R^B`` of the assignment
    matrix over the (global) batch. With ``ŷ = y/‖y‖`` (over samples) and
    ``s_jl = ⟨ŷ_j, ŷ_l⟩/τ`` over the ``2K`` columns of both views (``s_jj = −∞``), each column's
    positive is the same cluster in the other view::

        NTXent_cols = mean_{j ≤ 2K} [−s_{j,π(j)} + LSE_{l≠j} s_jl]
        H(Y) = H(P^a) + H(P^b),   P^v_j = Σ_i y^v_ij / Σ_ij y^v_ij
        L_clu = NTXent_cols − H(Y)

    (METHODS.md §3.4; CC's reference adds the constant ``2 ln K``.) The column inner products
    are ``K × K`` Gram matrices ``psum``-ed over shards, so the sharded loss equals the
    single-device one. A zero column has similarity 0 to everything (no NaN).

    Args:
      y_a: soft cluster assignments of view a (softmax outputs), shape [n, k].
      y_b: the same for view b, shape [n, k].
      temperature: ``τ_C > 0`` (paper: 1.0).
      where: optional mask [n]; masked rows are removed from the columns.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the columns span the global batch. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      ``(loss, entropy)``: the scalar ``L_clu`` and the scalar ``H(Y)`` it contains.

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2, or ``temperature <= 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cc_cluster_loss
      >>> y = jnp.eye(2)  # two samples, each sure of its own cluster
      >>> loss, h = cc_cluster_loss(y, y)
      >>> print(round(float(h), 4))  # 2 ln 2
      1.3863

    References:
      Li, Hu, Liu, Peng, Zhou, Peng, "Contrastive Clustering", AAAI 2021,
      https://arxiv.org/abs/2009.09687.
    """
    y_a = _checks.as_float_array(y_a, "y_a", ndim=2, shape="[n, k]")
    y_b = _checks.as_float_array(y_b, "y_b", ndim=2, shape="[n, k]")
    _u.check_same_shape(y_a, y_b, "y_a", "y_b")
    _u.check_positive_scalar(temperature, "temperature")
    n, k = y_a.shape
    where = _u.check_where(where, n, "y_a")
    explicit = _collectives.explicit_sample_axis(y_a) if axis_name is None else None
    if explicit is not None:  # explicitly sharded rows: run the axis_name path under shard_map
        mask = jnp.ones((n,), bool) if where is None else where
        return _collectives.map_over_samples(
            lambda a, b, m, t, axis_name: cc_cluster_loss(a, b, temperature=t, where=m,
                                                          axis_name=axis_name),
            explicit, (y_a, y_b, mask), (jnp.asarray(temperature),),
            out_specs=(jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec()),
        )
    dtype = _u.compute_dtype(jnp.promote_types(y_a.dtype, y_b.dtype))
    w = _u.row_weights(where, n, dtype)[:, None]
    y_a, y_b = y_a.astype(dtype) * w, y_b.astype(dtype) * w
    y = jnp.concatenate([y_a, y_b], axis=1)  # [n, 2k]: the 2K columns side by side
    gram = _column_gram(y, y, axis_name)  # [2k, 2k]
    sq = jnp.diagonal(gram)
    inv = jnp.where(sq > 0, lax.rsqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    logits = gram * inv[:, None] * inv[None, :] / jnp.asarray(temperature, dtype)
    idx = jnp.arange(2 * k)
    logits = jnp.where(idx[:, None] == idx[None, :], -jnp.inf, logits)
    positive = jnp.concatenate([idx[k:], idx[:k]])
    pos_logit = jnp.take_along_axis(logits, positive[:, None], axis=1)[:, 0]
    contrast = jnp.mean(jax.nn.logsumexp(logits, axis=1) - pos_logit)
    mass_a = _collectives.psum(jnp.sum(y_a, axis=0), axis_name)
    mass_b = _collectives.psum(jnp.sum(y_b, axis=0), axis_name)
    p_a = mass_a / jnp.maximum(jnp.sum(mass_a), jnp.finfo(dtype).tiny)
    p_b = mass_b / jnp.maximum(jnp.sum(mass_b), jnp.finfo(dtype).tiny)
    entropy = _u.entropy(p_a) + _u.entropy(p_b)
    return contrast - entropy, entropy


def cc_loss(
    z_a: Float[Array, "n d"],
    z_b: Float[Array, "n d"],
    y_a: Float[Array, "n k"],
    y_b: Float[Array, "n k"],
    *,
    instance_temperature: ScalarLike = 0.5,
    cluster_temperature: ScalarLike = 1.0,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> CCLoss:
    """Contrastive Clustering loss ``L = L_ins + L_clu`` (CC, Li et al. 2021).

    ``L_ins`` is NT-Xent (:func:`jaxclust.losses.nt_xent`) over the ``2B`` instance projections
    ``z_a, z_b`` with ``τ_I``, averaged over valid pairs of the global batch; ``L_clu`` is
    :func:`cc_cluster_loss` on the cluster-head outputs ``y_a, y_b`` with ``τ_C``. Both couple
    the whole batch: the result is a scalar. For DivClust's several clusterings, ``jax.vmap``
    over a leading head axis of ``y_a, y_b`` (``in_axes=(None, None, 0, 0)``) and sum.

    Args:
      z_a: instance projections of view a, shape [n, d].
      z_b: instance projections of view b, shape [n, d].
      y_a: soft cluster assignments of view a, shape [n, k].
      y_b: soft cluster assignments of view b, shape [n, k].
      instance_temperature: ``τ_I > 0`` (paper: 0.5).
      cluster_temperature: ``τ_C > 0`` (paper: 1.0).
      where: optional mask [n]; masked samples are removed from both losses.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and both losses are global (negatives are gathered
        from every shard). Under plain ``jax.jit`` on sharded arrays leave it None and XLA
        inserts the collectives.

    Returns:
      A :class:`CCLoss` of scalars.

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: on shape mismatches or non-positive temperatures.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cc_loss
      >>> z = jnp.eye(4)
      >>> y = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
      >>> out = cc_loss(z, z, y, y)
      >>> bool(out.total == out.instance + out.cluster)
      True

    References:
      Li, Hu, Liu, Peng, Zhou, Peng, "Contrastive Clustering", AAAI 2021,
      https://arxiv.org/abs/2009.09687.
    """
    z_a = _checks.as_float_array(z_a, "z_a", ndim=2, shape="[n, d]")
    y_a = _checks.as_float_array(y_a, "y_a", ndim=2, shape="[n, k]")
    _checks.check_same_leading([z_a, y_a], ["z_a", "y_a"])
    n = z_a.shape[0]
    where = _u.check_where(where, n, "z_a")
    explicit = _collectives.explicit_sample_axis(z_a) if axis_name is None else None
    if explicit is not None:  # explicitly sharded rows: run the axis_name path under shard_map
        mask = jnp.ones((n,), bool) if where is None else where
        scalar = jax.sharding.PartitionSpec()
        return _collectives.map_over_samples(
            lambda za, zb, ya, yb, m, ti, tc, axis_name: cc_loss(
                za, zb, ya, yb, instance_temperature=ti, cluster_temperature=tc, where=m,
                axis_name=axis_name),
            explicit, (z_a, z_b, y_a, y_b, mask),
            (jnp.asarray(instance_temperature), jnp.asarray(cluster_temperature)),
            out_specs=CCLoss(scalar, scalar, scalar, scalar),
        )
    per_pair = nt_xent(z_a, z_b, temperature=instance_temperature, where=where,
                       axis_name=axis_name)
    w = _u.row_weights(where, n, per_pair.dtype)
    instance = _u.global_mean(per_pair, w, axis_name)
    cluster, entropy = cc_cluster_loss(y_a, y_b, temperature=cluster_temperature, where=where,
                                       axis_name=axis_name)
    return CCLoss(total=instance + cluster, instance=instance, cluster=cluster, entropy=entropy)
