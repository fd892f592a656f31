"""DEC and IDEC: Student-t soft assignments, sharpened targets and the KL clustering loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses import _deep_utils as _u

__all__ = [
    "dec_soft_assignment",
    "dec_target",
    "dec_loss",
    "reconstruction_loss",
    "idec_loss",
]

# Probabilities are clamped at this value before a log, so that a q that underflowed to 0 gives a
# large finite KL term (and a finite gradient) instead of inf.
_TINY = 1e-30


def _safe_log(p):
    return jnp.log(jnp.maximum(p, jnp.asarray(_TINY, p.dtype)))


def dec_soft_assignment(
    z: Float[Array, "n d"],
    centroids: Float[Array, "k d"],
    *,
    alpha: ScalarLike = 1.0,
) -> Float[Array, "n k"]:
    """Student-t soft assignment of embeddings to cluster centres (DEC, Eq. 1).

    ``q_ij ∝ (1 + ‖z_i − μ_j‖²/α)^{−(α+1)/2}``, normalised over ``j``. Computed in the log domain,
    ``ln q = log_softmax_j(−((α+1)/2) log1p(d²_ij/α))``, with squared distances
    ``‖z‖² − 2⟨z, μ⟩ + ‖μ‖²`` clamped at 0 (METHODS.md §0.3, §3.1). Differentiable with respect to
    ``z``, ``centroids`` and ``alpha``; rows are separable, so this works on any shard of ``z``.

    Args:
      z: embeddings, shape [n, d], floating point.
      centroids: cluster centres ``μ``, shape [k, d].
      alpha: degrees of freedom of the Student-t kernel ``> 0`` (paper: 1).

    Returns:
      ``q``, shape [n, k]; rows sum to one. Half precision is computed (and returned) in float32.

    Raises:
      TypeError: if ``z`` or ``centroids`` is not floating point.
      ValueError: if ranks or feature sizes differ, values are not finite (when concrete), or a
        concrete ``alpha`` is not a finite positive number.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import dec_soft_assignment
      >>> z = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> mu = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> print(dec_soft_assignment(z, mu).round(3))
      [[0.9 0.1]
       [0.1 0.9]]

    References:
      Xie, Girshick, Farhadi, "Unsupervised Deep Embedding for Clustering Analysis", ICML 2016,
      https://arxiv.org/abs/1511.06335 (Eq. 1).
    """
    z = _checks.as_float_array(z, "z", ndim=2, shape="[n, d]")
    centroids = _checks.as_float_array(centroids, "centroids", ndim=2, shape="[k, d]")
    if z.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"centroids must have shape [k, d] with d={z.shape[1]} (as z), got "
            f"{tuple(centroids.shape)}."
        )
    _u.check_positive_scalar(alpha, "alpha")
    dtype = _u.compute_dtype(jnp.promote_types(z.dtype, centroids.dtype))
    z, centroids = z.astype(dtype), centroids.astype(dtype)
    alpha = jnp.asarray(alpha, dtype)
    cross = jnp.matmul(z, centroids.T, precision=lax.Precision.HIGHEST)
    z2 = jnp.sum(z * z, axis=1)[:, None]
    mu2 = jnp.sum(centroids * centroids, axis=1)[None, :]
    d2 = jnp.maximum(z2 - 2.0 * cross + mu2, 0.0)
    log_kernel = -0.5 * (alpha + 1.0) * jnp.log1p(d2 / alpha)
    return jnp.exp(jax.nn.log_softmax(log_kernel, axis=1))


def dec_target(
    q: Float[Array, "n k"],
    *,
    frequency: Float[Array, " k"] | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "n k"]:
    """DEC's sharpened target distribution ``p_ij ∝ q_ij² / f_j`` (DEC, Eq. 3).

    ``f_j = Σ_i q_ij`` is the soft cluster frequency. In the paper it is summed over the *whole
    dataset* (METHODS.md §3.1, ``target="dataset"``): compute ``q`` for the dataset (in chunks if
    needed) and call this once, or pass the dataset ``frequency`` while computing targets for a
    minibatch. With ``frequency=None`` it is the (global) batch statistic, as many
    re-implementations do: this couples the samples of the batch. Computed in the log domain,
    ``ln p = log_softmax_j(2 ln q − ln f)``.

    Args:
      q: soft assignments from :func:`dec_soft_assignment`, shape [n, k].
      frequency: precomputed ``f``, shape [k], positive; if None it is ``Σ_i q_ij`` over the
        unmasked rows of ``q`` (over all shards when ``axis_name`` is set).
      where: optional mask [n]; rows where it is False do not enter ``f`` (their target is still
        computed from their own ``q``).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and ``f`` is global. Under plain ``jax.jit`` on
        sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      ``p``, shape [n, k]; rows sum to one. Not wrapped in ``stop_gradient``: :func:`dec_loss`
      does that.

    Raises:
      TypeError: if ``q`` or ``frequency`` is not floating point or ``where`` is not boolean.
      ValueError: on wrong shapes or non-finite values (when concrete).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import dec_target
      >>> q = jnp.array([[0.6, 0.4], [0.5, 0.5]])
      >>> print(dec_target(q).round(4))
      [[0.648 0.352]
       [0.45  0.55 ]]

    References:
      Xie, Girshick, Farhadi, "Unsupervised Deep Embedding for Clustering Analysis", ICML 2016,
      https://arxiv.org/abs/1511.06335 (Eq. 3).
    """
    q = _checks.as_float_array(q, "q", ndim=2, shape="[n, k]")
    n, k = q.shape
    where = _u.check_where(where, n, "q")
    dtype = _u.compute_dtype(q.dtype)
    q = q.astype(dtype)
    if frequency is None:
        w = _u.row_weights(where, n, dtype)
        f = _collectives.psum(jnp.sum(w[:, None] * q, axis=0), axis_name)
    else:
        f = _checks.as_float_array(frequency, "frequency", ndim=1, shape="[k]")
        if f.shape[0] != k:
            raise ValueError(f"frequency must have shape [k] = ({k},), got {tuple(f.shape)}.")
        f = f.astype(dtype)
    log_p = 2.0 * _safe_log(q) - _safe_log(f)[None, :]
    return jnp.exp(jax.nn.log_softmax(log_p, axis=1))


def dec_loss(
    q: Float[Array, "n k"],
    p: Float[Array, "n k"],
    *,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    """Per-example DEC clustering loss ``KL(p_i ‖ q_i)`` with the target held fixed (DEC, Eq. 2).

    ``L_i = Σ_j p_ij (ln p_ij − ln q_ij)`` with ``p`` wrapped in ``stop_gradient``; the batch loss
    of the paper is ``dec_loss(q, p).mean()`` (the paper sums; the gradient scale differs by
    ``n``). ``0 ln 0 = 0`` (``xlogy``) and ``q`` is clamped at ``1e-30`` inside the log, so the
    loss and its gradient stay finite. Gradients reach ``q``, hence ``z`` and the centres.

    Args:
      q: soft assignments, shape [n, k] (from :func:`dec_soft_assignment`).
      p: targets, shape [n, k] (from :func:`dec_target`).
      where: optional mask [n]; masked rows get loss 0.

    Returns:
      Per-example losses [n], non-negative.

    Raises:
      TypeError: if ``q`` or ``p`` is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import dec_loss, dec_soft_assignment, dec_target
      >>> z = jnp.array([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]])
      >>> q = dec_soft_assignment(z, jnp.array([[0.0, 0.0], [3.0, 0.0]]))
      >>> print(dec_loss(q, dec_target(q)).round(4))
      [0.0503 0.0536 0.072 ]

    References:
      Xie, Girshick, Farhadi, "Unsupervised Deep Embedding for Clustering Analysis", ICML 2016,
      https://arxiv.org/abs/1511.06335 (Eq. 2).
    """
    q = _checks.as_float_array(q, "q", ndim=2, shape="[n, k]")
    p = _checks.as_float_array(p, "p", ndim=2, shape="[n, k]")
    _u.check_same_shape(q, p, "q", "p")
    where = _u.check_where(where, q.shape[0], "q")
    dtype = _u.compute_dtype(jnp.promote_types(q.dtype, p.dtype))
    p = lax.stop_gradient(p.astype(dtype))
    q = q.astype(dtype)
    loss = jnp.sum(jax.scipy.special.xlogy(p, p) - p * _safe_log(q), axis=1)
    return loss if where is None else jnp.where(where, loss, 0.0)


def reconstruction_loss(
    x: Float[Array, "n d"],
    x_hat: Float[Array, "n d"],
    *,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    """Per-example mean squared reconstruction error ``(1/d) ‖x_i − x̂_i‖²``.

    The autoencoder term of IDEC (Keras ``mse``: mean over features). Flatten images first.

    Args:
      x: inputs, shape [n, d].
      x_hat: reconstructions, shape [n, d].
      where: optional mask [n]; masked rows get loss 0.

    Returns:
      Per-example losses [n].

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import reconstruction_loss
      >>> print(reconstruction_loss(jnp.ones((2, 4)), jnp.zeros((2, 4))))
      [1. 1.]
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    x_hat = _checks.as_float_array(x_hat, "x_hat", ndim=2, shape="[n, d]")
    _u.check_same_shape(x, x_hat, "x", "x_hat")
    where = _u.check_where(where, x.shape[0], "x")
    dtype = _u.compute_dtype(jnp.promote_types(x.dtype, x_hat.dtype))
    loss = jnp.mean(jnp.square(x.astype(dtype) - x_hat.astype(dtype)), axis=1)
    return loss if where is None else jnp.where(where, loss, 0.0)


