"""Converged log-domain Sinkhorn for balanced entropic optimal transport."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike


class SinkhornResult(NamedTuple):
    """Output of :func:`sinkhorn`.

    The plan is never stored: ``P_ik = exp((f_i + g_k − C_ik)/ε)``; build it with :func:`plan`
    or apply it with :func:`apply_plan`.

    Attributes:
      f: row potentials, shape [n] (the per-shard rows inside ``shard_map``).
      g: column potentials, shape [k]. ``(f + κ, g − κ)`` describes the same plan (gauge).
      error: ``‖P1 − a‖₁`` at the returned potentials, scalar (columns are exact after the last
        ``g``-update).
      num_steps: Sinkhorn iterations run (one ``f``- and one ``g``-update each), int32 scalar.
      converged: True when ``error < tol``; False when ``max_steps`` was reached first or the
        iterates are not finite.
      cost: the primal value ``⟨P, C⟩ − ε H(P)`` with ``H(P) = −Σ P ln P`` at the returned plan,
        scalar. Differentiable by Danskin's theorem: ``∂/∂C = P``, ``∂/∂a = f``, ``∂/∂b = g``,
        ``∂/∂ε = −H(P)`` (exact only at convergence; use a tight ``tol``).
      epsilon: the regularisation used, scalar (kept so the plan can be rebuilt).
    """

    f: Float[Array, " n"]
    g: Float[Array, " k"]
    error: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    cost: Float[Array, ""]
    epsilon: Float[Array, ""]


class _State(NamedTuple):
    f: Float[Array, " n"]
    g: Float[Array, " k"]
    error: Float[Array, ""]
    step: Int[Array, ""]


# ---------------------------------------------------------------------------------------------
# Shared pieces (also used by _unbalanced.py and _partial.py).


_compute_dtype = _checks.compute_dtype


def _row_lse(f, g, cost, epsilon):
    """``LSE_k((g_k − C_ik)/ε)``, shape [n] (f unused, kept for symmetry)."""
    del f
    return jax.nn.logsumexp((g[None, :] - cost) / epsilon, axis=1)


def _col_lse(f, cost, epsilon, axis_name):
    """``LSE_i((f_i − C_ik)/ε)`` over all samples (across shards), shape [k]."""
    return _collectives.logsumexp_over_samples((f[:, None] - cost) / epsilon, axis_name)


def _log_plan(f, g, cost, epsilon):
    return (f[:, None] + g[None, :] - cost) / epsilon


def _xlogx(x):
    return jnp.where(x > 0, x * jnp.log(jnp.where(x > 0, x, 1.0)), 0.0)


def _check_cost(cost):
    cost = _checks.as_float_array(cost, "cost", ndim=2, shape="[n, k]")
    return cost.astype(_compute_dtype(cost.dtype))


def _check_marginal(x, name, size, side, dtype, *, positive=True):
    """A marginal of shape [size] (validated) or None; ``side`` names its dimension."""
    if x is None:
        return None
    x = _checks.as_float_array(x, name, ndim=1, shape=f"[{side}]")
    if x.shape[0] != size:
        raise ValueError(f"{name} must have shape [{side}] = ({size},), got {tuple(x.shape)}.")
    if positive and _checks.is_concrete(x) and not (np.asarray(x) > 0).all():
        raise ValueError(f"{name} must be strictly positive; got min {float(np.min(x))}.")
    return x.astype(dtype)


def _check_epsilon(epsilon):
    if _checks.is_concrete(epsilon):
        e = np.asarray(epsilon)
        if e.ndim != 0:
            raise ValueError(f"epsilon must be a scalar, got shape {e.shape}.")
        if not np.isfinite(e) or e <= 0:
            raise ValueError(f"epsilon must be a finite number > 0, got {e.item()}.")


def _check_loop_args(tol, max_steps, inner_steps):
    _checks.check_nonnegative_scalar(tol, "tol")
    max_steps = _checks.check_positive_int(max_steps, "max_steps")
    inner_steps = _checks.check_positive_int(inner_steps, "inner_steps")
    return max_steps, inner_steps


def _uniform(n, dtype, axis_name):
    """Uniform marginal ``1/n_global`` over the (possibly sharded) sample axis."""
    total = _collectives.psum(jnp.asarray(n, dtype), axis_name)
    return jnp.full((n,), 1.0, dtype) / total


def _run_blocks(step_fn, error_fn, init, *, tol, max_steps, inner_steps):
    """``while error >= tol and step < max_steps``: ``inner_steps`` updates, then the error.

    ``step_fn(f, g) -> (f, g)`` is one Gauss–Seidel sweep; ``error_fn(old, new)`` measures the
    stopping criterion from the potentials before and after the last sweep of a block. The last
    block is shortened so that exactly ``max_steps`` sweeps run at most.
    """

    def cond(s: _State):
        return (s.step < max_steps) & ~(s.error < tol)

    def body(s: _State) -> _State:
        todo = jnp.minimum(inner_steps - 1, max_steps - s.step - 1)
        f, g = lax.fori_loop(0, todo, lambda _, fg: step_fn(*fg), (s.f, s.g))
        new_f, new_g = step_fn(f, g)
        error = error_fn((f, g), (new_f, new_g))
        return _State(new_f, new_g, error, s.step + todo + 1)

    return lax.while_loop(cond, body, init)


# ---------------------------------------------------------------------------------------------
# Balanced solver with implicit differentiation.


def _forward(cost, a, b, epsilon, tol, max_steps, inner_steps, axis_name):
    log_a, log_b = jnp.log(a), jnp.log(b)
    # The loop runs on scaled potentials f/ε, g/ε and C/ε (one [n, k] buffer computed once), so
    # each update is one fused subtract + logsumexp with no per-entry division.
    scaled = cost / epsilon

    def step(f, g):  # METHODS.md §2.1, Gauss–Seidel: the g-update sees the new f
        f = log_a - jax.nn.logsumexp(g[None, :] - scaled, axis=1)
        g = log_b - _collectives.logsumexp_over_samples(f[:, None] - scaled, axis_name)
        return f, g

    def error(old, new):
        f, g = new
        rows = jnp.exp(f + jax.nn.logsumexp(g[None, :] - scaled, axis=1))
        return _collectives.psum(jnp.sum(jnp.abs(rows - a)), axis_name)

    n, k = cost.shape
    init = _State(
        _collectives.pvary(jnp.zeros(n, cost.dtype), axis_name),
        jnp.zeros(k, cost.dtype),
        jnp.asarray(jnp.inf, cost.dtype),
        jnp.int32(0),
    )
    s = _run_blocks(step, error, init, tol=tol, max_steps=max_steps, inner_steps=inner_steps)
    return epsilon * s.f, epsilon * s.g, s.error, s.step


def _residual(f, g, cost, a, b, epsilon, axis_name):
    """Optimality conditions ``F = (P1 − a, Pᵀ1 − b)`` (METHODS.md §2.3)."""
    p = jnp.exp(_log_plan(f, g, cost, epsilon))
    return jnp.sum(p, axis=1) - a, _collectives.psum(jnp.sum(p, axis=0), axis_name) - b


def _make_solver(max_steps, inner_steps, axis_name, ridge):
    @jax.custom_vjp
    def solve(cost, a, b, epsilon, tol):
        return _forward(cost, a, b, epsilon, tol, max_steps, inner_steps, axis_name)

    def fwd(cost, a, b, epsilon, tol):
        out = _forward(cost, a, b, epsilon, tol, max_steps, inner_steps, axis_name)
        return out, (out[0], out[1], cost, a, b, epsilon, tol)

    def bwd(res, cotangents):
        f, g, cost, a, b, epsilon, tol = res
        f_bar, g_bar = cotangents[0], cotangents[1]
        # H = ε ∂F/∂(f, g) = [[diag(r), P], [Pᵀ, diag(c)]]. Eliminate the [n] block (diagonal)
        # and solve the k×k Schur complement S = diag(c) − Pᵀ diag(1/r) P densely. S is singular
        # along 1 (the gauge (1, −1) of the potentials): a ridge on 11ᵀ/k pins that direction.
        p = jnp.exp(_log_plan(f, g, cost, epsilon))
        r = jnp.sum(p, axis=1)
        c = _collectives.psum(jnp.sum(p, axis=0), axis_name)
        pr = p / r[:, None]
        k = g.shape[0]
        schur = jnp.diag(c) - _collectives.psum(pr.T @ p, axis_name)
        schur = schur + ridge * jnp.ones((k, k), schur.dtype) / k
        rhs = g_bar - _collectives.psum(pr.T @ f_bar, axis_name)
        w_g = jnp.linalg.solve(schur, rhs)
        w_f = (f_bar - p @ w_g) / r
        # θ̄ = −(∂F/∂θ)ᵀ (∂F/∂z)⁻ᵀ z̄ = −(∂F/∂θ)ᵀ (ε w).
        _, vjp = jax.vjp(
            lambda cost, a, b, eps: _residual(f, g, cost, a, b, eps, axis_name), cost, a, b, epsilon
        )
        return (*vjp((-epsilon * w_f, -epsilon * w_g)), jnp.zeros_like(tol))

    solve.defvjp(fwd, bwd)
    return solve


def _primal_value(f, g, cost, a, b, epsilon, axis_name):
    """``⟨P, C⟩ − εH(P)`` forward, with Danskin's gradient (``P``, ``f``, ``g``, ``−H``) backward.

    Forward: ``Σ P_ik (C_ik + ε ln P_ik) = Σ P_ik (f_i + g_k)``. Backward: the dual
    ``⟨f, a⟩ + ⟨g, b⟩ − ε Σ P + ε`` at stop-gradient potentials, whose gradients are the
    envelope-theorem ones; the primal is added as a constant so the forward value is primal.
    """
    f, g = lax.stop_gradient(f), lax.stop_gradient(g)
    p = jnp.exp(_log_plan(f, g, cost, epsilon))
    dual = (
        _collectives.psum(jnp.sum(f * a) - epsilon * jnp.sum(p), axis_name)
        + jnp.sum(g * b)
        + epsilon
    )
    primal = _collectives.psum(jnp.sum(p * (f[:, None] + g[None, :])), axis_name)
    return lax.stop_gradient(primal - dual) + dual


def sinkhorn(
    cost: Float[Array, "n k"],
    a: Float[Array, " n"] | None = None,
    b: Float[Array, " k"] | None = None,
    *,
    epsilon: ScalarLike = 0.05,
    tol: ScalarLike = 1e-3,
    max_steps: int = 2000,
    inner_steps: int = 10,
    ridge: float = 1e-10,
    axis_name: str | None = None,
) -> SinkhornResult:
    """Entropic optimal transport by log-domain Sinkhorn iterations, run to convergence.

    Solves ``min_{P ≥ 0, P1 = a, Pᵀ1 = b} ⟨P, C⟩ − ε H(P)`` with ``H(P) = −Σ P ln P``, whose
    solution is ``P_ik = exp((f_i + g_k − C_ik)/ε)``. From ``f = g = 0`` each iteration applies the
    Gauss–Seidel updates (METHODS.md §2.1)::

        f_i ← ε ln a_i − ε LSE_k((g_k − C_ik)/ε)
        g_k ← ε ln b_k − ε LSE_i((f_i − C_ik)/ε)

    in a ``lax.while_loop`` that measures ``‖P1 − a‖₁`` every ``inner_steps`` iterations and stops
    when it is below ``tol`` or after ``max_steps`` iterations (ott-jax's defaults and criterion).
    Everything stays in the log domain, so no ``exp(−C/ε)`` underflows whatever ``ε`` and the
    cost scale. Peak memory is ``O(n·k)`` temporaries; the plan is not returned.

    Differentiation: ``f`` and ``g`` (and hence :func:`plan` / :func:`apply_plan`) are
    differentiated implicitly (``jax.custom_vjp``) through the optimality conditions
    ``P1 = a, Pᵀ1 = b``: the backward pass eliminates the diagonal ``[n]`` block and solves the
    ``k × k`` Schur complement densely (``O(n·k² + k³)``, one solve per VJP, memory independent of
    the iteration count), with ``ridge`` on ``11ᵀ/k`` removing the gauge null direction. ``cost``
    (the value) uses Danskin's theorem instead (stop-gradient potentials, gradient ``P`` w.r.t.
    ``C``). Both are exact only at the fixed point: use a tight ``tol`` when differentiating.
    Gradients of gauge-dependent quantities (``f`` or ``g`` alone) are defined up to the gauge.

    To solve an ott-jax problem: ``sinkhorn(geom.cost_matrix, a, b, epsilon=geom.epsilon)``.

    Args:
      cost: cost matrix ``C``, shape [n, k]; lower is better (pass ``-scores`` for similarities).
        Half precision is computed in float32.
      a: row marginal, shape [n], strictly positive; uniform ``1/n`` if None.
      b: column marginal, shape [k], strictly positive, same total mass as ``a``; uniform ``1/k``
        if None.
      epsilon: absolute entropic regularisation ``ε > 0`` (for ott-jax's relative default use
        ``0.05 * jnp.std(cost)``).
      tol: threshold on ``‖P1 − a‖₁``.
      max_steps: maximum number of iterations (static: changing it recompiles).
      inner_steps: iterations between two error evaluations (static).
      ridge: regulariser of the gauge direction in the implicit backward pass (static).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count, ``a`` the per-shard slice of a global marginal, and
        ``g``, ``error`` and ``cost`` are global. Under plain ``jax.jit`` on sharded arrays leave it
        None: XLA inserts the collectives.

    Returns:
      A :class:`SinkhornResult`.

    Raises:
      TypeError: if ``cost``, ``a`` or ``b`` is not floating point, or ``max_steps`` /
        ``inner_steps`` is not an int.
      ValueError: if shapes are wrong, values are not finite, marginals are not positive or have
        different masses, ``epsilon <= 0`` or ``tol < 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import sinkhorn, plan
      >>> cost = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> result = sinkhorn(cost, epsilon=0.01)
      >>> bool(result.converged)
      True
      >>> print(jnp.round(plan(result, cost), 3))
      [[0.5 0. ]
       [0.  0.5]]

    References:
      Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013,
      arXiv:1306.0895.
      Peyré & Cuturi, "Computational Optimal Transport", 2019, arXiv:1803.00567 (§4.4, log domain).
      Luise et al., "Differential Properties of Sinkhorn Approximation for Learning with
      Wasserstein Distance", NeurIPS 2018, arXiv:1805.11897.
      Eisenberger et al., "A Unified Framework for Implicit Sinkhorn Differentiation", CVPR 2022,
      arXiv:2205.06688.
    """
    a_in, b_in = a, b  # as passed: concrete unless traced by the caller
    cost = _check_cost(cost)
    n, k = cost.shape
    a = _check_marginal(a, "a", n, "n", cost.dtype)
    b = _check_marginal(b, "b", k, "k", cost.dtype)
    max_steps, inner_steps = _check_loop_args(tol, max_steps, inner_steps)
    _check_epsilon(epsilon)
    given = [x for x in (a_in, b_in) if x is not None]
    if axis_name is None and given and all(_checks.is_concrete(x) and jnp.ndim(x) == 1
                                           for x in given):
        # A marginal left as None is uniform with mass 1.
        mass_a = 1.0 if a_in is None else float(np.sum(np.asarray(a_in)))
        mass_b = 1.0 if b_in is None else float(np.sum(np.asarray(b_in)))
        if abs(mass_a - mass_b) > 1e-6 * max(mass_a, mass_b):
            raise ValueError(
                "a and b must have the same total mass for balanced OT, got "
                f"sum(a)={mass_a:.6g} and sum(b)={mass_b:.6g}; use sinkhorn_unbalanced for "
                "different masses."
            )
    a = _uniform(n, cost.dtype, axis_name) if a is None else a
    b = jnp.full((k,), 1.0 / k, cost.dtype) if b is None else b
    epsilon = jnp.asarray(epsilon, cost.dtype)
    tol = jnp.asarray(tol, cost.dtype)
    solve = _make_solver(max_steps, inner_steps, axis_name, ridge)
    f, g, error, steps = solve(cost, a, b, epsilon, tol)
    value = _primal_value(f, g, cost, a, b, epsilon, axis_name)
    error, steps = lax.stop_gradient(error), lax.stop_gradient(steps)
    return SinkhornResult(
        f=f, g=g, error=error, num_steps=steps, converged=error < tol, cost=value,
        epsilon=epsilon,
    )


def plan(result: SinkhornResult, cost: Float[Array, "n k"]) -> Float[Array, "n k"]:
    """The dense transport plan ``P_ik = exp((f_i + g_k − C_ik)/ε)`` of a Sinkhorn result.

    Builds an [n, k] array; prefer :func:`apply_plan` when only ``P @ v`` or ``Pᵀ @ u`` is needed.
    Also accepts the results of :func:`sinkhorn_unbalanced` (same plan formula; its potentials
    carry no gradient, so differentiate such a plan only as a ``stop_gradient`` target).

    Args:
      result: the output of :func:`sinkhorn` (or :func:`sinkhorn_unbalanced`) for this ``cost``.
      cost: the cost matrix that was solved, shape [n, k].

    Returns:
      The plan, shape [n, k]; differentiable (implicitly through the potentials).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import sinkhorn, plan
      >>> cost = jnp.zeros((4, 2))
      >>> print(plan(sinkhorn(cost), cost).sum(axis=0))
      [0.5 0.5]
    """
    cost = _check_cost(cost)
    return jnp.exp(_log_plan(result.f, result.g, cost, result.epsilon))


def apply_plan(
    result: SinkhornResult,
    cost: Float[Array, "n k"],
    vec: Float[Array, "k *d"] | Float[Array, "n *d"],
    *,
    transpose: bool = False,
    axis_name: str | None = None,
) -> Float[Array, "n *d"] | Float[Array, "k *d"]:
    """``P @ vec`` (or ``Pᵀ @ vec``) without returning the plan.

    The plan's entries are formed on the fly from the potentials (as ``exp`` of the log-plan,
    which XLA fuses into the contraction), so peak memory is that of one [n, k] temporary.

    Args:
      result: the output of :func:`sinkhorn` for this ``cost``.
      cost: the cost matrix that was solved, shape [n, k].
      vec: shape [k] or [k, d] (``P @ vec``), or [n] or [n, d] when ``transpose``.
      transpose: compute ``Pᵀ @ vec`` (a sum over samples) instead (static).
      axis_name: with ``transpose`` inside ``jax.shard_map``, the mesh axis over which samples are
        split (the sum is then global); ignored otherwise.

    Returns:
      ``P @ vec``, shape [n] / [n, d], or ``Pᵀ @ vec``, shape [k] / [k, d].

    Raises:
      ValueError: if ``vec``'s leading dimension does not match.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.assign import sinkhorn, apply_plan
      >>> cost = jnp.zeros((4, 2))
      >>> print(apply_plan(sinkhorn(cost), cost, jnp.array([1.0, 3.0])))
      [0.5 0.5 0.5 0.5]
    """
    cost = _check_cost(cost)
    vec = _checks.as_float_array(vec, "vec")
    expected = cost.shape[0] if transpose else cost.shape[1]
    side = "n" if transpose else "k"
    if vec.ndim not in (1, 2) or vec.shape[0] != expected:
        raise ValueError(
            f"vec must have shape [{side}] or [{side}, d] with {side}={expected}, got "
            f"{tuple(vec.shape)}."
        )
    p = jnp.exp(_log_plan(result.f, result.g, cost, result.epsilon))
    if transpose:
        return _collectives.psum(p.T @ vec.astype(p.dtype), axis_name)
    return p @ vec.astype(p.dtype)
