"""MLC's doubly-stochastic membership matrix Π from a sample affinity (METHODS.md §2.8)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from jaxclust import _checks
from jaxclust._typing import ScalarLike
from jaxclust.assign._sinkhorn_knopp import _check_epsilon

__all__ = ["doubly_stochastic_membership"]


def doubly_stochastic_membership(
    affinity: Float[Array, "n n"],
    *,
    epsilon: ScalarLike = 0.175,
    num_half_steps: int = 5,
    detach_col: bool = True,
) -> Float[Array, "n n"]:
    """MLC's membership ``Π = n·P``, ``P`` an entropic transport plan of the affinity onto itself.

    ``P ≈ argmin_{P ∈ U(1/n, 1/n)} ⟨P, −A⟩ − ε H(P)`` is approximated, as in the MLC reference,
    by ``num_half_steps`` alternating log-domain half-updates starting with a row update, from
    zero potentials ``f = g = 0`` (``P_ij = exp((f_i + g_j + A_ij)/ε)``):

    - row: ``f_i ← −ε ln n − ε LSE_j((g_j + A_ij)/ε)``,
    - column: ``g_j ← −ε ln n − ε LSE_i((f_i + A_ij)/ε)``.

    The default 5 half-steps are row, column, row, column, row, so rows of ``Π`` sum to exactly
    one and columns to approximately one (exactly in the limit of many steps, where ``Π`` is also
    symmetric for a symmetric affinity). With an even ``num_half_steps`` the last update is a
    column update and the roles swap.

    Gradients flow through the unrolled updates. ``detach_col=True`` stops the gradient through
    each column potential ``g`` after it is computed, as the MLC reference does; set it False to
    differentiate through every update. Computation is in float32 at least (half-precision input
    is upcast; the result is float32). Peak memory is ``O(n²)``; the affinity is a global
    ``n × n`` matrix, so there is no ``axis_name``.

    Args:
      affinity: sample affinities ``A``, shape [n, n], floating point, finite; MLC uses
        ``A = |C Cᵀ|`` for L2-normalised cluster-head features ``C`` [n, p].
      epsilon: entropic regularisation ``> 0``. MLC uses 0.175 (CIFAR training), 0.12 (its
        ImageNet recipe) and 0.15 (cluster-count estimation).
      num_half_steps: number of half-updates, ``>= 1`` (static: changing it recompiles).
      detach_col: stop gradients through the column potentials (MLC reference parity).

    Returns:
      Membership ``Π`` [n, n], non-negative; each column ``Π[:, j]`` defines one soft cluster in
      MLC's coding-rate objective, and ``(Π + Πᵀ)/2`` is the affinity for final spectral
      clustering.

    Raises:
      ValueError: if ``affinity`` is not a square rank-2 matrix or holds NaN/Inf (when
        concrete), ``epsilon`` is not a finite positive number (when concrete) or
        ``num_half_steps < 1``.
      TypeError: if ``affinity`` has a non-floating dtype or ``num_half_steps`` is not an int.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import doubly_stochastic_membership
      >>> c = jnp.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [0.28, 0.96]])
      >>> pi = doubly_stochastic_membership(jnp.abs(c @ c.T), epsilon=0.175)
      >>> print(pi.sum(axis=1).round(4))
      [1. 1. 1. 1.]
      >>> print((pi[:2, :2].sum() / 2).round(2))  # mass kept within the first pair
      0.97

    References:
      Ding et al., "Unsupervised Manifold Linearizing and Clustering",
      ICCV 2023, https://arxiv.org/abs/2301.01805.
      Cuturi, "Sinkhorn Distances", NeurIPS 2013, https://arxiv.org/abs/1306.0895.
    """
    affinity = _checks.as_float_array(affinity, "affinity", ndim=2, shape="[n, n]")
    n, m = affinity.shape
    if n != m:
        raise ValueError(f"affinity must be square with shape [n, n], got shape {(n, m)}.")
    _check_epsilon(epsilon)
    num_half_steps = _checks.check_positive_int(num_half_steps, "num_half_steps")
    dtype = jnp.promote_types(affinity.dtype, jnp.float32)
    kernel = affinity.astype(dtype) / jnp.asarray(epsilon, dtype)  # log-kernel A/ε
    log_mass = -jnp.log(jnp.asarray(n, dtype))

    # Potentials in units of ε: F = f/ε, G = g/ε.
    f = jnp.zeros((n,), dtype)
    g = jnp.zeros((n,), dtype)
    for step in range(num_half_steps):
        if step % 2 == 0:
            f = log_mass - jax.nn.logsumexp(kernel + g[None, :], axis=1)
        else:
            g = log_mass - jax.nn.logsumexp(kernel + f[:, None], axis=0)
            if detach_col:
                g = lax.stop_gradient(g)
    return n * jnp.exp(kernel + f[:, None] + g[None, :])
