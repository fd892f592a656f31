"""Unbalanced and semi-relaxed entropic OT: Sinkhorn with KL-relaxed marginals."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.assign._sinkhorn import (
    _check_cost,
    _check_epsilon,
    _check_loop_args,
    _check_marginal,
    _col_lse,
    _log_plan,
    _row_lse,
    _run_blocks,
    _State,
    _uniform,
    _xlogx,
)


class UnbalancedResult(NamedTuple):
    """Output of :func:`sinkhorn_unbalanced`.

    The plan ``P_ik = exp((f_i + g_k − C_ik)/ε)`` is not stored; build it with
    :func:`jaxclust.assign.plan` or apply it with :func:`jaxclust.assign.apply_plan`.

    Attributes:
      f: row potentials, shape [n].
      g: column potentials, shape [k].
      error: ``max(max|Δf|, max|Δg|)/ε`` over the last iteration, scalar.
      num_steps: iterations run, int32 scalar.
      converged: True when ``error < tol``.
      row_mass: ``P1``, shape [n] (not ``a`` unless ``tau_a = 1``).
      column_mass: ``Pᵀ1``, shape [k] (not ``b`` unless ``tau_b = 1``).
      cost: ``⟨P, C⟩ + ε Σ P(ln P − 1) + ρ_a KL(P1‖a) + ρ_b KL(Pᵀ1‖b)`` with the unnormalised KL
        and ``ρ = ε τ / (1 − τ)`` (terms with ``τ = 1`` are hard constraints and omitted), scalar.
      epsilon: the regularisation used, scalar.
    """

    f: Float[Array, " n"]
    g: Float[Array, " k"]
    error: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    row_mass: Float[Array, " n"]
    column_mass: Float[Array, " k"]
    cost: Float[Array, ""]
    epsilon: Float[Array, ""]


def _check_tau(tau, name, size, side, dtype):
    """``tau`` as an array of shape [size], each entry in (0, 1]."""
    tau = jnp.asarray(tau)
    if tau.ndim not in (0, 1) or (tau.ndim == 1 and tau.shape[0] != size):
        raise ValueError(
            f"{name} must be a scalar or have shape [{side}] = ({size},), got {tuple(tau.shape)}."
        )
    if not jnp.issubdtype(tau.dtype, jnp.floating) and not jnp.issubdtype(tau.dtype, jnp.integer):
        raise TypeError(f"{name} must be a real number or array, got dtype {tau.dtype}.")
    if _checks.is_concrete(tau):
        t = np.asarray(tau)
        if not np.all((t > 0) & (t <= 1)):
            raise ValueError(f"{name} must lie in (0, 1] (1 = exact marginal), got {t.tolist()}.")
    return jnp.broadcast_to(tau.astype(dtype), (size,))


def _rho(tau, epsilon):
    """POT's marginal weight ``ρ = ε τ/(1 − τ)`` for ``τ < 1`` (``τ = 1`` entries get 1, unused)."""
    soft = tau < 1
    return soft, epsilon * tau / jnp.where(soft, 1.0 - tau, 1.0)


def _kl_penalty(mass, ref, tau, epsilon):
    """``Σ ρ (m ln(m/r) − m + r)`` with ``ρ = ε τ/(1 − τ)``; entries with ``τ = 1`` contribute 0.

    A zero reference entry has zero mass (its potential is ``−inf``) and contributes 0.
    """
    soft, rho = _rho(tau, epsilon)
    log_ref = jnp.log(jnp.where(ref > 0, ref, 1.0))
    kl = jnp.where(ref > 0, _xlogx(mass) - mass * log_ref - mass + ref, 0.0)
    return jnp.sum(jnp.where(soft, rho * kl, 0.0))


def _marginal_sensitivity(mass, ref, potential, tau, epsilon):
    """Danskin derivative of the unbalanced value w.r.t. a reference measure, at a fixed plan.

    Soft entries: ``∂/∂r [ρ (m ln(m/r) − m + r)] = ρ (1 − m/r)``; hard entries (``τ = 1``): the
    multiplier, i.e. the potential. Zero-reference entries (potential ``−inf``) get 0.
    """
    soft, rho = _rho(tau, epsilon)
    live = ref > 0
    soft_part = rho * (1.0 - mass / jnp.where(live, ref, 1.0))
    hard_part = jnp.where(jnp.isfinite(potential), potential, 0.0)
    return jnp.where(live, jnp.where(soft, soft_part, hard_part), 0.0)


def _finite_delta(old, new):
    """``max|new − old|`` over entries finite in both (masked columns stay at −inf)."""
    ok = jnp.isfinite(old) & jnp.isfinite(new)
    return jnp.max(jnp.where(ok, jnp.abs(new - old), 0.0), initial=0.0)


