"""MCR² coding rates: ``R(Z)``, the class-conditional ``R_c(Z | Π)`` and ``ΔR = R − R_c``."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike

__all__ = ["RateReductionResult", "coding_rate", "class_coding_rate", "rate_reduction"]


class RateReductionResult(NamedTuple):
    """Output of :func:`rate_reduction`.

    Attributes:
      delta_r: the rate reduction ``ΔR = R − R_c`` (to be maximised), scalar.
      rate: the coding rate of all features ``R(Z)``, scalar.
      class_rate: the class-conditional coding rate ``R_c(Z | Π)``, scalar.
    """

    delta_r: Float[Array, ""]
    rate: Float[Array, ""]
    class_rate: Float[Array, ""]


# §0.3: Gram matrices, Cholesky and slogdet always run in float32 at least.
_compute_dtype = _checks.compute_dtype


def _check_eps_sq(eps_sq) -> None:
    if not _checks.is_concrete(eps_sq):
        return
    v = np.asarray(eps_sq)
    if v.ndim != 0:
        raise ValueError(f"eps_sq must be a scalar, got shape {v.shape}.")
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"eps_sq must be a finite number > 0, got {v.item()}.")


def _check_features(z, name: str = "z"):
    z = _checks.as_float_array(z, name, ndim=2, shape="[n, d]")
    return z.astype(_compute_dtype(z.dtype))


def _check_membership(membership, n: int, name: str = "membership"):
    membership = _checks.as_float_array(membership, name, ndim=2, shape="[n, k]")
    if membership.shape[0] != n:
        raise ValueError(
            f"{name} must have shape [n, k] with n={n} rows to match z, got shape "
            f"{tuple(membership.shape)}."
        )
    if _checks.is_concrete(membership) and (np.asarray(membership) < 0).any():
        raise ValueError(f"{name} must be non-negative (soft or one-hot memberships).")
    return membership


def _check_class_inputs(z, membership, eps_sq, chunk_size):
    """The checks shared by the functions taking features and soft memberships."""
    z = _check_features(z)
    membership = _check_membership(membership, z.shape[0])
    _check_eps_sq(eps_sq)
    if chunk_size is not None:
        chunk_size = _checks.check_positive_int(chunk_size, "chunk_size")
    return z, membership, chunk_size


def _logdet_identity_plus(gram: Float[Array, "... m m"], alpha) -> Float[Array, "..."]:
    """``ln det(I + α G)`` for a PSD Gram matrix ``G`` and ``α >= 0``.

    ``I + αG`` is SPD with every eigenvalue ``>= 1``, so the Cholesky factor exists and its
    diagonal is ``>= 1``: ``2 Σ ln diag L`` has no ``log 0`` and no cancellation (§0.3).
    """
    m = gram.shape[-1]
    eye = jnp.eye(m, dtype=gram.dtype)
    mat = eye + jnp.asarray(alpha, gram.dtype)[..., None, None] * gram
    mat = 0.5 * (mat + jnp.swapaxes(mat, -1, -2))  # exact symmetry for the factorisation
    chol = jnp.linalg.cholesky(mat)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def _gram(z, axis_name):
    """``ZᵀZ`` [d, d], summed over shards (exact: the Gram matrix is a sum over samples)."""
    local = jnp.einsum("na,nb->ab", z, z, precision=lax.Precision.HIGHEST)
    return _collectives.psum(local, axis_name)


def _rate(z, eps_sq, axis_name):
    n_local, d = z.shape
    n = _collectives.psum(jnp.asarray(n_local, z.dtype), axis_name)
    alpha = d / (n * eps_sq)
    if axis_name is None and n_local < d:
        # Sylvester: det(I_d + α ZᵀZ) = det(I_n + α ZZᵀ); the n×n form is cheaper when n < d.
        kernel = jnp.einsum("na,ma->nm", z, z, precision=lax.Precision.HIGHEST)
        return 0.5 * _logdet_identity_plus(kernel, alpha)
    return 0.5 * _logdet_identity_plus(_gram(z, axis_name), alpha)


def _class_terms(z, membership, eps_sq, axis_name, chunk_size):
    """``(n_j, ln det(I + (d/(n_j e)) Zᵀ diag(π_j) Z))`` for every column ``π_j`` of Π."""
    n_local, d = z.shape
    membership = membership.astype(z.dtype)
    counts = _collectives.psum(jnp.sum(membership, axis=0), axis_name)  # n_j, global
    present = counts > 0
    # Empty clusters (n_j = 0) contribute 0: a safe denominator keeps α finite there, and the
    # Gram is zero anyway, so the log-determinant is exactly 0 with a finite gradient.
    alpha = d / (jnp.where(present, counts, 1.0) * eps_sq)
    use_kernel = axis_name is None and n_local < d
    if use_kernel:
        kernel = jnp.einsum("na,ma->nm", z, z, precision=lax.Precision.HIGHEST)

    def one(args):
        pi, a = args
        if use_kernel:
            # det(I_d + α Zᵀ D Z) = det(I_n + α D Z Zᵀ): not symmetric, so slogdet (LU) rather
            # than Cholesky; its eigenvalues are those of the SPD form, all >= 1, so sign = +1.
            # This avoids √π, whose derivative is infinite at π = 0.
            mat = jnp.eye(n_local, dtype=z.dtype) + a * pi[:, None] * kernel
            return jnp.linalg.slogdet(mat)[1]
        # Weighted Gram Zᵀ diag(π) Z without forming √π (finite gradients at π = 0).
        gram = jnp.einsum("n,na,nb->ab", pi, z, z, precision=lax.Precision.HIGHEST)
        gram = _collectives.psum(gram, axis_name)
        return _logdet_identity_plus(gram, a)

    if chunk_size is None:
        logdets = jax.vmap(one)((membership.T, alpha))
    else:
        logdets = lax.map(one, (membership.T, alpha), batch_size=chunk_size)
    return counts, jnp.where(present, logdets, 0.0)


def coding_rate(
    z: Float[Array, "n d"],
    *,
    eps_sq: ScalarLike = 0.5,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """MCR² coding rate ``R(Z) = ½ ln det(I_d + (d/(N·e)) ZᵀZ)`` of the rows of ``Z``.

    ``e = eps_sq`` is the single scalar in the denominator. The MCR² paper writes it ``ε²`` for a
    distortion ``ε`` and uses ``ε² = 0.5`` (our default); the MLC/CPP reference code puts the value
    it calls ``eps = 0.1`` directly in that slot, so reproduce MLC/CPP with ``eps_sq=0.1`` (not
    0.01). The log-determinant is ``2 Σ ln diag(cholesky(·))`` of the ``d × d`` matrix, or of the
    ``N × N`` matrix ``I + α ZZᵀ`` when ``N < d`` (Sylvester's identity; unsharded only).
    Computation is in float32 at least, also for bfloat16 input (result float32). The loss is
    batch-coupled: it returns a scalar. Peak memory ``O(min(n, d)²)``.

    Args:
      z: features, rows are samples, shape [n, d]; MCR² usually L2-normalises them.
      eps_sq: ``e = ε² > 0``, the distortion term in the denominator (default 0.5, MCR²).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; then ``n`` is the per-shard count, the ``d × d`` Gram matrices are summed with a
        ``psum`` and ``N`` is the global count. Under plain ``jax.jit`` on sharded arrays leave it
        None and XLA inserts the collectives.

    Returns:
      The coding rate ``R(Z)`` in nats, scalar, ``>= 0``.

    Raises:
      ValueError: if ``z`` is not rank 2 or holds NaN/Inf (when concrete), or ``eps_sq`` is not a
        finite positive scalar (when concrete).
      TypeError: if ``z`` has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import coding_rate
      >>> z = jnp.eye(2)  # two orthonormal samples in 2-D: ½ ln det(I + (2/(2·0.5)) I) = ln 3
      >>> print(round(float(coding_rate(z, eps_sq=0.5)), 4))
      1.0986

    References:
      Yu et al., "Learning Diverse and Discriminative Representations via the Principle of
      Maximal Coding Rate Reduction", NeurIPS 2020, https://arxiv.org/abs/2006.08558.
    """
    z = _check_features(z)
    _check_eps_sq(eps_sq)
    return _rate(z, jnp.asarray(eps_sq, z.dtype), axis_name)


def class_coding_rate(
    z: Float[Array, "n d"],
    membership: Float[Array, "n k"],
    *,
    eps_sq: ScalarLike = 0.5,
    chunk_size: int | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Class-conditional coding rate ``R_c(Z | Π) = Σ_j (n_j/(2N)) ln det(I + (d/(n_j e)) Zᵀdiag(Π_j)Z)``.

    Each column ``Π_j = membership[:, j]`` is one (soft) cluster with mass ``n_j = Σ_i Π_ij``;
    clusters with ``n_j = 0`` contribute 0. For hard labels pass
    ``jax.nn.one_hot(labels, k)``, which makes ``R_c`` the sum of the per-class rates weighted by
    class frequency. ``N`` is the number of rows (global under ``axis_name``), as in MCR², not
    ``Σ_j n_j``. MLC passes its doubly stochastic ``Π`` [n, n], i.e. ``n`` soft clusters. See
    :func:`coding_rate` for ``eps_sq`` and the numerics.

    Args:
      z: features, rows are samples, shape [n, d].
      membership: non-negative memberships ``Π``, shape [n, k].
      eps_sq: ``e = ε² > 0`` (default 0.5, MCR²; MLC/CPP use 0.1).
      chunk_size: if set, the ``k`` log-determinants are computed ``chunk_size`` clusters at a time
        with ``lax.map``, bounding peak memory at ``chunk_size·d²`` instead of ``k·d²`` (static).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; the per-cluster ``d × d`` Gram matrices and masses are summed with ``psum``.

    Returns:
      ``R_c`` in nats, scalar.

    Raises:
      ValueError: if shapes disagree, an input holds NaN/Inf or ``membership`` is negative (when
        concrete), ``eps_sq`` is not a finite positive scalar, or ``chunk_size < 1``.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.losses import class_coding_rate
      >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> pi = jax.nn.one_hot(jnp.array([0, 0, 1, 1]), 2)
      >>> # two classes, each 2·(1/8)·ln det(I + 2·diag(2, 0)): R_c = ln(5)/2
      >>> print(round(float(class_coding_rate(z, pi, eps_sq=0.5)), 4))
      0.8047

    References:
      Yu et al., "Learning Diverse and Discriminative Representations via the Principle of
      Maximal Coding Rate Reduction", NeurIPS 2020, https://arxiv.org/abs/2006.08558.
    """
    z, membership, chunk_size = _check_class_inputs(z, membership, eps_sq, chunk_size)
    return _class_rate(z, membership, jnp.asarray(eps_sq, z.dtype), axis_name, chunk_size)


def _class_rate(z, membership, eps_sq, axis_name, chunk_size):
    n = _collectives.psum(jnp.asarray(z.shape[0], z.dtype), axis_name)
    counts, logdets = _class_terms(z, membership, eps_sq, axis_name, chunk_size)
    return jnp.sum(counts * logdets) / (2.0 * n)


def rate_reduction(
    z: Float[Array, "n d"],
    membership: Float[Array, "n k"],
    *,
    eps_sq: ScalarLike = 0.5,
    chunk_size: int | None = None,
    axis_name: str | None = None,
) -> RateReductionResult:
    """MCR² rate reduction ``ΔR = R(Z) − R_c(Z | Π)``, with both components.

    The MCR² training loss is ``−ΔR`` (maximise the rate of the whole set while compressing each
    cluster). See :func:`coding_rate` and :func:`class_coding_rate` for the definitions, the
    ``eps_sq`` convention (``e = ε²``, default 0.5; MLC/CPP use ``eps_sq=0.1``) and the numerics.
    Batch-coupled: returns scalars.

    Args:
      z: features, rows are samples, shape [n, d].
      membership: non-negative memberships ``Π``, shape [n, k]; one-hot for hard labels.
      eps_sq: ``e = ε² > 0`` in the denominators.
      chunk_size: cluster block size for the class log-determinants (static), or None for all.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; Gram matrices and masses are then summed with ``psum`` and the result is global.
        Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      A :class:`RateReductionResult` ``(delta_r, rate, class_rate)``.

    Raises:
      ValueError: as :func:`class_coding_rate`.
      TypeError: as :func:`class_coding_rate`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.losses import rate_reduction
      >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> res = rate_reduction(z, jax.nn.one_hot(jnp.array([0, 0, 1, 1]), 2))
      >>> print([round(float(v), 4) for v in (res.rate, res.class_rate, res.delta_r)])
      [1.0986, 0.8047, 0.2939]

    References:
      Yu et al., "Learning Diverse and Discriminative Representations via the Principle of
      Maximal Coding Rate Reduction", NeurIPS 2020, https://arxiv.org/abs/2006.08558.
    """
    z, membership, chunk_size = _check_class_inputs(z, membership, eps_sq, chunk_size)
    e = jnp.asarray(eps_sq, z.dtype)
    rate = _rate(z, e, axis_name)
    class_rate = _class_rate(z, membership, e, axis_name, chunk_size)
    return RateReductionResult(rate - class_rate, rate, class_rate)
