"""I-Con: representation losses as a KL divergence between neighbour distributions.

Every function here works on ``[n, n]`` matrices of log-probabilities whose row ``i`` is a
distribution over the neighbours ``j ≠ i`` of anchor ``i`` (the diagonal is ``-inf``). The
``icon_*`` constructors build the supervisory distribution ``p`` (pairs, labels, kNN graph,
Gaussian kernel, cluster co-membership) and the learned one ``q`` (cosine softmax, Student-t,
Gaussian, cluster co-membership); :func:`icon_loss` returns ``KL(p(·|i) ‖ q(·|i))`` per anchor.

Data parallelism: inside ``jax.shard_map``, with the sample axis split over a mesh axis, call
the constructors with that ``axis_name``. Then ``n`` is the per-shard count, the rows are this
shard's anchors and the columns the ``N`` samples of the global batch, gathered from all shards
in shard order with a differentiable ``all_gather``: each constructor returns this shard's rows
of the single-device matrix of the global batch. :func:`icon_loss`, which works row by row,
needs no ``axis_name``. Under plain ``jax.jit`` on sharded arrays leave ``axis_name`` None and
XLA inserts the collectives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import (
    _check_temperature,
    _dot,
    _gather,
    _is_self,
    _mask,
    _normalize,
    _squared_distances,
)


def _off_diagonal(logits, axis_name=None):
    n, num = logits.shape
    return jnp.where(_is_self(n, num, axis_name), -jnp.inf, logits)


def _row_log_normalize(log_w):
    """Row-wise ``log_softmax`` that leaves all ``-inf`` rows all ``-inf`` (no NaN)."""
    ok = jnp.any(jnp.isfinite(log_w), axis=1, keepdims=True)
    out = jax.nn.log_softmax(jnp.where(ok, log_w, 0.0), axis=1)
    return jnp.where(ok & (log_w > -jnp.inf), out, -jnp.inf)


def icon_loss(
    log_p: Float[Array, "n m"],
    log_q: Float[Array, "n m"],
    *,
    normalize: bool = True,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    r"""I-Con loss ``KL(p(·|i) ‖ q(·|i))`` for every anchor ``i`` (rows are anchors).

    ``ℓ_i = Σ_j p_ij (ln p_ij − ln q_ij)`` with ``0 · ln 0 = 0`` (METHODS.md §3.17); the mean
    over anchors is the I-Con objective ``L = (1/N) Σ_i KL(p(·|i) ‖ q_θ(·|i))``. Build ``p`` and
    ``q`` with the ``icon_*`` constructors or any other function returning log-weights. Known
    methods arise as follows:

    - **SimCLR / InfoNCE**: ``p = icon_pairs(n)``, ``q = icon_cosine([z1; z2], temperature=τ)``.
      ``H(p) = 0``, so ``ℓ_i`` is the NT-Xent term of item ``i`` exactly.
    - **SupCon**: ``p = icon_labels(y)``, same ``q``: ``ℓ_i = L_out,i − ln|P(i)|``.
    - **SNE**: ``p = icon_gaussian(x, sigma=σ_i)`` on the input data and
      ``q = icon_gaussian(z, sigma=1/√2)`` (``q_ij ∝ exp(−‖z_i − z_j‖²)``) on the embedding: the
      mean of ``ℓ`` is SNE's cost up to the factor ``N``. ``q = icon_student_t(z)`` gives the
      conditional form of t-SNE (t-SNE proper symmetrises ``p`` into a joint distribution).
    - **k-means / spectral clustering** (the "clustering family"): ``p`` from a Gaussian kernel
      or kNN graph on frozen features (``icon_gaussian``, ``icon_knn``; the latter is the
      random-walk row ``A_ij / Σ_j A_ij`` of spectral clustering), and
      ``q = icon_comembership(φ)`` with ``φ`` the softmax cluster assignments: ``q(j|i)`` draws
      ``j`` uniformly from ``i``'s cluster. With hard assignments and a Gaussian ``p`` of
      vanishing width this recovers a k-means-type objective (the paper's derivation; the exact
      kernels and limits are not pinned down here).
    - **Debiasing**: mix ``p`` with the uniform distribution over ``j ≠ i`` before the call,
      ``log((1 − α) p + α u)``.

    Each anchor's loss depends on its own row only, so there is no ``axis_name``: under
    ``jax.shard_map`` pass the rows built by the constructors with ``axis_name`` (this shard's
    anchors against the global batch) and average over anchors globally (``psum`` of the sum and
    of the count).

    Args:
      log_p: supervisory log-probabilities (or log-weights if ``normalize``), shape [n, m];
        ``-inf`` marks ``p_ij = 0``. ``p`` is a target: wrap it in ``jax.lax.stop_gradient`` if it
        depends on parameters you do not want to train through it.
      log_q: learned log-probabilities (or logits if ``normalize``), shape [n, m].
      normalize: apply a row-wise log-softmax to both inputs first (so unnormalised log-weights
        and logits are accepted); False takes them as already normalised.
      where: optional validity mask [n] over anchors; invalid anchors get 0.

    Returns:
      Per-anchor KL divergences, shape [n]; 0 for invalid anchors and for rows where ``p`` is
      identically 0 (an anchor without supervision). ``+inf`` where ``q`` puts no mass on a
      neighbour that ``p`` requires (the KL is infinite there), never NaN.

    Raises:
      TypeError: non-floating inputs or a non-boolean ``where``.
      ValueError: ranks or shapes that differ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_loss
      >>> log_p = jnp.log(jnp.array([[0.5, 0.5], [1.0, 0.0]]))
      >>> icon_loss(log_p, jnp.zeros((2, 2))).round(4)  # against uniform q
      Array([0.    , 0.6931], dtype=float...)

    References:
      Alshammari, Hershey, Feldmann, Freeman, Hamilton, "I-Con: A Unifying Framework for
      Representation Learning", ICLR 2025, https://arxiv.org/abs/2504.16929.
    """
    log_p = _checks.as_float_array(log_p, "log_p", 2, "[n, m]", finite=False)
    log_q = _checks.as_float_array(log_q, "log_q", 2, "[n, m]", finite=False)
    if log_p.shape != log_q.shape:
        raise ValueError(
            f"log_p and log_q must have the same shape [n, m], got {log_p.shape} and "
            f"{log_q.shape}."
        )
    valid = _mask(where, log_p.shape[0], "where", "log_p")
    if normalize:
        log_p, log_q = _row_log_normalize(log_p), _row_log_normalize(log_q)
    support = log_p > -jnp.inf
    has_p = jnp.any(support, axis=1)
    lp = jnp.where(support, log_p, 0.0)
    lq = jnp.where(support, log_q, 0.0)
    kl = jnp.sum(jnp.where(support, jnp.exp(lp) * (lp - lq), 0.0), axis=1)
    return jnp.where(valid & has_p, kl, 0.0)


def icon_pairs(num_pairs: int, *, axis_name: str | None = None) -> Float[Array, "n n"]:
    r"""``ln p`` for augmentation pairs: ``p(j|i) = 1[j = π(i)]`` over ``n = 2·num_pairs`` items.

    Items are stacked view-major, ``[z1; z2]``, as in :func:`jaxclust.losses.nt_xent`, so the
    partner of item ``i`` is ``(i + num_pairs) mod 2·num_pairs``.

    Args:
      num_pairs: number of pairs (static); the per-shard count under ``axis_name``.
      axis_name: set only inside ``jax.shard_map`` with the pairs split over this mesh axis,
        each shard stacking its own ``[z1; z2]`` (``2·num_pairs`` items). The columns are then
        the items of all shards in the order the other constructors gather them (shard ``s``
        owns columns ``2·num_pairs·s`` to ``2·num_pairs·(s+1) − 1``), and the partner of local
        item ``i`` is column ``2·num_pairs·s + (i + num_pairs) mod 2·num_pairs``. The per-anchor
        losses are those of the single-device call on the global batch (a row's KL does not
        depend on the order of the columns).

    Returns:
      Log-probabilities [2·num_pairs, 2·num_pairs] (columns ``2·num_pairs·S`` over ``S``
      shards under ``axis_name``): 0 at the partner, ``-inf`` elsewhere.

    Raises:
      TypeError, ValueError: ``num_pairs`` not a positive int.

    Examples:
      >>> from jaxclust.losses import icon_pairs
      >>> icon_pairs(1)
      Array([[-inf,   0.],
             [  0., -inf]], dtype=float...)
    """
    b = _checks.check_positive_int(num_pairs, "num_pairs")
    shards = 1 if axis_name is None else lax.psum(1, axis_name)
    idx = jnp.arange(2 * b)
    partner = 2 * b * _collectives.shard_index(axis_name) + (idx + b) % (2 * b)
    return jnp.where(jnp.arange(2 * b * shards)[None, :] == partner[:, None], 0.0, -jnp.inf)


def icon_labels(
    labels: Int[Array, " n"],
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "n n"]:
    r"""``ln p`` for supervision by labels: ``p(j|i) = 1[y_j = y_i, j ≠ i] / |P(i)|``.

    Negative labels and ``where=False`` mark samples that are nobody's neighbour and whose rows
    are empty (all ``-inf``; :func:`icon_loss` gives them 0), as are rows of singletons.

    Args:
      labels: integer labels, shape [n].
      where: optional validity mask [n].
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Log-probabilities [n, n] ([n, N] under ``axis_name``).

    Raises:
      TypeError: non-integer labels; ValueError: bad rank or mask length.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_labels
      >>> jnp.exp(icon_labels(jnp.array([0, 0, 0, 1])))[0]
      Array([0. , 0.5, 0.5, 0. ], dtype=float...)
    """
    labels = _checks.as_int_array(labels, "labels", 1, "[n]")
    n = labels.shape[0]
    valid = _mask(where, n, "where", "labels") & (labels >= 0)
    labels_all = _gather(labels, axis_name)
    valid_all = _gather(valid, axis_name)
    same = (labels[:, None] == labels_all[None, :]) & valid[:, None] & valid_all[None, :]
    same = same & ~_is_self(n, labels_all.shape[0], axis_name)
    count = jnp.sum(same, axis=1, keepdims=True)
    return jnp.where(same, -jnp.log(jnp.maximum(count, 1).astype(jnp.result_type(float))), -jnp.inf)


def icon_knn(
    x: Float[Array, "n d"], *, k: int, axis_name: str | None = None
) -> Float[Array, "n n"]:
    r"""``ln p`` uniform over the ``k`` nearest neighbours (squared Euclidean, self excluded).

    ``p(j|i) = 1[j ∈ kNN(i)] / k``: the random-walk row of the kNN affinity graph. Ties are broken
    by index (``lax.top_k``).

    Args:
      x: features, shape [n, d] (typically frozen).
      k: neighbours per anchor, ``1 ≤ k < n`` (``k < N``, the global count, under
        ``axis_name``; static).
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Log-probabilities [n, n] ([n, N] under ``axis_name``).

    Raises:
      TypeError, ValueError: bad ``x`` or ``k``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_knn
      >>> jnp.exp(icon_knn(jnp.array([[0.0], [1.0], [5.0]]), k=1))
      Array([[0., 1., 0.],
             [1., 0., 0.],
             [0., 1., 0.]], dtype=float...)
    """
    x = _checks.as_float_array(x, "x", 2, "[n, d]")
    n = x.shape[0]
    k = _checks.check_positive_int(k, "k")
    x_all = _gather(x, axis_name)
    num = x_all.shape[0]
    if k >= num:
        raise ValueError(f"k must be < the number of samples n={num}, got k={k}.")
    neg = _off_diagonal(-_squared_distances(x, x_all), axis_name)
    _, idx = lax.top_k(neg, k)  # ties go to the lower global index, as on one device
    chosen = jnp.zeros((n, num), bool).at[jnp.arange(n)[:, None], idx].set(True)
    return jnp.where(chosen, -jnp.log(jnp.asarray(k, neg.dtype)), -jnp.inf)


def icon_gaussian(
    x: Float[Array, "n d"],
    *,
    sigma: ScalarLike | Float[Array, " n"] = 1.0,
    axis_name: str | None = None,
) -> Float[Array, "n n"]:
    r"""``ln p`` (or ``ln q``) of a Gaussian kernel: ``p(j|i) ∝ exp(−‖x_i − x_j‖² / 2σ_i²)``.

    SNE's conditional distributions; ``sigma`` may be one bandwidth or one per anchor (as found
    by SNE's perplexity search, which is not done here). ``sigma = 1/√2`` gives SNE's embedding
    distribution ``q_ij ∝ exp(−‖z_i − z_j‖²)``.

    Args:
      x: points, shape [n, d].
      sigma: bandwidth ``σ > 0``, a scalar or shape [n] (this shard's anchors under
        ``axis_name``). May be traced.
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Row-normalised log-probabilities [n, n] ([n, N] under ``axis_name``) with a ``-inf``
      diagonal.

    Raises:
      TypeError, ValueError: bad ``x`` or a ``sigma`` of the wrong shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_gaussian
      >>> jnp.exp(icon_gaussian(jnp.array([[0.0], [1.0], [2.0]])))[1]
      Array([0.5, 0. , 0.5], dtype=float...)
    """
    x = _checks.as_float_array(x, "x", 2, "[n, d]")
    sigma = jnp.asarray(sigma)
    if sigma.ndim not in (0, 1) or (sigma.ndim == 1 and sigma.shape[0] != x.shape[0]):
        raise ValueError(f"sigma must be a scalar or have shape ({x.shape[0]},), got {sigma.shape}.")
    scale = 2.0 * jnp.broadcast_to(sigma, (x.shape[0],)) ** 2
    sq = _squared_distances(x, _gather(x, axis_name))
    return jax.nn.log_softmax(_off_diagonal(-sq / scale[:, None], axis_name), axis=1)


def icon_cosine(
    z: Float[Array, "n d"], *, temperature: ScalarLike = 0.5, axis_name: str | None = None
) -> Float[Array, "n n"]:
    r"""``ln q`` of the contrastive softmax: ``q(j|i) = softmax_{j≠i}(⟨ẑ_i, ẑ_j⟩ / τ)``.

    Args:
      z: embeddings, shape [n, d] (normalised inside).
      temperature: ``τ > 0``. May be traced.
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Row-normalised log-probabilities [n, n] ([n, N] under ``axis_name``) with a ``-inf``
      diagonal.

    Raises:
      TypeError, ValueError: bad ``z`` or temperature.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_cosine
      >>> jnp.exp(icon_cosine(jnp.eye(3), temperature=1.0))[0].round(3)
      Array([0. , 0.5, 0.5], dtype=float...)
    """
    z = _checks.as_float_array(z, "z", 2, "[n, d]")
    _check_temperature(temperature)
    zn = _normalize(z)
    logits = _dot(zn, _gather(zn, axis_name)) / temperature
    return jax.nn.log_softmax(_off_diagonal(logits, axis_name), axis=1)


def icon_student_t(
    z: Float[Array, "n d"], *, dof: ScalarLike = 1.0, axis_name: str | None = None
) -> Float[Array, "n n"]:
    r"""``ln q`` of a Student-t kernel: ``q(j|i) ∝ (1 + ‖z_i − z_j‖²/ν)^{−(ν+1)/2}``.

    With ``ν = 1`` this is the heavy-tailed kernel of t-SNE (conditional form) and of DEC.

    Args:
      z: embeddings, shape [n, d].
      dof: degrees of freedom ``ν > 0``, default 1. May be traced.
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Row-normalised log-probabilities [n, n] ([n, N] under ``axis_name``) with a ``-inf``
      diagonal.

    Raises:
      TypeError, ValueError: bad ``z``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_student_t
      >>> jnp.exp(icon_student_t(jnp.array([[0.0], [1.0], [3.0]])))[0].round(3)
      Array([0. , 0.833, 0.167], dtype=float...)
    """
    z = _checks.as_float_array(z, "z", 2, "[n, d]")
    sq = _squared_distances(z, _gather(z, axis_name))
    log_kernel = -(dof + 1.0) / 2.0 * jnp.log1p(sq / dof)
    return jax.nn.log_softmax(_off_diagonal(log_kernel, axis_name), axis=1)


def icon_comembership(
    log_phi: Float[Array, "n k"],
    *,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "n n"]:
    r"""``ln q`` (or ``ln p``) of cluster co-membership: ``j`` is drawn uniformly from ``i``'s cluster.

    ``q(j|i) ∝ Σ_c φ_ic φ_jc / Σ_l φ_lc`` over ``j ≠ i``, with ``φ = exp(log_phi)`` the (soft)
    cluster assignments, computed in the log domain (peak memory ``n·n·k``, ``n·N·k`` under
    ``axis_name``). The cluster sizes ``Σ_l φ_lc`` run over the global batch.

    Args:
      log_phi: log cluster assignments, shape [n, k] (e.g. ``log_softmax`` of cluster logits;
        one-hot assignments as ``0`` / ``-inf``).
      where: optional validity mask [n]; invalid samples are nobody's neighbour.
      axis_name: the sample axis's mesh axis inside ``jax.shard_map``, else None (see
        *Data parallelism* in the module docstring).

    Returns:
      Row-normalised log-probabilities [n, n] ([n, N] under ``axis_name``) with a ``-inf``
      diagonal.

    Raises:
      TypeError, ValueError: bad ``log_phi`` or mask.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import icon_comembership
      >>> log_phi = jnp.log(jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
      >>> jnp.exp(icon_comembership(log_phi))[0]
      Array([0., 1., 0., 0.], dtype=float...)
    """
    log_phi = _checks.as_float_array(log_phi, "log_phi", 2, "[n, k]", finite=False)
    n = log_phi.shape[0]
    valid = _mask(where, n, "where", "log_phi")
    log_phi = jnp.where(valid[:, None], log_phi, -jnp.inf)
    # Columns (and cluster sizes) range over the global batch: gather the neighbours.
    log_phi_all = _gather(log_phi, axis_name)
    valid_all = _gather(valid, axis_name)
    col_ok = jnp.any(jnp.isfinite(log_phi_all), axis=0)
    log_size = jnp.where(
        col_ok, jax.nn.logsumexp(jnp.where(col_ok[None, :], log_phi_all, 0.0), axis=0), jnp.inf
    )
    # log Σ_c φ_ic φ_jc / |c| as an LSE over clusters; pairs sharing no cluster stay -inf.
    terms = log_phi[:, None, :] + log_phi_all[None, :, :] - log_size[None, None, :]
    finite = jnp.isfinite(terms)
    any_f = jnp.any(finite, axis=2)
    log_w = jax.nn.logsumexp(jnp.where(any_f[:, :, None], jnp.where(finite, terms, -jnp.inf), 0.0),
                             axis=2)
    log_w = jnp.where(any_f & valid_all[None, :], log_w, -jnp.inf)
    return _row_log_normalize(_off_diagonal(log_w, axis_name))
