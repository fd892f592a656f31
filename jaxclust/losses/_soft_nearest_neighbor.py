"""Soft nearest neighbour loss (SNNL)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import (
    _check_temperature,
    _gather,
    _is_self,
    _mask,
    _squared_distances,
)


def soft_nearest_neighbor_loss(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    temperature: ScalarLike = 1.0,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    r"""Soft nearest neighbour loss: how entangled the classes are at scale ``T``.

    ``ℓ_i = −[LSE_{j≠i, y_j=y_i}(−‖x_i−x_j‖²/T) − LSE_{k≠i}(−‖x_i−x_k‖²/T)]``, minus the log
    probability that a neighbour sampled with weights ``exp(−‖x_i−x_j‖²/T)`` has ``i``'s label;
    ``SNNL = mean_i ℓ_i`` over the anchors that have a same-class partner (METHODS.md §3.16).
    Low values mean well-separated classes. Everything runs in the log domain, so no ``exp``
    underflows whatever ``T``.

    The paper treats ``T`` as a quantity to optimise or anneal: pass ``temperature=jnp.exp(log_t)``
    to learn it, a scheduled value, or minimise over ``T`` to report the SNNL "at the optimal
    temperature". The loss is batch-coupled (a scalar).

    Args:
      x: representations, shape [n, d] (not normalised).
      labels: integer classes, shape [n]; negative labels mark padding.
      temperature: ``T > 0``, default 1.0. May be traced.
      where: optional validity mask [n]; invalid samples are neither anchors nor neighbours.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, neighbours are gathered from every shard and the
        result is the global SNNL, equal to the single-device value. Under plain ``jax.jit`` on
        sharded arrays leave it None.

    Returns:
      The SNNL, a scalar (0 when no anchor has a same-class partner).

    Raises:
      TypeError: non-floating ``x``, non-integer ``labels``, non-boolean ``where``.
      ValueError: bad ranks or lengths, a non-positive temperature.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import soft_nearest_neighbor_loss
      >>> x = jnp.array([[0.0], [0.1], [5.0], [5.1]])
      >>> float(soft_nearest_neighbor_loss(x, jnp.array([0, 0, 1, 1])).round(6))
      0.0

    References:
      Frosst, Papernot, Hinton, "Analyzing and Improving Representations with the Soft Nearest
      Neighbor Loss", ICML 2019, https://arxiv.org/abs/1902.01889; Salakhutdinov, Hinton,
      "Learning a Nonlinear Embedding by Preserving Class Neighbourhood Structure", AISTATS 2007.
    """
    x = _checks.as_float_array(x, "x", 2, "[n, d]")
    labels = _checks.as_int_array(labels, "labels", 1, "[n]")
    _checks.check_same_leading([x, labels], ["x", "labels"])
    _check_temperature(temperature)
    n = x.shape[0]
    valid = _mask(where, n, "where", "x") & (labels >= 0)
    x_all = _gather(x, axis_name)
    labels_all = _gather(labels, axis_name)
    valid_all = _gather(valid, axis_name)
    keep = valid_all[None, :] & ~_is_self(n, x_all.shape[0], axis_name)
    same = keep & (labels_all[None, :] == labels[:, None])
    ok = valid & jnp.any(same, axis=1)
    logits = -_squared_distances(x, x_all) / temperature
    # Rows that are excluded may be all -inf; they are replaced by zeros so that neither the
    # value nor the gradient of the LSE is NaN.
    safe = ok[:, None]
    lse_all = jax.nn.logsumexp(jnp.where(safe, jnp.where(keep, logits, -jnp.inf), 0.0), axis=1)
    lse_same = jax.nn.logsumexp(jnp.where(safe, jnp.where(same, logits, -jnp.inf), 0.0), axis=1)
    per = jnp.where(ok, lse_all - lse_same, 0.0)
    total = _collectives.psum(jnp.sum(per), axis_name)
    count = _collectives.psum(jnp.sum(ok, dtype=jnp.int32), axis_name)
    return total / jnp.maximum(count, 1).astype(total.dtype)
