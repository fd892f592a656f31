"""NT-Xent (SimCLR) and multi-positive InfoNCE, with negatives gathered across devices.

Both losses are cross-entropies of a softmax over similarities ``s_ij = ⟨ẑ_i, ẑ_j⟩/τ`` computed in
the log domain (``log_softmax``), with excluded entries (self-similarity, padding) set to ``-inf``
rather than a large finite number (METHODS.md §0.3, §3.13).

The private helpers here (row normalisation, cross-device gathering, the multi-positive
cross-entropy) are shared by the other contrastive and metric losses of ``jaxclust.losses``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike

_MULTI_POSITIVE = ("mean", "logsumexp")


# --------------------------------------------------------------------------------------------------
# Private helpers shared by the contrastive / metric losses.


def _compute_dtype(*arrays):
    """At least float32: bf16/fp16 inputs accumulate in fp32 (METHODS.md §0.3)."""
    return _checks.compute_dtype(jnp.result_type(*arrays))


def _normalize(x):
    """``x / max(‖x‖, 1e-12)`` row-wise (PyTorch's ``F.normalize`` clamp).

    Zero rows map to zero with a finite gradient: the clamp keeps ``rsqrt`` and its derivative
    finite in float32 (a clamp at ``finfo.tiny`` would give ``0 · inf = NaN`` in the backward pass).
    """
    x = x.astype(_compute_dtype(x))
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    return x * lax.rsqrt(jnp.maximum(sq, 1e-24))


def _dot(a, b):
    """``a @ b.T`` accumulated in at least float32."""
    dtype = _compute_dtype(a, b)
    return jnp.einsum("nd,md->nm", a, b, preferred_element_type=dtype).astype(dtype)


def _squared_distances(a, b):
    """``‖a_i − b_j‖²`` as ``‖a‖² − 2⟨a,b⟩ + ‖b‖²`` clamped at 0 (METHODS.md §0.3)."""
    dtype = _compute_dtype(a, b)
    a = a.astype(dtype)
    b = b.astype(dtype)
    sq = jnp.sum(a * a, -1)[:, None] - 2.0 * _dot(a, b) + jnp.sum(b * b, -1)[None, :]
    return jnp.maximum(sq, 0.0)


def _gather(x, axis_name):
    """Concatenates ``x`` from every shard along axis 0 (shard-major order); identity when None.

    ``lax.all_gather`` is differentiable (its transpose is ``psum_scatter``), so cotangents on the
    gathered copies flow back to the shard that owns each row (METHODS.md §3.13).
    """
    if axis_name is None:
        return x
    return lax.all_gather(x, axis_name, axis=0, tiled=True)


def _global_offset(n, axis_name):
    """Global index of this shard's first row in the gathered (shard-major) order."""
    return _collectives.shard_index(axis_name) * n


def _is_self(n, num, axis_name):
    """``[n, N]`` mask of each local anchor's own column in the gathered (shard-major) batch."""
    self_col = _global_offset(n, axis_name) + jnp.arange(n)
    return jnp.arange(num)[None, :] == self_col[:, None]


def _mask(where, n, name, other):
    if where is None:
        return jnp.ones((n,), bool)
    return _checks.as_bool_array(where, name, n=n, other=other)


def _check_temperature(temperature, name="temperature"):
    if _checks.is_concrete(temperature):
        import numpy as np

        t = np.asarray(temperature)
        if t.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got shape {t.shape}.")
        if not np.isfinite(t) or t <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {t.item()}.")
    elif jnp.ndim(temperature) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(temperature)}.")


def _positive_cross_entropy(logits, positives, mode):
    """Per-row ``−mean_{j∈P(i)} log softmax(logits_i)_j`` (mode "mean", the SupCon L_out form) or
    ``−log Σ_{j∈P(i)} softmax(logits_i)_j`` (mode "logsumexp", L_in / MIL-NCE).

    ``logits`` holds ``-inf`` at excluded columns; ``positives`` must be False there. Rows without a
    positive return 0 (callers exclude them); the ``jnp.where`` guards keep gradients finite.
    """
    num_pos = jnp.sum(positives, axis=1)
    has_pos = num_pos > 0
    # A row without positives may be all -inf; its LSE gradient would be NaN even when zeroed.
    logits = jnp.where(has_pos[:, None], logits, 0.0)
    safe_lse = jax.nn.logsumexp(logits, axis=1)
    if mode == "mean":
        pos_logits = jnp.where(positives, logits, 0.0)
        mean_pos = jnp.sum(pos_logits, axis=1) / jnp.maximum(num_pos, 1)
        loss = safe_lse - mean_pos
    else:
        pos_lse = jax.nn.logsumexp(jnp.where(positives, logits, -jnp.inf), axis=1)
        loss = safe_lse - jnp.where(has_pos, pos_lse, 0.0)
    return jnp.where(has_pos, loss, 0.0), has_pos


# --------------------------------------------------------------------------------------------------
# Public losses.


