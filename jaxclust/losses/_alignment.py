"""Alignment and uniformity of embeddings on the hypersphere."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import (
    _gather,
    _global_offset,
    _mask,
    _normalize,
    _squared_distances,
)


def alignment_loss(
    z1: Float[Array, "n d"],
    z2: Float[Array, "n d"],
    *,
    alpha: ScalarLike = 2.0,
    normalize: bool = True,
) -> Float[Array, " n"]:
    r"""Alignment ``‖f(x) − f(x⁺)‖₂^α`` of each positive pair (Wang & Isola, Eq. 4).

    ``L_align = E_{(x,x⁺)} ‖f(x) − f(x⁺)‖^α`` with ``α = 2`` (METHODS.md §3.22); the mean of the
    returned values over pairs is the batch estimate. The power is evaluated from the squared
    distance as ``(‖·‖²)^{α/2}`` with a guard at 0, so identical pairs give 0 and a zero (not NaN)
    gradient for every ``α > 0``.

    Args:
      z1: embeddings of the first elements, shape [n, d].
      z2: embeddings of their positives, shape [n, d].
      alpha: exponent ``α > 0``, default 2. May be traced.
      normalize: L2-normalise the rows first (the paper's ``f`` maps to the unit sphere).

    Returns:
      Per-pair alignment values, shape [n] (separable: average them, with masking if needed).

    Raises:
      TypeError: non-floating inputs.
      ValueError: shape mismatch or a non-positive ``alpha``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import alignment_loss
      >>> alignment_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]]))
      Array([2.], dtype=float...)

    References:
      Wang, Isola, "Understanding Contrastive Representation Learning through Alignment and
      Uniformity on the Hypersphere", ICML 2020, https://arxiv.org/abs/2005.10242.
    """
    z1 = _checks.as_float_array(z1, "z1", 2, "[n, d]")
    z2 = _checks.as_float_array(z2, "z2", 2, "[n, d]")
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape [n, d], got {z1.shape} and {z2.shape}."
        )
    if _checks.is_concrete(alpha) and not float(alpha) > 0:
        raise ValueError(f"alpha must be a number > 0, got {alpha}.")
    if normalize:
        z1, z2 = _normalize(z1), _normalize(z2)
    diff = z1 - z2
    sq = jnp.sum(diff * diff, axis=1)
    positive = sq > 0
    return jnp.where(positive, jnp.where(positive, sq, 1.0) ** (alpha / 2), 0.0)


def uniformity_loss(
    z: Float[Array, "n d"],
    *,
    t: ScalarLike = 2.0,
    normalize: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    r"""Uniformity ``ln E_{x,y} exp(−t‖f(x) − f(y)‖²)`` (Wang & Isola, Eq. 5).

    Batch estimate over the distinct pairs ``i < j`` (METHODS.md §3.22):
    ``LSE_{i<j}(−t‖z_i − z_j‖²) − ln(B(B−1)/2)`` with ``B`` the number of valid samples. Lower is
    more uniform; on the unit sphere it lies in ``[−4t, 0]``. The loss is batch-coupled (a scalar)
    and computed in the log domain.

    Args:
      z: embeddings, shape [n, d] (at least two valid rows).
      t: ``t > 0``, default 2. May be traced.
      normalize: L2-normalise the rows first.
      where: optional validity mask [n]; invalid rows are left out.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, the other samples are gathered from every shard
        and the result is the global value over all pairs, equal to the single-device one. Under
        plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      The uniformity loss, a scalar (0 when fewer than two rows are valid).

    Raises:
      TypeError: non-floating ``z`` or non-boolean ``where``.
      ValueError: bad rank or mask length, a non-positive ``t``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import uniformity_loss
      >>> float(uniformity_loss(jnp.array([[1.0, 0.0], [-1.0, 0.0]])))  # antipodal: −4t
      -8.0

    References:
      Wang, Isola, "Understanding Contrastive Representation Learning through Alignment and
      Uniformity on the Hypersphere", ICML 2020, https://arxiv.org/abs/2005.10242.
    """
    z = _checks.as_float_array(z, "z", 2, "[n, d]")
    if _checks.is_concrete(t) and not float(t) > 0:
        raise ValueError(f"t must be a number > 0, got {t}.")
    n = z.shape[0]
    valid = _mask(where, n, "where", "z")
    if normalize:
        z = _normalize(z)
    z_all = _gather(z, axis_name)
    valid_all = _gather(valid, axis_name)
    gi = _global_offset(n, axis_name) + jnp.arange(n)
    upper = jnp.arange(z_all.shape[0])[None, :] > gi[:, None]
    keep = upper & valid[:, None] & valid_all[None, :]
    logits = jnp.where(keep, -t * _squared_distances(z, z_all), -jnp.inf)
    row_ok = jnp.any(keep, axis=1)
    row_lse = jax.nn.logsumexp(jnp.where(row_ok[:, None], logits, 0.0), axis=1)
    any_ok = jnp.any(row_ok)
    local = jax.nn.logsumexp(jnp.where(any_ok, jnp.where(row_ok, row_lse, -jnp.inf), 0.0))
    local = jnp.where(any_ok, local, -jnp.inf)  # this shard holds no pair i < j
    lse = _collectives.logsumexp_over_samples(local[None], axis_name)
    b = _collectives.psum(jnp.sum(valid, dtype=jnp.int32), axis_name).astype(lse.dtype)
    pairs = jnp.maximum(b * (b - 1) / 2, 1.0)
    return jnp.where(b >= 2, lse - jnp.log(pairs), 0.0)