def _solve_relaxed(cost, log_a, log_b, epsilon, tau_a, tau_b, *, tol, max_steps, inner_steps,
                   axis_name, init_g=None, columns_only=False):
    """Log-domain Sinkhorn with exponents ``tau_a`` [n] and ``tau_b`` [k] (METHODS.md §2.4).

    Starts from ``g = init_g`` (zeros if None); the stopping error is the change of both
    potentials, or of ``g`` only if ``columns_only``. Returns the final loop state; shared by
    :func:`sinkhorn_unbalanced` and P²OT.
    """

    def step(f, g):
        f = tau_a * epsilon * (log_a - _row_lse(f, g, cost, epsilon))
        g = tau_b * epsilon * (log_b - _col_lse(f, cost, epsilon, axis_name))
        return f, g

    def error(old, new):
        dg = _finite_delta(old[1], new[1])
        if columns_only:
            return dg / epsilon
        df = _collectives.pmax(_finite_delta(old[0], new[0]), axis_name)
        return jnp.maximum(df, dg) / epsilon

    n, k = cost.shape
    init = _State(
        _collectives.pvary(jnp.zeros(n, cost.dtype), axis_name),
        jnp.zeros(k, cost.dtype) if init_g is None else init_g,
        jnp.asarray(jnp.inf, cost.dtype),
        jnp.int32(0),
    )
    return _run_blocks(step, error, init, tol=tol, max_steps=max_steps, inner_steps=inner_steps)