def nt_xent(
    z1: Float[Array, "n d"],
    z2: Float[Array, "n d"],
    *,
    temperature: ScalarLike = 0.5,
    normalize: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR, per pair of views.

    The two views are stacked as ``u = [z1; z2]`` (``2N`` items, ``N`` the global number of pairs),
    ``s_ij = ⟨û_i, û_j⟩/τ`` with ``s_ii = −∞``, and for every item
    ``ℓ_i = −s_{i,π(i)} + LSE_{j≠i} s_ij`` where ``π(i)`` is the other view of the same sample
    (METHODS.md §3.13). Entry ``i`` of the result is ``(ℓ_i + ℓ_{N+i}) / 2``, the average of the
    two directions of pair ``i`` (anchor ``z1[i]`` with positive ``z2[i]``, and anchor ``z2[i]``
    with positive ``z1[i]``), each contrasted against all ``2N − 2`` other items of the global
    batch. Hence ``mean(nt_xent(z1, z2))`` is SimCLR's loss ``L = mean_i ℓ_i`` over ``2N`` items.

    The loss is batch-coupled: every entry depends on the whole (global) batch.

    A learnable temperature is best parametrised by its logarithm, as in CLIP: keep a parameter
    ``log_tau`` and pass ``temperature=jnp.exp(log_tau)`` (a traced scalar is accepted).

    Args:
      z1: first view of each sample, shape [n, d].
      z2: second view, shape [n, d]; row ``i`` is the positive of ``z1[i]``.
      temperature: ``τ > 0``, default 0.5 (SimCLR's CIFAR-10 value; its ImageNet runs use 0.1
        with large batches). May be traced.
      normalize: L2-normalise the rows first (cosine similarity), as SimCLR does. Zero rows stay
        zero (with a zero gradient), never NaN.
      where: optional validity mask [n] over pairs; an invalid pair is neither an anchor nor a
        negative (both its views are removed), and its entry is 0. Padded rows may hold any
        finite values.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, the candidates of every anchor (negatives and
        positive) are gathered from all shards with a differentiable ``all_gather``, and the
        result equals the single-device loss on the global batch (entries for this shard's
        pairs). Under plain ``jax.jit`` on sharded arrays leave it None and XLA inserts the
        collectives.

    Returns:
      Per-pair losses, shape [n] (0 where ``where`` is False). Average them over valid pairs
      (globally, e.g. ``psum(sum) / psum(count)`` under ``shard_map``) to get SimCLR's loss.

    Raises:
      TypeError: non-floating ``z1``/``z2`` or non-boolean ``where``.
      ValueError: rank or shape mismatch, a non-positive temperature, non-finite inputs.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import nt_xent
      >>> z = jnp.eye(3)
      >>> nt_xent(z, z, temperature=1.0).round(4)  # positives identical, negatives orthogonal
      Array([0.9048, 0.9048, 0.9048], dtype=float...)

    References:
      Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
      Representations", ICML 2020, https://arxiv.org/abs/2002.05709 (Eq. 1).
    """
    z1 = _checks.as_float_array(z1, "z1", 2, "[n, d]")
    z2 = _checks.as_float_array(z2, "z2", 2, "[n, d]")
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape [n, d], got {z1.shape} and {z2.shape}."
        )
    _check_temperature(temperature)
    n = z1.shape[0]
    valid = _mask(where, n, "where", "z1")
    if normalize:
        z1, z2 = _normalize(z1), _normalize(z2)
    u = jnp.concatenate([z1, z2], axis=0)  # [2n, d]: local anchors, view-major
    u1_all = _gather(z1, axis_name)  # [N, d]
    u2_all = _gather(z2, axis_name)
    valid_all = _gather(valid, axis_name)
    num = u1_all.shape[0]
    candidates = jnp.concatenate([u1_all, u2_all], axis=0)  # [2N, d]
    cand_valid = jnp.concatenate([valid_all, valid_all])
    logits = _dot(u, candidates) / temperature  # [2n, 2N]
    g = _global_offset(n, axis_name) + jnp.arange(n)
    self_col = jnp.concatenate([g, num + g])  # column of each anchor itself
    pos_col = jnp.concatenate([num + g, g])  # column of its other view
    cols = jnp.arange(2 * num)
    anchor_valid = jnp.concatenate([valid, valid])
    # Padding is removed from the candidates of valid anchors only: an invalid anchor keeps its
    # (finite) positive, so its value stays finite and is zeroed below with a zero gradient.
    keep = (cand_valid[None, :] | ~anchor_valid[:, None]) & (cols[None, :] != self_col[:, None])
    logits = jnp.where(keep, logits, -jnp.inf)
    positives = cols[None, :] == pos_col[:, None]
    loss, _ = _positive_cross_entropy(logits, positives, "mean")
    loss = jnp.where(anchor_valid, loss, 0.0)
    return 0.5 * (loss[:n] + loss[n:])


def info_nce(
    queries: Float[Array, "n d"],
    keys: Float[Array, "m d"],
    *,
    positives: Bool[Array, "n m"] | None = None,
    temperature: ScalarLike = 0.1,
    normalize: bool = True,
    multi_positive: str = "mean",
    where: Bool[Array, " n"] | None = None,
    key_where: Bool[Array, " m"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    r"""InfoNCE of queries against a set of keys, with one or several positives per query.

    ``s_ij = ⟨q̂_i, k̂_j⟩/τ``. With one positive ``j⁺`` per query,
    ``ℓ_i = −s_{ij⁺} + LSE_j s_ij`` (METHODS.md §3.13). With a set ``P(i)`` of positives:

    - ``multi_positive="mean"``: ``ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} [s_ip − LSE_j s_ij]``, the
      average of the per-positive cross-entropies (SupCon's ``L_out`` form);
    - ``multi_positive="logsumexp"``: ``ℓ_i = −LSE_{p∈P(i)} s_ip + LSE_j s_ij``, minus the log of
      the total probability of the positives (``L_in`` / MIL-NCE form).

    Both coincide with a single positive. Queries with no positive get 0. The denominator runs over
    all valid keys, positives included; to contrast against extra negatives (a MoCo queue),
    append them to ``keys`` (wrapped in ``jax.lax.stop_gradient``) with ``False`` in
    ``positives``.

    A learnable temperature is best parametrised as ``temperature=jnp.exp(log_tau)``.

    Args:
      queries: anchors, shape [n, d].
      keys: candidates, shape [m, d].
      positives: boolean [n, m_global] marking the positive keys of each query, where
        ``m_global`` is ``m`` times the number of shards under ``axis_name`` (gathered keys are
        ordered shard by shard) and ``m`` otherwise. None means query ``i`` is paired with key
        ``i`` (requires ``n == m``; globally, with key ``shard·n + i`` under ``axis_name``).
      temperature: ``τ > 0``, default 0.1 (MoCo v2 uses 0.2, CLIP learns it). May be traced.
      normalize: L2-normalise queries and keys (cosine similarity).
      multi_positive: "mean" or "logsumexp" (see above); static.
      where: optional validity mask [n] over queries; invalid queries get 0.
      key_where: optional validity mask [m] over keys; invalid keys are removed from every
        softmax (and from the positives).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` and ``m`` are per-shard counts and the keys (and ``key_where``) are
        gathered from every shard with a differentiable ``all_gather``, so each query is
        contrasted against the global set of keys. Under plain ``jax.jit`` on sharded arrays
        leave it None.

    Returns:
      Per-query losses, shape [n]; 0 for invalid queries and for queries with no valid positive.

    Raises:
      TypeError: non-floating features or non-boolean masks.
      ValueError: shape mismatches, unknown ``multi_positive``, a non-positive temperature.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import info_nce
      >>> q = jnp.eye(2)
      >>> info_nce(q, q, temperature=1.0).round(4)
      Array([0.3133, 0.3133], dtype=float...)

    References:
      van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding",
      2018, https://arxiv.org/abs/1807.03748; He et al., "Momentum Contrast for Unsupervised
      Visual Representation Learning", CVPR 2020, https://arxiv.org/abs/1911.05722; Miech et al.,
      "End-to-End Learning of Visual Representations from Uncurated Instructional Videos"
      (MIL-NCE), CVPR 2020, https://arxiv.org/abs/1912.06430.
    """
    queries = _checks.as_float_array(queries, "queries", 2, "[n, d]")
    keys = _checks.as_float_array(keys, "keys", 2, "[m, d]")
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(
            f"queries and keys must have the same feature dimension d, got {queries.shape[1]} "
            f"and {keys.shape[1]}."
        )
    _checks.check_choice(multi_positive, "multi_positive", _MULTI_POSITIVE)
    _check_temperature(temperature)
    n, m = queries.shape[0], keys.shape[0]
    valid = _mask(where, n, "where", "queries")
    key_valid = _mask(key_where, m, "key_where", "keys")
    if normalize:
        queries, keys = _normalize(queries), _normalize(keys)
    keys_all = _gather(keys, axis_name)
    key_valid_all = _gather(key_valid, axis_name)
    m_all = keys_all.shape[0]
    cols = jnp.arange(m_all)
    if positives is None:
        if n != m:
            raise ValueError(
                f"positives=None pairs query i with key i and needs n == m, got n={n} queries "
                f"and m={m} keys; pass a boolean positives mask [n, m]."
            )
        pos = cols[None, :] == (_global_offset(n, axis_name) + jnp.arange(n))[:, None]
    else:
        if jnp.shape(positives) != (n, m_all) or jnp.asarray(positives).dtype != bool:
            raise ValueError(
                f"positives must be a boolean array of shape (n, m_global)=({n}, {m_all}), got "
                f"shape {tuple(jnp.shape(positives))} and dtype {jnp.asarray(positives).dtype}."
            )
        pos = jnp.asarray(positives)
    logits = jnp.where(key_valid_all[None, :], _dot(queries, keys_all) / temperature, -jnp.inf)
    pos = pos & key_valid_all[None, :]
    loss, _ = _positive_cross_entropy(logits, pos, multi_positive)
    return jnp.where(valid, loss, 0.0)
