"""Vector quantisation: straight-through lookup with codebook/commitment losses, EMA codebook
updates, and CVQ's re-anchoring of dead codes."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike

__all__ = [
    "VQResult",
    "VQEMAState",
    "CVQResult",
    "vector_quantize",
    "vq_ema_init",
    "vq_ema_update",
    "cvq_reanchor",
    "cvq_contrastive_loss",
]

_SIMILARITIES = ("l2", "cosine")
_ANCHORS = ("probrandom", "closest")


class VQResult(NamedTuple):
    """Output of :func:`vector_quantize`.

    Attributes:
      quantized: straight-through output ``z + sg(e_{k(i)} − z)``, shape [n, d]: its value is the
        selected code, its gradient with respect to ``z`` is the identity.
      indices: selected code ``k(i)`` per sample, int32, shape [n] (``-1`` where ``where`` is False).
      loss: ``codebook_loss + β·commitment_loss`` per sample, shape [n] (0 where masked).
      codebook_loss: ``‖sg(z_i) − e_{k(i)}‖²`` (moves codes only), shape [n].
      commitment_loss: ``‖z_i − sg(e_{k(i)})‖²`` (moves the encoder only), shape [n].
      counts: how many (unmasked) samples selected each code, global over shards, shape [k].
      perplexity: ``exp(−Σ_k p̄_k ln p̄_k)`` of the batch code usage ``p̄ = counts / Σ counts``, scalar.
    """

    quantized: Float[Array, "n d"]
    indices: Int[Array, " n"]
    loss: Float[Array, " n"]
    codebook_loss: Float[Array, " n"]
    commitment_loss: Float[Array, " n"]
    counts: Float[Array, " k"]
    perplexity: Float[Array, ""]


class VQEMAState(NamedTuple):
    """EMA codebook statistics of :func:`vq_ema_update`.

    Attributes:
      counts: EMA cluster sizes ``n_k``, shape [k].
      sums: EMA sums of assigned features ``m_k``, shape [k, d].
      usage: EMA of the batch usage fractions ``p_k`` (CVQ's statistic), shape [k].
      step: number of updates applied, int32 scalar.
    """

    counts: Float[Array, " k"]
    sums: Float[Array, "k d"]
    usage: Float[Array, " k"]
    step: Int[Array, ""]


class CVQResult(NamedTuple):
    """Output of :func:`cvq_reanchor`.

    Attributes:
      codebook: re-anchored codes ``(1 − α_k) e_k + α_k a_k``, shape [k, d].
      usage: updated usage EMA ``p_k``, shape [k].
      alpha: re-anchoring rates ``α_k = exp(−10 K p_k/(1 − γ) − 10⁻³)``, shape [k].
      anchors: the anchor feature ``a_k`` chosen for every code, shape [k, d].
    """

    codebook: Float[Array, "k d"]
    usage: Float[Array, " k"]
    alpha: Float[Array, " k"]
    anchors: Float[Array, "k d"]


def _check_decay(decay, name="decay"):
    if not _checks.is_concrete(decay):
        return
    v = np.asarray(decay)
    if v.ndim != 0 or not np.isfinite(v) or not 0 <= v < 1:
        raise ValueError(f"{name} must be a scalar in [0, 1), got {v.tolist()}.")


def _check_z_codebook(z, codebook):
    z = _checks.as_float_array(z, "z", ndim=2, shape="[n, d]")
    codebook = _checks.as_float_array(codebook, "codebook", ndim=2, shape="[k, d]")
    if codebook.shape[1] != z.shape[1]:
        raise ValueError(
            f"codebook must have shape [k, d] with d={z.shape[1]} to match z, got shape "
            f"{tuple(codebook.shape)}."
        )
    return z, codebook


def _mask(where, n):
    if where is None:
        return None
    return _checks.as_bool_array(where, "where", n=n, other="z")


def _normalize(x):
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return x / jnp.where(norm > 0, norm, 1.0)


def _scores(z, codebook, similarity):
    """Similarity [n, k] of every sample to every code; larger is closer."""
    if similarity == "cosine":
        return jnp.matmul(_normalize(z), _normalize(codebook).T, precision=lax.Precision.HIGHEST)
    # −‖z − e‖² up to the per-row constant ‖z‖², which does not change the argmax.
    cross = jnp.matmul(z, codebook.T, precision=lax.Precision.HIGHEST)
    return 2.0 * cross - jnp.sum(codebook * codebook, axis=1)[None, :]


def _usage_counts(indices, k, weights, axis_name):
    onehot = jax.nn.one_hot(indices, k, dtype=weights.dtype) * weights[:, None]
    return _collectives.psum(jnp.sum(onehot, axis=0), axis_name)


def vector_quantize(
    z: Float[Array, "n d"],
    codebook: Float[Array, "k d"],
    *,
    beta: ScalarLike = 0.25,
    similarity: str = "l2",
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> VQResult:
    """VQ-VAE lookup ``k(i) = argmin_k ‖z_i − e_k‖²`` with straight-through output and losses.

    ``quantized = z + sg(e_{k(i)} − z)``; ``loss_i = ‖sg(z_i) − e_{k(i)}‖² + β‖z_i − sg(e_{k(i)})‖²``
    (squared norms summed over features; divide by ``d`` for the per-element mean that some
    implementations use). With an EMA codebook (:func:`vq_ema_update`) use only
    ``β·commitment_loss``. ``similarity="cosine"`` selects codes by cosine similarity (CVQ's
    default) while the losses stay on the vectors as given. The losses are separable ([n]); the
    usage ``counts`` and ``perplexity`` reduce over samples. Computation and outputs are in
    float32 at least (bfloat16 inputs are upcast). Peak memory ``n·k`` similarities.

    Args:
      z: encoder outputs, rows are samples, shape [n, d].
      codebook: codes ``e_k``, shape [k, d].
      beta: commitment weight ``β`` (default 0.25, VQ-VAE).
      similarity: ``"l2"`` (nearest code) or ``"cosine"`` (most similar direction).
      where: optional mask [n]; False rows get index ``-1``, zero loss and no usage count.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; ``counts`` and ``perplexity`` are then global (``psum``). Under plain ``jax.jit``
        on sharded arrays leave it None.

    Returns:
      A :class:`VQResult`.

    Raises:
      ValueError: if shapes disagree, inputs hold NaN/Inf (when concrete), ``similarity`` is
        unknown or ``beta`` is negative.
      TypeError: if an input has a non-floating dtype or ``where`` is not boolean.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import vector_quantize
      >>> codes = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> res = vector_quantize(jnp.array([[0.1, 0.0], [0.9, 1.0]]), codes)
      >>> res.indices.tolist(), res.quantized.tolist()
      ([0, 1], [[0.0, 0.0], [1.0, 1.0]])
      >>> print(res.loss.round(4).tolist(), float(res.perplexity))
      [0.0125, 0.0125] 2.0

    References:
      van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning",
      NeurIPS 2017, https://arxiv.org/abs/1711.00937.
    """
    z, codebook = _check_z_codebook(z, codebook)
    _checks.check_choice(similarity, "similarity", _SIMILARITIES)
    _checks.check_nonnegative_scalar(beta, "beta")
    mask = _mask(where, z.shape[0])
    k = codebook.shape[0]
    dtype = jnp.promote_types(jnp.promote_types(z.dtype, codebook.dtype), jnp.float32)
    zf, cf = z.astype(dtype), codebook.astype(dtype)
    indices = jnp.argmax(_scores(lax.stop_gradient(zf), lax.stop_gradient(cf), similarity), axis=1)
    indices = indices.astype(jnp.int32)
    selected = cf[indices]
    quantized = zf + lax.stop_gradient(selected - zf)
    codebook_loss = jnp.sum((lax.stop_gradient(zf) - selected) ** 2, axis=1)
    commitment_loss = jnp.sum((zf - lax.stop_gradient(selected)) ** 2, axis=1)
    weights = jnp.ones(z.shape[0], dtype)
    if mask is not None:
        weights = mask.astype(dtype)
        indices = jnp.where(mask, indices, -1)
        codebook_loss = codebook_loss * weights
        commitment_loss = commitment_loss * weights
    counts = _usage_counts(indices, k, weights, axis_name)
    total = jnp.sum(counts)
    p = counts / jnp.where(total > 0, total, 1.0)
    perplexity = jnp.exp(-jnp.sum(jax.scipy.special.xlogy(p, p)))
    loss = codebook_loss + beta * commitment_loss
    return VQResult(
        quantized, indices, loss, codebook_loss, commitment_loss, counts, perplexity
    )


def vq_ema_init(codebook: Float[Array, "k d"]) -> VQEMAState:
    """Initial EMA state whose codebook equals ``codebook``: ``n_k = 1``, ``m_k = e_k``, ``p_k = 0``.

    Starting the sizes at one (not zero, which would divide by ~0 for codes unused in the first
    batch) is a jaxclust choice [L]: ``e_k = m_k / n_k`` then starts exactly at ``codebook``.

    Args:
      codebook: initial codes, shape [k, d].

    Returns:
      A :class:`VQEMAState` with ``step = 0``.

    Raises:
      ValueError: if ``codebook`` is not rank 2 or holds NaN/Inf.
      TypeError: if it has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import vq_ema_init
      >>> vq_ema_init(jnp.zeros((3, 2))).counts.tolist()
      [1.0, 1.0, 1.0]
    """
    codebook = _checks.as_float_array(codebook, "codebook", ndim=2, shape="[k, d]")
    dtype = jnp.promote_types(codebook.dtype, jnp.float32)
    k = codebook.shape[0]
    return VQEMAState(
        jnp.ones((k,), dtype), codebook.astype(dtype), jnp.zeros((k,), dtype), jnp.zeros((), jnp.int32)
    )


def vq_ema_update(
    state: VQEMAState,
    z: Float[Array, "n d"],
    indices: Int[Array, " n"],
    *,
    decay: ScalarLike = 0.99,
    smoothing: ScalarLike = 1e-5,
    axis_name: str | None = None,
) -> tuple[VQEMAState, Float[Array, "k d"]]:
    """One EMA codebook step (VQ-VAE appendix): returns the new state and codebook ``e_k = m_k/ñ_k``.

    - ``n_k ← γ n_k + (1 − γ) count_k``; ``m_k ← γ m_k + (1 − γ) Σ_{i: k(i)=k} z_i``;
    - ``p_k ← γ p_k + (1 − γ) count_k / Σ count`` (CVQ's usage statistic, see :func:`cvq_reanchor`);
    - Laplace smoothing ``ñ_k = (n_k + δ)/(Σ n + K δ)·Σ n``, which keeps ``Σ ñ = Σ n``.

    Indices ``-1`` (masked rows of :func:`vector_quantize`) are ignored. Call it outside the
    gradient path (its inputs are treated as constants).

    Args:
      state: current :class:`VQEMAState` (from :func:`vq_ema_init`).
      z: encoder outputs of the batch, shape [n, d].
      indices: selected codes, int, shape [n], in ``[-1, k)``.
      decay: EMA decay ``γ`` in [0, 1) (default 0.99).
      smoothing: Laplace smoothing ``δ >= 0`` (default 1e-5).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; counts and sums are then summed with ``psum`` before the EMA, so every shard holds
        the same state. Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      ``(new_state, codebook)`` with ``codebook`` of shape [k, d].

    Raises:
      ValueError: if shapes disagree, ``decay`` is not in [0, 1) or ``smoothing`` is negative.
      TypeError: if ``z`` is not floating or ``indices`` not integer.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import vq_ema_init, vq_ema_update
      >>> state = vq_ema_init(jnp.array([[0.0], [10.0]]))
      >>> state, codes = vq_ema_update(state, jnp.array([[2.0], [2.0]]), jnp.array([0, 0]), decay=0.5)
      >>> print(state.counts.tolist(), codes.round(3).tolist())
      [1.5, 0.5] [[1.333], [10.0]]

    References:
      van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning",
      NeurIPS 2017, https://arxiv.org/abs/1711.00937 (Appendix A.1).
      Zheng & Vedaldi, "Online Clustered Codebook", ICCV 2023, https://arxiv.org/abs/2307.15139.
    """
    if not isinstance(state, VQEMAState):
        raise TypeError(f"state must be a VQEMAState (from vq_ema_init), got {type(state).__name__}.")
    z = _checks.as_float_array(z, "z", ndim=2, shape="[n, d]")
    indices = _checks.as_int_array(indices, "indices", ndim=1, shape="[n]")
    k, d = state.sums.shape
    if z.shape[1] != d:
        raise ValueError(
            f"z must have shape [n, d] with d={d} to match the state, got {tuple(z.shape)}."
        )
    _checks.check_same_leading([z, indices], ["z", "indices"])
    _check_decay(decay)
    _checks.check_nonnegative_scalar(smoothing, "smoothing")
    dtype = state.sums.dtype
    z = lax.stop_gradient(z.astype(dtype))
    onehot = jax.nn.one_hot(indices, k, dtype=dtype)  # all-zero rows for index -1
    counts = _collectives.psum(jnp.sum(onehot, axis=0), axis_name)
    sums = _collectives.psum(jnp.matmul(onehot.T, z, precision=lax.Precision.HIGHEST), axis_name)
    total = jnp.sum(counts)
    fraction = counts / jnp.where(total > 0, total, 1.0)
    g = jnp.asarray(decay, dtype)
    new_counts = g * state.counts + (1 - g) * counts
    new_sums = g * state.sums + (1 - g) * sums
    new_usage = g * state.usage + (1 - g) * fraction
    n_sum = jnp.sum(new_counts)
    delta = jnp.asarray(smoothing, dtype)
    smoothed = (new_counts + delta) / (n_sum + k * delta) * n_sum
    codebook = new_sums / jnp.where(smoothed > 0, smoothed, 1.0)[:, None]
    return VQEMAState(new_counts, new_sums, new_usage, state.step + 1), codebook


def cvq_reanchor(
    codebook: Float[Array, "k d"],
    usage: Float[Array, " k"],
    z: Float[Array, "n d"],
    indices: Int[Array, " n"],
    *,
    key: KeyArray | None = None,
    decay: ScalarLike = 0.99,
    anchor: str = "probrandom",
    similarity: str = "cosine",
    axis_name: str | None = None,
) -> CVQResult:
    """CVQ's online re-anchoring: rarely used codes move towards features of the current batch.

    First the usage EMA is updated, ``p_k ← γ p_k + (1 − γ) p̄_k`` with ``p̄`` the batch usage
    fraction (``indices = -1`` rows are ignored); then
    ``α_k = exp(−10 K p_k/(1 − γ) − 10⁻³)`` and ``e_k ← (1 − α_k) e_k + α_k a_k``. A code
    used at the average rate ``p_k = 1/K`` has ``α = e^{−10/(1−γ) − 0.001} ≈ 0`` (plain VQ); a
    dead code has ``α ≈ e^{−0.001}`` and jumps to its anchor. Anchors ``a_k`` are batch
    features: ``"closest"`` the most similar feature to ``e_k``; ``"probrandom"`` (the reference
    default) one sampled with probability ``softmax_i(sim(z_i, e_k))`` (Gumbel-max). Similarity
    is cosine (default) or ``"l2"`` (negative squared distance). Training-time only; the result
    is a constant for autodiff. The ``"random"`` pool of past features of the reference is not
    provided; the optional contrastive term is not included.

    Args:
      codebook: current codes ``e_k``, shape [k, d].
      usage: usage EMA ``p_k`` before this batch, shape [k] (start from zeros, or keep it in
        :class:`VQEMAState`).
      z: batch features, shape [n, d].
      indices: codes selected for the batch (:func:`vector_quantize`), int, shape [n]; rows
        with ``-1`` (padding) are neither counted nor used as anchors.
      key: PRNG key, required for ``anchor="probrandom"``.
      decay: usage EMA decay ``γ`` in [0, 1) (default 0.99).
      anchor: ``"probrandom"`` or ``"closest"``.
      similarity: ``"cosine"`` or ``"l2"``.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; usage is then global and anchors are chosen among all shards' features (the
        ``"closest"`` choice equals the single-device one; ``"probrandom"`` draws from the same
        distribution with per-shard noise). Under plain ``jax.jit`` leave it None.

    Returns:
      A :class:`CVQResult` ``(codebook, usage, alpha, anchors)``.

    Raises:
      ValueError: if shapes disagree, ``decay`` is out of range, ``anchor``/``similarity`` is
        unknown, or ``key`` is missing for ``"probrandom"``.
      TypeError: if an input has the wrong dtype.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.losses import cvq_reanchor
      >>> codes = jnp.array([[1.0, 0.0], [0.0, -1.0]])
      >>> z = jnp.array([[1.0, 0.1], [0.9, 0.0], [0.1, 1.0]])
      >>> res = cvq_reanchor(codes, jnp.zeros(2), z, jnp.array([0, 0, 0]), anchor="closest")
      >>> # code 1 is dead (alpha ~ 1) and jumps to the feature most aligned with it, [0.9, 0]
      >>> print(res.alpha.round(3).tolist(), res.codebook[1].round(3).tolist())
      [0.0, 0.999] [0.899, -0.001]

    References:
      Zheng & Vedaldi, "Online Clustered Codebook", ICCV 2023, https://arxiv.org/abs/2307.15139.
    """
    z, codebook = _check_z_codebook(z, codebook)
    k = codebook.shape[0]
    usage = _checks.as_float_array(usage, "usage", ndim=1, shape="[k]")
    if usage.shape[0] != k:
        raise ValueError(f"usage must have shape [k] with k={k}, got shape {tuple(usage.shape)}.")
    indices = _checks.as_int_array(indices, "indices", ndim=1, shape="[n]")
    _checks.check_same_leading([z, indices], ["z", "indices"])
    _check_decay(decay)
    _checks.check_choice(anchor, "anchor", _ANCHORS)
    _checks.check_choice(similarity, "similarity", _SIMILARITIES)
    if anchor == "probrandom" and key is None:
        raise ValueError('key must be a PRNG key when anchor="probrandom", got None.')
    dtype = jnp.promote_types(jnp.promote_types(z.dtype, codebook.dtype), jnp.float32)
    z = lax.stop_gradient(z.astype(dtype))
    cb = lax.stop_gradient(codebook.astype(dtype))
    g = jnp.asarray(decay, dtype)
    valid = (indices >= 0).astype(dtype)
    counts = _usage_counts(indices, k, valid, axis_name)
    total = jnp.sum(counts)
    new_usage = g * usage.astype(dtype) + (1 - g) * counts / jnp.where(total > 0, total, 1.0)
    alpha = jnp.exp(-10.0 * k * new_usage / (1 - g) - 1e-3)

    scores = _scores(z, cb, similarity)  # [n, k]
    if similarity == "l2":
        scores = scores - jnp.sum(z * z, axis=1)[:, None]  # the true −‖z − e‖² for softmax
    if anchor == "probrandom":
        # Gumbel-max over the whole (global) batch samples i ~ softmax_i(sim(z_i, e_k)).
        noise = jax.random.gumbel(_collectives.fold_in_shard(key, axis_name), scores.shape, dtype)
        scores = scores + noise
    scores = jnp.where(indices[:, None] >= 0, scores, -jnp.inf)  # padding rows are never anchors
    best = jnp.argmax(scores, axis=0)  # [k] local winner per code
    best_score = jnp.take_along_axis(scores, best[None, :], axis=0)[0]
    candidate = z[best]  # [k, d]
    if axis_name is not None:
        all_scores = _collectives.all_gather(best_score, axis_name)  # [S, k]
        winner = jnp.argmax(all_scores, axis=0)  # first shard on ties
        mine = (winner == _collectives.shard_index(axis_name)).astype(dtype)
        candidate = _collectives.psum(mine[:, None] * candidate, axis_name)
    new_codebook = (1 - alpha)[:, None] * cb + alpha[:, None] * candidate
    return CVQResult(new_codebook, new_usage, alpha, candidate)


def cvq_contrastive_loss(
    z: Float[Array, "n d"],
    codebook: Float[Array, "k d"],
    *,
    temperature: ScalarLike = 0.07,
    similarity: str = "cosine",
) -> Float[Array, " k"]:
    """CVQ's optional contrastive term: each code against its closest and farthest batch features.

    With ``s_ik = sim(z_i, e_k)`` [n, k] sorted over the batch for every code ``k``: the positive
    logit is the mean of the ``max(1, ⌊n/k⌋)`` largest similarities, the negatives are the
    ``⌊n/2⌋`` smallest, and the loss is the cross-entropy of the positive among
    ``[positive, negatives] / τ``, i.e. ``LSE([p, negs]/τ) − p/τ``. Gradients reach both ``z`` and
    the codebook. Sorting needs the whole batch on one device (no ``axis_name``). Per code, so the
    result has shape [k]; CVQ adds its mean to the loss.

    Args:
      z: batch features, shape [n, d], ``n >= 2``.
      codebook: codes, shape [k, d].
      temperature: ``τ > 0`` (default 0.07).
      similarity: ``"cosine"`` (default) or ``"l2"`` (negative squared distance).

    Returns:
      Cross-entropy per code, shape [k].

    Raises:
      ValueError: if shapes disagree, ``n < 2``, ``similarity`` is unknown or ``temperature`` is
        not positive.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import cvq_contrastive_loss
      >>> z = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
      >>> cvq_contrastive_loss(z, jnp.array([[1.0, 0.0], [-1.0, 0.0]])).round(4).tolist()
      [0.0008, 0.0008]

    References:
      Zheng & Vedaldi, "Online Clustered Codebook", ICCV 2023, https://arxiv.org/abs/2307.15139.
    """
    z, codebook = _check_z_codebook(z, codebook)
    _checks.check_choice(similarity, "similarity", _SIMILARITIES)
    n, k = z.shape[0], codebook.shape[0]
    if n < 2:
        raise ValueError(f"z needs n >= 2 samples for positives and negatives, got n={n}.")
    if _checks.is_concrete(temperature):
        t = np.asarray(temperature)
        if t.ndim != 0 or not np.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {t.tolist()}.")
    dtype = jnp.promote_types(jnp.promote_types(z.dtype, codebook.dtype), jnp.float32)
    z, codebook = z.astype(dtype), codebook.astype(dtype)
    scores = _scores(z, codebook, similarity)
    if similarity == "l2":
        scores = scores - jnp.sum(z * z, axis=1)[:, None]
    ordered = jnp.sort(scores, axis=0)  # ascending over the batch, per code
    num_pos = max(1, n // k)
    positive = jnp.mean(ordered[n - num_pos :], axis=0)  # [k]
    negatives = ordered[: n // 2]  # [n/2, k]
    logits = jnp.concatenate([positive[None, :], negatives], axis=0) / temperature
    return jax.nn.logsumexp(logits, axis=0) - logits[0]