def idec_loss(
    x: Float[Array, "n d"],
    x_hat: Float[Array, "n d"],
    q: Float[Array, "n k"],
    p: Float[Array, "n k"],
    *,
    gamma: ScalarLike = 0.1,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    """Per-example IDEC loss ``L_rec + γ · L_DEC`` (IDEC, Eq. 5).

    ``reconstruction_loss(x, x_hat) + gamma * dec_loss(q, p)``: DEC keeping the decoder, so that
    the clustering loss does not distort the embedding's local structure. The target ``p`` is
    refreshed every ``T`` iterations (140 on MNIST) with :func:`dec_target`.

    Args:
      x: inputs, shape [n, d].
      x_hat: decoder reconstructions, shape [n, d].
      q: soft assignments of the embeddings, shape [n, k].
      p: targets, shape [n, k] (held fixed).
      gamma: weight ``γ >= 0`` of the clustering term (paper: 0.1).
      where: optional mask [n]; masked rows get loss 0.

    Returns:
      Per-example losses [n].

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: on shape mismatches or a concrete negative ``gamma``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import idec_loss
      >>> q = jnp.array([[0.5, 0.5]])
      >>> p = jnp.array([[1.0, 0.0]])
      >>> print(idec_loss(jnp.ones((1, 2)), jnp.zeros((1, 2)), q, p, gamma=1.0).round(4))
      [1.6931]

    References:
      Guo, Gao, Liu, Yin, "Improved Deep Embedded Clustering with Local Structure
      Preservation", IJCAI 2017, https://www.ijcai.org/proceedings/2017/243.
    """
    _checks.check_nonnegative_scalar(gamma, "gamma")
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    q = _checks.as_float_array(q, "q", ndim=2, shape="[n, k]")
    _checks.check_same_leading([x, q], ["x", "q"])
    rec = reconstruction_loss(x, x_hat, where=where)
    kl = dec_loss(q, p, where=where)
    dtype = jnp.promote_types(rec.dtype, kl.dtype)
    return rec.astype(dtype) + jnp.asarray(gamma, dtype) * kl.astype(dtype)
