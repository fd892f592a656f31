"""Margin softmax losses over L2-normalised prototypes (ArcFace / CosFace)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import _dot, _mask, _normalize


def margin_softmax_loss(
    z: Float[Array, "n d"],
    labels: Int[Array, " n"],
    prototypes: Float[Array, "k d"],
    *,
    scale: ScalarLike = 64.0,
    angular_margin: float = 0.5,
    cosine_margin: ScalarLike = 0.0,
    easy_margin: bool = False,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    r"""Additive angular (ArcFace) and additive cosine (CosFace) margin softmax cross-entropy.

    With ``cos θ_j = ⟨ẑ, ŵ_j⟩`` against the L2-normalised prototypes, the target logit is
    replaced by ``ψ(θ_y) = cos(θ_y + m_a) − m_c`` and every logit is multiplied by ``s``:
    ``ℓ = −log softmax(s·[ψ(θ_y); cos θ_{j≠y}])_y``. ArcFace is ``m_a = 0.5, m_c = 0``
    (``s = 64``); CosFace is ``m_a = 0, m_c = 0.35`` (with ``s = 64``).

    ``cos(θ + m_a)`` is evaluated as ``cos θ cos m_a − sin θ sin m_a`` with
    ``sin θ = sqrt(max(1 − cos²θ, ε))``, so no ``arccos`` is taken and the value and gradient stay
    finite at ``θ → 0`` and ``θ → π`` (where the true derivative in ``cos θ`` diverges; the clamp
    ``ε = 1e-12`` bounds it). Beyond ``θ_y + m_a > π`` the function ``cos(θ + m_a)`` would turn
    back up and stop being monotone in ``θ``:

    - ``easy_margin=False`` (default, the ArcFace reference): for ``θ_y > π − m_a`` use the
      linear continuation ``cos θ_y − m_a sin m_a`` (CosFace-like), which stays decreasing;
    - ``easy_margin=True``: apply the margin only where ``cos θ_y > 0`` (``θ_y < π/2``) and use
      ``cos θ_y`` otherwise.

    The loss is separable: row ``i`` depends only on ``z[i]``, ``labels[i]`` and the prototypes,
    with no coupling across the batch, so there is no ``axis_name``. Under ``jax.shard_map``
    with the rows split over a mesh axis and the prototypes replicated, take the global mean
    yourself (``psum`` of the sum and of the count); ``shard_map`` then sums the prototype
    gradients of the shards.

    Args:
      z: embeddings, shape [n, d] (normalised inside).
      labels: target prototype of each row in ``[0, k)``, shape [n].
      prototypes: class weight vectors, shape [k, d] (normalised inside).
      scale: logit scale ``s > 0``, default 64. May be traced.
      angular_margin: additive angular margin ``m_a`` in radians, ``0 ≤ m_a < π/2``; default 0.5
        (a Python float: the thresholds derived from it are constants).
      cosine_margin: additive cosine margin ``m_c ≥ 0``, default 0. May be traced.
      easy_margin: how to treat ``θ_y + m_a > π`` (see above); static.
      where: optional validity mask [n]; invalid rows get 0.

    Returns:
      Per-example losses, shape [n].

    Raises:
      TypeError: non-floating features, non-integer labels, non-boolean ``where``.
      ValueError: bad ranks or lengths, mismatched feature dimensions, a margin out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import margin_softmax_loss
      >>> w = jnp.eye(2)
      >>> margin_softmax_loss(jnp.array([[1.0, 0.0]]), jnp.array([0]), w, scale=1.0,
      ...                     angular_margin=0.0).round(4)
      Array([0.3133], dtype=float...)

    References:
      Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
      Recognition", CVPR 2019, https://arxiv.org/abs/1801.07698; Wang et al., "CosFace: Large
      Margin Cosine Loss for Deep Face Recognition", CVPR 2018, https://arxiv.org/abs/1801.09414.
    """
    z = _checks.as_float_array(z, "z", 2, "[n, d]")
    prototypes = _checks.as_float_array(prototypes, "prototypes", 2, "[k, d]")
    labels = _checks.as_int_array(labels, "labels", 1, "[n]")
    _checks.check_same_leading([z, labels], ["z", "labels"])
    if z.shape[1] != prototypes.shape[1]:
        raise ValueError(
            f"z and prototypes must have the same feature dimension d, got {z.shape[1]} and "
            f"{prototypes.shape[1]}."
        )
    m_a = float(angular_margin)
    if not 0.0 <= m_a < math.pi / 2:
        raise ValueError(f"angular_margin must be in [0, pi/2), got {angular_margin}.")
    _checks.check_nonnegative_scalar(cosine_margin, "cosine_margin")
    k = prototypes.shape[0]
    valid = _mask(where, z.shape[0], "where", "z") & (labels >= 0) & (labels < k)
    target = jnp.clip(labels, 0, k - 1)
    cos = jnp.clip(_dot(_normalize(z), _normalize(prototypes)), -1.0, 1.0)  # [n, k]
    cos_y = jnp.take_along_axis(cos, target[:, None], axis=1)[:, 0]
    sin_y = jnp.sqrt(jnp.maximum(1.0 - cos_y * cos_y, 1e-12))
    psi = cos_y * math.cos(m_a) - sin_y * math.sin(m_a)
    if m_a > 0:
        if easy_margin:
            psi = jnp.where(cos_y > 0, psi, cos_y)
        else:
            psi = jnp.where(cos_y > math.cos(math.pi - m_a), psi, cos_y - m_a * math.sin(m_a))
    psi = psi - cosine_margin
    onehot = jnp.arange(k)[None, :] == target[:, None]
    logits = scale * jnp.where(onehot, psi[:, None], cos)
    nll = -jnp.sum(jnp.where(onehot, jax.nn.log_softmax(logits, axis=1), 0.0), axis=1)
    return jnp.where(valid, nll, 0.0)
