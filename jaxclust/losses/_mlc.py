"""MLC objective: rate reduction with a doubly stochastic soft membership (Ding et al., ICCV 2023)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxclust import _checks
from jaxclust._typing import ScalarLike
from jaxclust.assign import doubly_stochastic_membership
from jaxclust.losses._rate_reduction import _check_eps_sq, _check_features, _class_rate, _rate

__all__ = ["MLCResult", "mlc_loss"]


class MLCResult(NamedTuple):
    """Output of :func:`mlc_loss`.

    Attributes:
      loss: ``−R(Z) + γ R_c(Z|Π) + (γ_Π/2)‖Π‖²_F`` (to be minimised), scalar.
      rate: ``R(Z)``, scalar.
      class_rate: ``R_c(Z|Π)`` with the ``n`` columns of ``Π`` as soft clusters, scalar.
      membership: ``Π``, shape [n, n]; spectral clustering of ``(Π + Πᵀ)/2`` gives final labels.
    """

    loss: Float[Array, ""]
    rate: Float[Array, ""]
    class_rate: Float[Array, ""]
    membership: Float[Array, "n n"]


def _check_nonneg(value, name):
    _checks.check_nonnegative_scalar(value, name)


def mlc_loss(
    z: Float[Array, "n d"],
    c: Float[Array, "n p"],
    *,
    gamma: ScalarLike = 1.0,
    gamma_pi: ScalarLike = 0.05,
    eps_sq: ScalarLike = 0.1,
    epsilon: ScalarLike = 0.175,
    num_half_steps: int = 5,
    detach_col: bool = True,
    warmup: bool = False,
    chunk_size: int | None = None,
) -> MLCResult:
    """MLC loss ``L = −R(Z) + γ R_c(Z | Π) + (γ_Π/2) ‖Π‖²_F`` with ``Π`` computed from ``C``.

    ``Π = doubly_stochastic_membership(|C Cᵀ|, epsilon=epsilon)`` (METHODS.md §2.8) and each of
    its ``n`` columns is one soft cluster of mass ``t_j = Σ_i Π_ij ≈ 1`` in ``R_c`` (the reference
    adds ``1e-8`` to ``t_j``; we skip exactly-empty columns instead, which differs by ``O(1e-8)``).
    Gradients reach ``Z`` through both rates and ``C`` through ``Π`` (the unrolled row updates;
    column potentials are detached when ``detach_col``). ``Z`` and ``C`` are used as given: MLC
    L2-normalises both heads' outputs first. ``warmup=True`` gives the warm-up objective
    ``−R(Z)`` of the first training steps (``R_c`` and ``Π`` are still returned, but the loss
    ignores them; it is a Python flag, static). The affinity is a global ``n × n`` matrix, so
    there is no ``axis_name``: under data parallelism gather the batch first. Cost: ``n``
    Cholesky factorisations of ``d × d`` (use ``chunk_size`` to bound the ``n·d²`` memory).
    Batch-coupled: returns scalars.

    Args:
      z: L2-normalised subspace features ``Z``, rows are samples, shape [n, d] (MLC: d = 128).
      c: L2-normalised cluster-head features ``C``, shape [n, p] (MLC: p = 128).
      gamma: weight ``γ`` of the class-conditional rate (default 1).
      gamma_pi: weight ``γ_Π`` of the Frobenius penalty on ``Π`` (default 0.05).
      eps_sq: ``e`` in the rate denominators; MLC uses 0.1 (see
        :func:`jaxclust.losses.coding_rate` for the convention).
      epsilon: entropic regularisation of ``Π`` (0.175 CIFAR, 0.12 ImageNet recipe).
      num_half_steps: Sinkhorn half-updates for ``Π`` (static; default 5 as the reference).
      detach_col: stop gradients through the column potentials (reference parity).
      warmup: if True the loss is ``−R(Z)`` only (static).
      chunk_size: cluster block size for the ``n`` log-determinants (static), or None.

    Returns:
      An :class:`MLCResult` ``(loss, rate, class_rate, membership)``.

    Raises:
      ValueError: if ``z`` and ``c`` are not rank 2 with the same ``n``, hold NaN/Inf (when
        concrete), or a hyperparameter is out of range.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import mlc_loss
      >>> z = jnp.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [0.28, 0.96]])
      >>> res = mlc_loss(z, z)
      >>> print(res.membership.shape, bool(res.loss < 0))
      (4, 4) True

    References:
      Ding et al., "Unsupervised Manifold Linearizing and Clustering", ICCV 2023,
      https://arxiv.org/abs/2301.01805.
      Yu et al., "Learning Diverse and Discriminative Representations via the Principle of
      Maximal Coding Rate Reduction", NeurIPS 2020, https://arxiv.org/abs/2006.08558.
    """
    z = _check_features(z)
    c = _checks.as_float_array(c, "c", ndim=2, shape="[n, p]")
    _checks.check_same_leading([z, c], ["z", "c"])
    _check_eps_sq(eps_sq)
    _check_nonneg(gamma, "gamma")
    _check_nonneg(gamma_pi, "gamma_pi")
    if chunk_size is not None:
        chunk_size = _checks.check_positive_int(chunk_size, "chunk_size")
    if not isinstance(warmup, (bool, np.bool_)):
        raise TypeError(f"warmup must be a Python bool (static), got {type(warmup).__name__}.")
    c = c.astype(jnp.promote_types(c.dtype, jnp.float32))
    affinity = jnp.abs(jnp.matmul(c, c.T, precision="highest"))
    pi = doubly_stochastic_membership(
        affinity, epsilon=epsilon, num_half_steps=num_half_steps, detach_col=detach_col
    ).astype(z.dtype)
    e = jnp.asarray(eps_sq, z.dtype)
    rate = _rate(z, e, None)
    class_rate = _class_rate(z, pi, e, None, chunk_size)
    if warmup:
        loss = -rate
    else:
        loss = -rate + gamma * class_rate + 0.5 * gamma_pi * jnp.sum(pi * pi)
    return MLCResult(loss, rate, class_rate, pi)
