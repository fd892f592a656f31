"""OT self-labelling losses: SwAV swapped prediction, SeLa pseudo-labels, P²OT."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.assign import p2ot, sinkhorn_knopp
from jaxclust.losses import _deep_utils as _u

__all__ = ["swav_loss", "sela_pseudo_labels", "sela_loss", "p2ot_loss"]


def _check_views(x, name: str, *, min_views: int = 2):
    x = _checks.as_float_array(x, name, ndim=3, shape="[v, n, k]")
    if x.shape[0] < min_views:
        raise ValueError(f"{name} must hold at least {min_views} views on axis 0, got shape "
                         f"{tuple(x.shape)}.")
    return x


def swav_loss(
    scores: Float[Array, "v n k"],
    *,
    temperature: ScalarLike = 0.1,
    epsilon: ScalarLike = 0.05,
    num_steps: int = 3,
    num_assignment_views: int = 2,
    queue: Float[Array, "v m k"] | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """SwAV swapped-prediction loss over ``V`` views.

    ``scores[v, i, k] = ⟨ẑ^v_i, ĉ_k⟩`` are cosine similarities between normalised features and
    normalised prototypes (the caller computes them, so gradients reach both). For each of the
    first ``A = num_assignment_views`` views (the large crops), the codes are
    ``q^a = sg(sinkhorn_knopp(scores[a], epsilon, num_steps))`` (METHODS.md §2.2), and every other
    view predicts them with ``p^v = softmax(scores[v] / τ)``::

        L = (1/A) Σ_a (1/(V−1)) Σ_{v≠a} mean_i [−Σ_k q^a_ik ln p^v_ik]

    With ``V = 2`` this is ``½[ℓ(z_1, q_2) + ℓ(z_2, q_1)]``. The equipartition couples the whole
    global batch (its column step runs over all shards), so the loss is a scalar.

    Args:
      scores: feature-prototype similarities of each view, shape [v, n, k], ``v >= 2``; the
        assignment views come first.
      temperature: softmax temperature ``τ > 0`` of the predictions (paper: 0.1).
      epsilon: Sinkhorn regularisation ``ε > 0`` for the codes (paper: 0.05).
      num_steps: Sinkhorn sweeps (static; paper: 3).
      num_assignment_views: number ``A`` of leading views that produce codes (static; paper:
        2, the two 224-px crops), ``1 <= A <= v``.
      queue: optional similarities of queued features, shape [v', m, k] with ``v' >= A``;
        ``queue[a]`` rows join ``scores[a]`` in the Sinkhorn problem and only the batch rows'
        codes are kept (SwAV's feature queue). No gradient flows into it. Under
        ``axis_name`` each shard passes its own slice of the queue.
      where: optional mask [n]; masked samples get no code mass (zero row weight in Sinkhorn,
        exactly as if removed) and no loss.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count, Sinkhorn's marginals are global and so is the
        mean. Under plain ``jax.jit`` on sharded arrays leave it None and XLA inserts the
        collectives.

    Returns:
      Scalar loss.

    Raises:
      TypeError: if ``scores`` or ``queue`` is not floating point or ``where`` is not boolean.
      ValueError: on wrong shapes, fewer than two views, a bad ``num_assignment_views``, or
        non-positive ``temperature`` / ``epsilon``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import swav_loss
      >>> s = jnp.array([[0.9, -0.9], [-0.9, 0.9], [0.8, -0.8], [-0.8, 0.8]])
      >>> print(round(float(swav_loss(jnp.stack([s, s]))), 4))
      0.0

    References:
      Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised Learning of Visual
      Features by Contrasting Cluster Assignments", NeurIPS 2020,
      https://arxiv.org/abs/2006.09882.
    """
    scores = _check_views(scores, "scores")
    v, n, k = scores.shape
    _u.check_positive_scalar(temperature, "temperature")
    _u.check_positive_scalar(epsilon, "epsilon")
    num_steps = _checks.check_positive_int(num_steps, "num_steps")
    a = _checks.check_positive_int(num_assignment_views, "num_assignment_views")
    if a > v:
        raise ValueError(f"num_assignment_views must be <= the number of views v={v}, got {a}.")
    where = _u.check_where(where, n, "scores[0]")
    dtype = _u.compute_dtype(scores.dtype)
    scores = scores.astype(dtype)
    if queue is not None:
        queue = _checks.as_float_array(queue, "queue", ndim=3, shape="[v, m, k]")
        if queue.shape[0] < a or queue.shape[2] != k:
            raise ValueError(f"queue must have shape [v, m, k] with v >= {a} and k={k}, got "
                             f"{tuple(queue.shape)}.")
        queue = lax.stop_gradient(queue.astype(dtype))
    w = _u.row_weights(where, n, dtype)
    log_p = jax.nn.log_softmax(scores / jnp.asarray(temperature, dtype), axis=2)
    total = jnp.zeros((), dtype)
    for i in range(a):  # A and V are static and small (2 and 8 in SwAV's multi-crop).
        s = lax.stop_gradient(scores[i])
        row_mass = None if where is None else w
        if queue is not None:
            s = jnp.concatenate([queue[i], s], axis=0)
            row_mass = jnp.concatenate([jnp.ones((queue.shape[1],), dtype), w])
        q = sinkhorn_knopp(s, epsilon=epsilon, num_steps=num_steps, row_mass=row_mass,
                           axis_name=axis_name)[-n:]
        q = lax.stop_gradient(q)
        for j in range(v):
            if j != i:
                ce = -jnp.sum(q * log_p[j], axis=1)
                total = total + _u.global_mean(ce, w, axis_name) / (v - 1)
    return total / a


def sela_pseudo_labels(
    logits: Float[Array, "n k"],
    *,
    lam: ScalarLike = 10.0,
    num_steps: int = 100,
    column_mass: Float[Array, " k"] | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, " n"]:
    """SeLa's equipartitioned hard pseudo-labels ``y_i = argmax_k Q_ik``.

    ``Q`` solves ``min −(1/N) Σ_ik q_ik ln p_ik − (1/λ) H(Q)`` over ``Q ∈ U(1/N, 1/K)``: entropic
    OT with cost ``−ln P`` and ``ε = 1/λ``, i.e. ``Q = diag(α) P^λ diag(β)`` (METHODS.md §3.7).
    It is computed with :func:`jaxclust.assign.sinkhorn_knopp` on the scores
    ``log_softmax(logits)`` with ``epsilon = 1/lam`` for a fixed budget of ``num_steps`` sweeps
    (the reference instead stops when ``Σ|β/β_new − 1| < 0.1``; check ``Q``'s column sums if
    unsure the budget suffices). SeLa runs it on the predictions of the *whole dataset*; pass
    them all (sharded with ``axis_name`` if large). Not differentiable (integer output).

    Args:
      logits: clustering-head logits, shape [n, k].
      lam: ``λ > 0``, inverse regularisation (25 on ImageNet, 10 in the CIFAR script).
      num_steps: Sinkhorn sweeps (static).
      column_mass: cluster-size prior [k] summing to one; uniform (equipartition) if None.
      where: optional mask [n]; masked samples take no mass and get label -1.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the marginals are global. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      int32 labels [n] in ``[0, k)``, ``-1`` where masked.

    Raises:
      TypeError: if ``logits`` is not floating point or ``where`` is not boolean.
      ValueError: on wrong shapes, non-finite values or a non-positive ``lam``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import sela_pseudo_labels
      >>> logits = jnp.array([[2.0, 0.0], [1.5, 0.0], [1.0, 0.0], [0.0, 2.0]])
      >>> sela_pseudo_labels(logits).tolist()  # equal-sized clusters
      [0, 0, 1, 1]

    References:
      Asano, Rupprecht, Vedaldi, "Self-labelling via simultaneous clustering and
      representation learning", ICLR 2020, https://arxiv.org/abs/1911.05371.
    """
    logits = _checks.as_float_array(logits, "logits", ndim=2, shape="[n, k]")
    n = logits.shape[0]
    _u.check_positive_scalar(lam, "lam")
    where = _u.check_where(where, n, "logits")
    dtype = _u.compute_dtype(logits.dtype)
    log_p = jax.nn.log_softmax(logits.astype(dtype), axis=1)
    q = sinkhorn_knopp(
        log_p, epsilon=1.0 / jnp.asarray(lam, dtype), num_steps=num_steps,
        row_mass=None if where is None else where.astype(dtype), column_mass=column_mass,
        axis_name=axis_name,
    )
    labels = jnp.argmax(q, axis=1).astype(jnp.int32)
    return labels if where is None else jnp.where(where, labels, -1)


def sela_loss(
    logits: Float[Array, "n k"],
    labels: Int[Array, " n"],
    *,
    where: Bool[Array, " n"] | None = None,
) -> Float[Array, " n"]:
    """Per-example cross-entropy to SeLa pseudo-labels, ``−ln softmax(logits_i)_{y_i}``.

    SeLa trains the network with ordinary cross-entropy on the hard labels of
    :func:`sela_pseudo_labels`, re-optimised a fixed number of times during training.

    Args:
      logits: clustering-head logits, shape [n, k].
      labels: pseudo-labels [n] in ``[0, k)``; ``-1`` (or any value outside) gives loss 0.
      where: optional mask [n]; masked rows get loss 0.

    Returns:
      Per-example losses [n].

    Raises:
      TypeError: if ``logits`` is not floating point, ``labels`` not integer or ``where`` not
        boolean.
      ValueError: on wrong ranks or lengths.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import sela_loss
      >>> print(sela_loss(jnp.zeros((2, 2)), jnp.array([0, -1])).round(4))
      [0.6931 0.    ]

    References:
      Asano, Rupprecht, Vedaldi, ICLR 2020, https://arxiv.org/abs/1911.05371.
    """
    logits = _checks.as_float_array(logits, "logits", ndim=2, shape="[n, k]")
    labels = _checks.as_int_array(labels, "labels")
    _checks.check_same_leading([logits, labels], ["logits", "labels"])
    n, k = logits.shape
    where = _u.check_where(where, n, "logits")
    dtype = _u.compute_dtype(logits.dtype)
    valid = (labels >= 0) & (labels < k)
    if where is not None:
        valid = valid & where
    log_p = jax.nn.log_softmax(logits.astype(dtype), axis=1)
    picked = jnp.take_along_axis(log_p, jnp.clip(labels, 0, k - 1)[:, None], axis=1)[:, 0]
    return jnp.where(valid, -picked, 0.0)


def p2ot_loss(
    logits: Float[Array, "v n k"],
    *,
    rho: ScalarLike,
    epsilon: ScalarLike = 0.1,
    gamma: ScalarLike = 1.0,
    tol: ScalarLike = 1e-6,
    max_steps: int = 1000,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """P²OT loss: every view predicts every other view's partial-OT plan (METHODS.md §3.8).

    For each view ``Q^v = sg(p2ot(logits[v], rho=rho).assignments)`` (§2.6); then::

        L = Σ_{(a, b), a ≠ b} mean_i [−Σ_k Q^b_ik ln softmax(logits[a]_i)_k]

    over ordered view pairs. ``Q`` rows sum to at most one: the fraction of a sample transported
    to real clusters is its confidence, so the ``1 − ρ`` least confident mass is dropped and
    low-confidence samples are down-weighted automatically (P²OT's confidence selection, no
    threshold needed). Ramp ``rho`` with :func:`jaxclust.assign.rho_schedule`. For several
    heads, ``jax.vmap`` over a leading head axis. The plan couples the global batch, so the loss
    is a scalar. There is no ``where``: :func:`jaxclust.assign.p2ot` has no row weights.

    Args:
      logits: clustering-head logits of each view, shape [v, n, k], ``v >= 2``.
      rho: fraction of mass sent to real clusters, in (0, 1] (may be traced).
      epsilon: entropic regularisation ``ε > 0`` (reference: 0.1).
      gamma: KL weight ``γ > 0`` of the cluster-size penalty (reference: 1.0).
      tol: solver tolerance on ``max|Δg|/ε``.
      max_steps: solver iteration cap (static).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over this mesh
        axis; then n is the per-shard count and the plan and the mean are global. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar loss.

    Raises:
      TypeError: if ``logits`` is not floating point.
      ValueError: on wrong shapes, fewer than two views, or invalid solver arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import p2ot_loss
      >>> l = jnp.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
      >>> bool(p2ot_loss(jnp.stack([l, l]), rho=0.5) > 0)
      True

    References:
      Zhang, Ren, He, "P²OT: Progressive Partial Optimal Transport for Deep Imbalanced
      Clustering", ICLR 2024, https://arxiv.org/abs/2401.09266.
    """
    logits = _check_views(logits, "logits")
    v, n, _ = logits.shape
    if axis_name is None:  # explicitly sharded samples: run the axis_name path under shard_map
        by_sample = jnp.transpose(logits, (1, 0, 2))
        explicit = _collectives.explicit_sample_axis(by_sample)
        if explicit is not None:
            return _collectives.map_over_samples(
                lambda x, r, e, g, axis_name: p2ot_loss(
                    jnp.transpose(x, (1, 0, 2)), rho=r, epsilon=e, gamma=g, tol=tol,
                    max_steps=max_steps, axis_name=axis_name),
                explicit, (by_sample,), (jnp.asarray(rho), jnp.asarray(epsilon),
                                         jnp.asarray(gamma)),
                out_specs=jax.sharding.PartitionSpec(),
            )
    dtype = _u.compute_dtype(logits.dtype)
    logits = logits.astype(dtype)
    plans = [
        lax.stop_gradient(p2ot(lax.stop_gradient(logits[b]), rho=rho, epsilon=epsilon,
                               gamma=gamma, tol=tol, max_steps=max_steps,
                               axis_name=axis_name).assignments)
        for b in range(v)
    ]
    log_p = jax.nn.log_softmax(logits, axis=2)
    w = jnp.ones((n,), dtype)
    total = jnp.zeros((), dtype)
    for a in range(v):
        for b in range(v):
            if a != b:
                ce = -jnp.sum(plans[b] * log_p[a], axis=1)
                total = total + _u.global_mean(ce, w, axis_name)
    return total
