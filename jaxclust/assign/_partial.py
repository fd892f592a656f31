"""P²OT: progressive partial optimal transport for imbalanced self-labelling."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.assign._sinkhorn import _check_epsilon, _check_loop_args, _log_plan
from jaxclust.assign._unbalanced import _kl_penalty, _solve_relaxed

_RAMPS = ("sigmoid", "linear")


class P2OTResult(NamedTuple):
    """Output of :func:`p2ot`.

    Attributes:
      assignments: pseudo-labels ``Q = N · P[:, :K]`` for the rows of ``logits``, shape [n, k]
        (``N`` counts memory rows too). Row sums lie in [0, 1]: the fraction of the sample sent
        to real clusters, an implicit confidence weight; ``Σ Q ≈ N ρ`` at convergence.
      f: row potentials of the rows of ``logits``, shape [n].
      g: column potentials, shape [k + 1]; the last is the virtual cluster (``-inf`` when
        ``rho = 1``). Pass it back as ``init_g`` to warm-start the next call.
      error: ``max|Δg|/ε`` over the last iteration, scalar.
      num_steps: iterations run, int32 scalar.
      converged: True when ``error < tol``.
      cost: the P²OT objective ``⟨P, C'⟩ + ε Σ P(ln P − 1) + γ KL(P_{:, :K}ᵀ1 ‖ ρ/K)`` of the
        whole problem (memory rows included) at the returned plan, scalar, with Danskin's
        gradient (``P`` w.r.t. ``C'``, hence w.r.t. ``logits`` and ``memory`` through
        ``C = −log_softmax``).
    """

    assignments: Float[Array, "n k"]
    f: Float[Array, " n"]
    g: Float[Array, " k+1"]
    error: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    cost: Float[Array, ""]


def p2ot(
    logits: Float[Array, "n k"],
    *,
    rho: ScalarLike,
    epsilon: ScalarLike = 0.1,
    gamma: ScalarLike = 1.0,
    memory: Float[Array, "m k"] | None = None,
    init_g: Float[Array, " k+1"] | None = None,
    tol: ScalarLike = 1e-6,
    max_steps: int = 1000,
    inner_steps: int = 10,
    axis_name: str | None = None,
) -> P2OTResult:
    """Progressive partial OT pseudo-labels (P²OT, METHODS.md §2.6).

    With ``C = −log_softmax(logits)`` and ``N`` rows, transports a fraction ``rho`` of the mass to
    the ``K`` real clusters and the rest, ``1 − rho``, to a virtual cluster of zero cost::

        C' = [C | 0] (N × (K+1)),  a = 1/N,  b = (ρ/K, …, ρ/K, 1 − ρ)

    Rows are exact; the ``K`` real columns are KL-relaxed with exponent ``τ = γ/(γ + ε)`` (weight
    ``γ``); the virtual column is exact. This is :func:`sinkhorn_unbalanced` on ``C'`` with
    ``tau_a = 1`` and the vector ``tau_b = (τ, …, τ, 1)``, which ott-jax's scalar ``tau_b`` cannot
    express. Log-domain updates, from ``f = 0`` and ``g = init_g`` (zeros if None)::

        f_i = ε ln a_i − ε LSE_{k ≤ K+1}((g_k − C'_ik)/ε)
        g_k = τ [ε ln(ρ/K) − ε LSE_i((f_i − C'_ik)/ε)]            for k ≤ K
        g_{K+1} = ε ln(1 − ρ) − ε LSE_i(f_i/ε)                      (−inf at ρ = 1)

    in a ``lax.while_loop`` stopping when ``max|Δg|/ε < tol`` (the log-domain form of the
    reference's ``‖Δv‖₂ < 1e-6`` on ``v = e^{g/ε}``) or after ``max_steps`` iterations. At
    ``rho = 1`` this is semi-relaxed OT (the reference's "uot" variant). Costs reach
    ``−ln(1e−8) ≈ 18``, i.e. ``e^{−180}`` at ``ε = 0.1``: the log domain is what keeps fp32 finite.
    The reference computes the cost in fp64; here it is computed in the dtype of ``logits``
    (pass float64 with ``jax_enable_x64`` for parity).

    Differentiation: the assignments and potentials carry no gradient (they are a
    ``stop_gradient`` target, as in the paper). The objective value ``cost`` is differentiable
    by Danskin's theorem (METHODS.md §2.3 mode 2) w.r.t. ``logits`` and ``memory``: its gradient
    is that of ``⟨P, C'⟩`` at the fixed optimal plan ``P``, exact only at convergence (use a tight
    ``tol``); none w.r.t. ``rho``, ``epsilon`` or ``gamma``.

    Args:
      logits: clustering-head logits of the current batch, shape [n, k].
      rho: fraction of mass sent to real clusters, in (0, 1] (may be traced: use
        :func:`rho_schedule`).
      epsilon: entropic regularisation ``ε > 0``.
      gamma: weight ``γ > 0`` of the KL penalty on the real-cluster sizes.
      memory: logits of earlier batches, shape [m, k], solved jointly with ``logits`` (rows of
        ``memory`` come first); only the rows of ``logits`` are returned. The reference keeps the
        last 10 batches.
      init_g: column potentials [k + 1] to start from, e.g. the previous call's ``g``.
      tol: threshold on ``max|Δg|/ε``.
      max_steps: maximum number of iterations (static: changing it recompiles).
      inner_steps: iterations between two convergence checks (static).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` (and ``m``) are per-shard counts, ``N`` is global and ``g`` is replicated.
        Under plain ``jax.jit`` on sharded arrays leave it None: XLA inserts the collectives.

    Returns:
      A :class:`P2OTResult`.

    Raises:
      TypeError: if ``logits`` or ``memory`` is not floating point.
      ValueError: if shapes are wrong, values are not finite, ``rho`` is not in (0, 1],
        ``epsilon`` or ``gamma`` is not positive.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import p2ot
      >>> logits = jnp.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 0.0]])
      >>> q = p2ot(logits, rho=0.5, tol=1e-9).assignments
      >>> print(round(float(q.sum()), 4))  # N · ρ
      2.0
      >>> bool(q[3].sum() < q[0].sum())  # the ambiguous sample is the least confident
      True

    References:
      Zhang, Ren & He, "P²OT: Progressive Partial Optimal Transport for Deep Imbalanced
      Clustering", ICLR 2024, arXiv:2401.09266.
      Chizat, Peyré, Schmitzer & Vialard, "Scaling Algorithms for Unbalanced Transport
      Problems", Math. Comp. 2018, arXiv:1607.05816.
    """
    logits = _checks.as_float_array(logits, "logits", ndim=2, shape="[n, k]")
    n, k = logits.shape
    if memory is not None:
        memory = _checks.as_float_array(memory, "memory", ndim=2, shape="[m, k]")
        if memory.shape[1] != k:
            raise ValueError(
                f"memory must have shape [m, k] with k={k} (as logits), got {tuple(memory.shape)}."
            )
        logits_all = jnp.concatenate([memory.astype(logits.dtype), logits], axis=0)
    else:
        logits_all = logits
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    if init_g is not None:
        init_g = _checks.as_float_array(init_g, "init_g", ndim=1, shape="[k + 1]", finite=False)
        if init_g.shape[0] != k + 1:
            raise ValueError(f"init_g must have shape [k + 1] = ({k + 1},), got {init_g.shape}.")
        init_g = init_g.astype(dtype)
    max_steps, inner_steps = _check_loop_args(tol, max_steps, inner_steps)
    _check_epsilon(epsilon)
    for value, name in ((rho, "rho"), (gamma, "gamma")):
        if _checks.is_concrete(value):
            v = np.asarray(value)
            ok = v.ndim == 0 and np.isfinite(v) and v > 0 and (name != "rho" or v <= 1)
            if not ok:
                bound = "in (0, 1]" if name == "rho" else "a finite number > 0"
                raise ValueError(f"{name} must be {bound}, got {v.tolist()}.")

    epsilon = jnp.asarray(epsilon, dtype)
    rho = jnp.asarray(rho, dtype)
    gamma = jnp.asarray(gamma, dtype)
    cost = -jax.nn.log_softmax(logits_all.astype(dtype), axis=1)
    cost = jnp.concatenate([cost, jnp.zeros((cost.shape[0], 1), dtype)], axis=1)
    total = _collectives.psum(jnp.asarray(cost.shape[0], dtype), axis_name)
    log_a = jnp.full((cost.shape[0],), -jnp.log(total), dtype)
    # ln b = (ln(ρ/K), …, ln(1 − ρ)); at ρ = 1 the virtual column gets −inf and carries no mass.
    log_b = jnp.concatenate([
        jnp.broadcast_to(jnp.log(rho / k), (k,)),
        jnp.log1p(-rho)[None],
    ])
    tau = gamma / (gamma + epsilon)
    tau_b = jnp.concatenate([jnp.broadcast_to(tau, (k,)), jnp.ones((1,), dtype)])
    tau_a = jnp.ones((cost.shape[0],), dtype)
    s = _solve_relaxed(
        lax.stop_gradient(cost), log_a, log_b, epsilon, tau_a, tau_b, tol=tol, max_steps=max_steps,
        inner_steps=inner_steps, axis_name=axis_name, init_g=init_g, columns_only=True,
    )
    f_all, g = lax.stop_gradient(s.f), lax.stop_gradient(s.g)
    f = f_all[-n:]
    q = total * jnp.exp(_log_plan(f, g[:k], lax.stop_gradient(cost[-n:, :k]), epsilon))
    error = lax.stop_gradient(s.error)
    value = _objective(f_all, g, cost, jnp.exp(log_b), tau_b, epsilon, axis_name)
    return P2OTResult(
        assignments=lax.stop_gradient(q), f=f, g=g, error=error, num_steps=s.step,
        converged=error < tol, cost=value,
    )


def _objective(f, g, cost, b, tau_b, epsilon, axis_name):
    """P²OT value at the plan of ``(f, g)`` with Danskin's gradient ``P`` w.r.t. ``cost``.

    ``Σ P (C' + ε(ln P − 1)) = Σ P (f + g − ε)`` (from ``ln P = (f + g − C')/ε``) plus the KL
    penalty on the real columns (``τ = 1`` on the virtual column omits it). Rows are exact and
    ``f``, ``g`` and the plan are constants; the term ``⟨P, C' − sg(C')⟩`` is zero forward and
    carries the gradient.
    """
    epsilon, tau_b, b = (lax.stop_gradient(x) for x in (epsilon, tau_b, b))
    p = lax.stop_gradient(jnp.exp(_log_plan(f, g, cost, epsilon)))
    g_s = jnp.where(jnp.isfinite(g), g, 0.0)  # the virtual column is −inf (and empty) at ρ = 1
    local = jnp.sum(p * (f[:, None] + g_s[None, :])) - epsilon * jnp.sum(p)
    cols = _collectives.psum(jnp.sum(p, axis=0), axis_name)
    value = _collectives.psum(local, axis_name) + _kl_penalty(cols, b, tau_b, epsilon)
    tangent = _collectives.psum(jnp.sum(p * (cost - lax.stop_gradient(cost))), axis_name)
    return lax.stop_gradient(value) + tangent


def rho_schedule(
    step: Int[Array, ""] | int,
    total_steps: int,
    *,
    rho_0: ScalarLike = 0.1,
    rho_max: ScalarLike = 1.0,
    ramp: str = "sigmoid",
) -> Float[Array, ""]:
    """P²OT's transported-mass schedule ``ρ_t = ρ_0 + (ρ_max − ρ_0) r(t / T)``.

    ``ramp="sigmoid"`` is the paper's ``r(s) = exp(−5 (1 − s)²)``; ``"linear"`` is ``r(s) = s``.
    ``s`` is clipped to [0, 1], so steps past ``total_steps`` keep ``ρ_max``. Jit-able: ``step``
    may be a traced training-step counter.

    Args:
      step: current training iteration ``t`` (int or traced int scalar).
      total_steps: total training iterations ``T`` (> 0).
      rho_0: initial fraction (paper: 0.1).
      rho_max: final fraction (paper: 1.0).
      ramp: ``"sigmoid"`` or ``"linear"`` (static).

    Returns:
      ``ρ_t``, float scalar.

    Raises:
      ValueError: if ``ramp`` is unknown or ``total_steps`` is not positive.

    Examples:
      >>> from jaxclust.assign import rho_schedule
      >>> print(round(float(rho_schedule(0, 100)), 4), float(rho_schedule(100, 100)))
      0.1061 1.0
      >>> print(float(rho_schedule(50, 100, ramp="linear")))
      0.55
    """
    _checks.check_choice(ramp, "ramp", _RAMPS)
    total_steps = _checks.check_positive_int(total_steps, "total_steps")
    dtype = jnp.promote_types(jnp.asarray(rho_0).dtype, jnp.float32)
    s = jnp.clip(jnp.asarray(step, dtype) / total_steps, 0.0, 1.0)
    r = jnp.exp(-5.0 * (1.0 - s) ** 2) if ramp == "sigmoid" else s
    return rho_0 + (rho_max - rho_0) * r