def sinkhorn_unbalanced(
    cost: Float[Array, "n k"],
    a: Float[Array, " n"] | None = None,
    b: Float[Array, " k"] | None = None,
    *,
    epsilon: ScalarLike = 0.05,
    tau_a: ScalarLike | Float[Array, " n"] = 1.0,
    tau_b: ScalarLike | Float[Array, " k"] = 1.0,
    tol: ScalarLike = 1e-3,
    max_steps: int = 2000,
    inner_steps: int = 10,
    axis_name: str | None = None,
) -> UnbalancedResult:
    """Entropic OT with KL-relaxed marginals (unbalanced, or semi-relaxed with one ``tau = 1``).

    Solves ``min_{P ≥ 0} ⟨P, C⟩ + ε Σ P(ln P − 1) + ρ_a KL(P1‖a) + ρ_b KL(Pᵀ1‖b)`` (unnormalised
    KL) by the log-domain updates of Chizat et al. (METHODS.md §2.4)::

        f_i ← τ_a [ε ln a_i − ε LSE_k((g_k − C_ik)/ε)]
        g_k ← τ_b [ε ln b_k − ε LSE_i((f_i − C_ik)/ε)]

    with ``τ = ρ/(ρ + ε) ∈ (0, 1]`` (ott-jax's convention; POT's ``reg_m = ρ = ε τ/(1 − τ)``).
    ``τ = 1`` is a hard marginal, so ``tau_a = 1, tau_b < 1`` is semi-relaxed OT (METHODS.md §2.5):
    every sample ships all its mass while cluster sizes only softly follow ``b``. ``tau_a`` and
    ``tau_b`` may be vectors, one exponent per row or column (used by P²OT). With both equal to 1
    this is :func:`sinkhorn` (but stopped on potentials, not on the marginal error).

    The marginals are not attained exactly, so the loop (a ``lax.while_loop``, checked every
    ``inner_steps`` iterations) stops when ``max(max|Δf|, max|Δg|)/ε < tol`` for one iteration.

    Differentiation: Danskin's theorem for the value only (METHODS.md §2.3 mode 2). ``cost`` has
    the gradient ``P`` w.r.t. ``C``, ``ρ (1 − P1/a)`` w.r.t. ``a`` (``f`` where ``τ_a = 1``) and
    ``ρ (1 − Pᵀ1/b)`` w.r.t. ``b`` (``g`` where ``τ_b = 1``), exact only at convergence (use a
    tight ``tol``); none w.r.t. ``epsilon``, ``tau_a`` or ``tau_b``. The potentials, the plan and
    the masses are the result of a ``while_loop`` and carry no gradient: use the plan as a
    constant target (``stop_gradient``, mode 1), or :func:`sinkhorn` for implicit gradients of
    balanced problems.

    Zero-mass entries: ``a_i = 0`` (``b_k = 0``) gives a zero row (column) of the plan and the
    potential ``−inf``, with finite ``cost`` and gradients.

    From ott-jax: ``sinkhorn_unbalanced(geom.cost_matrix, a, b, epsilon=geom.epsilon,
    tau_a=problem.tau_a, tau_b=problem.tau_b)``.

    Args:
      cost: cost matrix ``C``, shape [n, k].
      a: reference row measure, shape [n], nonnegative, not all zero; uniform ``1/n`` if None.
      b: reference column measure, shape [k], nonnegative, not all zero (any total mass);
        uniform ``1/k`` if None.
      epsilon: entropic regularisation ``ε > 0``.
      tau_a: row exponent(s) in (0, 1], scalar or shape [n]; 1 keeps the rows exact.
      tau_b: column exponent(s) in (0, 1], scalar or shape [k]; 1 keeps the columns exact.
      tol: threshold on the change of the potentials, in units of ``ε``.
      max_steps: maximum number of iterations (static: changing it recompiles).
      inner_steps: iterations between two convergence checks (static).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count (``a``, ``tau_a``, ``f`` and ``row_mass`` are per-shard
        slices) and the column quantities are global. Under plain ``jax.jit`` on sharded arrays
        leave it None: XLA inserts the collectives.

    Returns:
      An :class:`UnbalancedResult`.

    Raises:
      TypeError: if ``cost``, ``a`` or ``b`` is not floating point.
      ValueError: if shapes are wrong, values are not finite, a marginal has a negative entry or
        no positive one,
        ``tau_a``/``tau_b`` are outside (0, 1], ``epsilon <= 0`` or ``tol < 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import sinkhorn_unbalanced
      >>> cost = jnp.array([[0.0, 1.0], [0.0, 1.0]])
      >>> result = sinkhorn_unbalanced(cost, epsilon=0.1, tau_b=0.5, tol=1e-9)
      >>> print(jnp.round(result.row_mass, 6))  # rows exact (tau_a = 1)
      [0.5 0.5]
      >>> bool(result.column_mass[0] > 0.5)  # the cheap column takes more than b_0 = 0.5
      True

    References:
      Chizat, Peyré, Schmitzer & Vialard, "Scaling Algorithms for Unbalanced Transport
      Problems", Math. Comp. 2018, arXiv:1607.05816.
      Peyré & Cuturi, "Computational Optimal Transport", 2019, arXiv:1803.00567 (§10.2).
    """
    cost = _check_cost(cost)
    n, k = cost.shape
    a = _check_marginal(a, "a", n, "n", cost.dtype)
    b = _check_marginal(b, "b", k, "k", cost.dtype)
    max_steps, inner_steps = _check_loop_args(tol, max_steps, inner_steps)
    _check_epsilon(epsilon)
    tau_a = _check_tau(tau_a, "tau_a", n, "n", cost.dtype)
    tau_b = _check_tau(tau_b, "tau_b", k, "k", cost.dtype)
    a = _uniform(n, cost.dtype, axis_name) if a is None else a
    b = jnp.full((k,), 1.0 / k, cost.dtype) if b is None else b
    epsilon = jnp.asarray(epsilon, cost.dtype)
    # The loop carries no gradient (Danskin below): solve on constants.
    s = _solve_relaxed(
        *map(lax.stop_gradient, (cost, jnp.log(a), jnp.log(b), epsilon, tau_a, tau_b)), tol=tol,
        max_steps=max_steps, inner_steps=inner_steps, axis_name=axis_name,
    )
    f, g = lax.stop_gradient(s.f), lax.stop_gradient(s.g)
    eps_sg, tau_a_sg, tau_b_sg = (lax.stop_gradient(x) for x in (epsilon, tau_a, tau_b))
    p = lax.stop_gradient(jnp.exp(_log_plan(f, g, cost, eps_sg)))
    rows = jnp.sum(p, axis=1)
    cols = _collectives.psum(jnp.sum(p, axis=0), axis_name)
    # Σ P (C + ε(ln P − 1)) = Σ P (f + g − ε), from ln P = (f + g − C)/ε.
    f_s, g_s = (jnp.where(jnp.isfinite(x), x, 0.0) for x in (f, g))
    local = (
        jnp.sum(jnp.where(p > 0, p * (f_s[:, None] + g_s[None, :]), 0.0)) - eps_sg * jnp.sum(p)
        + _kl_penalty(rows, a, tau_a_sg, eps_sg)
    )
    value = _collectives.psum(local, axis_name) + _kl_penalty(cols, b, tau_b_sg, eps_sg)
    # Danskin: at the optimum the value's derivative is that of the objective at the fixed plan:
    # P w.r.t. C, and ρ(1 − m/r) (soft) or the potential (hard) w.r.t. a and b. Each term below
    # is zero in the forward pass and carries exactly that gradient.
    da = _marginal_sensitivity(rows, a, f, tau_a_sg, eps_sg)
    db = _marginal_sensitivity(cols, b, g, tau_b_sg, eps_sg)
    tangent = (
        _collectives.psum(jnp.sum(p * (cost - lax.stop_gradient(cost)))
                          + jnp.sum(da * (a - lax.stop_gradient(a))), axis_name)
        + jnp.sum(db * (b - lax.stop_gradient(b)))
    )
    error = lax.stop_gradient(s.error)
    return UnbalancedResult(
        f=f, g=g, error=error, num_steps=s.step, converged=error < tol, row_mass=rows,
        column_mass=cols, cost=lax.stop_gradient(value) + tangent, epsilon=epsilon,
    )
