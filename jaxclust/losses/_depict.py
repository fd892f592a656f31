"""DEPICT: frequency-normalised targets and cross-entropy from the corrupted path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives
from jaxclust.losses import _deep_utils as _u

__all__ = ["depict_target", "depict_loss"]


def depict_target(
    logits: Float[Array, "n k"],
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "n k"]:
    """DEPICT's closed-form target ``q_ik ∝ p_ik / (Σ_i' p_i'k)^{1/2}`` (DEPICT).

    ``p = softmax(logits)`` are the clean-path predictions. Dividing by the square root of the
    soft cluster size is DEPICT's near-minimiser of ``J(Q) = (1/N) Σ_i KL(q_i ‖ p_i) + KL(f ‖ u)``
    with ``f_k = (1/N) Σ_i q_ik`` and a uniform prior ``u`` (METHODS.md §3.2): it pushes the
    assignments towards balanced clusters. Computed in the log domain,
    ``ln q = log_softmax_k(log_softmax(logits) − ½ ln Σ_i p_ik)``; the cluster sizes are summed
    over the unmasked rows of every shard, so this couples the samples of the batch.

    Args:
      logits: clean-path clustering-head logits, shape [n, k].
      where: optional mask [n]; rows where it is False do not enter the cluster sizes.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the cluster sizes are global. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      ``q``, shape [n, k]; rows sum to one. Not wrapped in ``stop_gradient``:
      :func:`depict_loss` does that.

    Raises:
      TypeError: if ``logits`` is not floating point or ``where`` is not boolean.
      ValueError: if ``logits`` is not of rank 2 or holds NaN/Inf (when concrete).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import depict_target
      >>> logits = jnp.log(jnp.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]]))
      >>> print(depict_target(logits).round(3))
      [[0.832 0.168]
       [0.688 0.312]
       [0.453 0.547]]

    References:
      Ghasedi Dizaji, Herandi, Deng, Cai, Huang, "Deep Clustering via Joint Convolutional
      Autoencoder Embedding and Relative Entropy Minimization", ICCV 2017,
      https://arxiv.org/abs/1704.06327.
    """
    logits = _checks.as_float_array(logits, "logits", ndim=2, shape="[n, k]")
    n = logits.shape[0]
    where = _u.check_where(where, n, "logits")
    dtype = _u.compute_dtype(logits.dtype)
    log_p = jax.nn.log_softmax(logits.astype(dtype), axis=1)
    w = _u.row_weights(where, n, dtype)
    # Global cluster sizes ln Σ_i p_ik in the log domain; masked rows get −inf.
    masked = jnp.where((w > 0)[:, None], log_p, -jnp.inf)
    log_size = _collectives.logsumexp_over_samples(masked, axis_name)
    log_size = jnp.where(jnp.isfinite(log_size), log_size, 0.0)  # every row masked: no shift
    return jnp.exp(jax.nn.log_softmax(log_p - 0.5 * log_size[None, :], axis=1))


def depict_loss(
    noisy_logits: Float[Array, "n k"],
    q: Float[Array, "n k"],
    *,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    """Per-example DEPICT clustering loss ``−Σ_k sg(q_ik) ln p̃_ik`` (DEPICT).

    ``p̃ = softmax(noisy_logits)`` are the predictions of the corrupted encoder path and ``q`` the
    targets of :func:`depict_target` computed on the clean path. Add a reconstruction loss
    (e.g. :func:`reconstruction_loss` on each ladder layer) for DEPICT's full objective.

    Args:
      noisy_logits: corrupted-path logits, shape [n, k].
      q: targets, shape [n, k], held fixed (``stop_gradient``).
      where: optional mask [n]; masked rows get loss 0.

    Returns:
      Per-example cross-entropies [n].

    Raises:
      TypeError: if an input is not floating point or ``where`` is not boolean.
      ValueError: if shapes differ or are not of rank 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import depict_loss
      >>> print(depict_loss(jnp.zeros((1, 2)), jnp.array([[1.0, 0.0]])).round(4))
      [0.6931]

    References:
      Ghasedi Dizaji et al., ICCV 2017, https://arxiv.org/abs/1704.06327.
    """
    noisy_logits = _checks.as_float_array(noisy_logits, "noisy_logits", ndim=2, shape="[n, k]")
    q = _checks.as_float_array(q, "q", ndim=2, shape="[n, k]")
    _u.check_same_shape(noisy_logits, q, "noisy_logits", "q")
    where = _u.check_where(where, q.shape[0], "noisy_logits")
    dtype = _u.compute_dtype(jnp.promote_types(noisy_logits.dtype, q.dtype))
    log_p = jax.nn.log_softmax(noisy_logits.astype(dtype), axis=1)
    loss = -jnp.sum(lax.stop_gradient(q.astype(dtype)) * log_p, axis=1)
    return loss if where is None else jnp.where(where, loss, 0.0)
