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
      f: row potentials, shape [n] (the per-shard rows inside ``shard_map``); ``−inf`` where
        ``a_i = 0``.
      g: column potentials, shape [k], ``−inf`` where ``b_k = 0``. ``(f + κ, g − κ)`` describes
        the same plan (gauge).
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


def _finite_or_zero(x):
    return jnp.where(jnp.isfinite(x), x, 0.0)


def _log_plan(f, g, cost, epsilon):
    """``(f_i + g_k − C_ik)/ε``, and ``−inf`` where a potential is ``−inf`` (a zero-mass row or
    column) with no NaN in the value or its gradient (the ``−inf`` entries are constants)."""
    keep = jnp.isfinite(f)[:, None] & jnp.isfinite(g)[None, :]
    z = (_finite_or_zero(f)[:, None] + _finite_or_zero(g)[None, :] - cost) / epsilon
    return jnp.where(keep, z, -jnp.inf)


def _xlogx(x):
    return jnp.where(x > 0, x * jnp.log(jnp.where(x > 0, x, 1.0)), 0.0)


def _check_cost(cost):
    cost = _checks.as_float_array(cost, "cost", ndim=2, shape="[n, k]")
    return cost.astype(_compute_dtype(cost.dtype))


def _check_marginal(x, name, size, side, dtype):
    """A marginal of shape [size] (validated: ``≥ 0``, not all zero) or None."""
    if x is None:
        return None
    x = _checks.as_float_array(x, name, ndim=1, shape=f"[{side}]")
    if x.shape[0] != size:
        raise ValueError(f"{name} must have shape [{side}] = ({size},), got {tuple(x.shape)}.")
    if _checks.is_concrete(x):
        v = np.asarray(x)
        if (v < 0).any():
            raise ValueError(f"{name} must be nonnegative; got min {float(np.min(v))}.")
        if not (v > 0).any():
            raise ValueError(f"{name} must have at least one positive entry; got all zeros.")
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

# One-exponential sweeps are used while the potentials moved by less than this many units of ε in
# the previous half-step: every exponential is then bounded by e^{±30}, far from the float32
# range (e^{±88}), and the sums are checked afterwards anyway.
_FAST_BOUND = 30.0
# Rows per cache block on CPU: about 2^20 plan entries (4 MiB in float32), the best of 2^16–2^23
# measured on the benchmark's 4096² problem.
_BLOCK_ENTRIES = 2**20


def _lse(z, axis):
    """``LSE`` over ``axis`` that returns ``-inf`` (not NaN) where every entry is ``-inf``."""
    m = jnp.max(z, axis=axis, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return jnp.squeeze(m, axis) + jnp.log(jnp.sum(jnp.exp(z - m), axis=axis))


def _block_rows(cost):
    """Rows per block of the fused sweep (static): cache-sized on CPU, everything elsewhere.

    Explicitly sharded inputs take one block: padding or splitting a sharded axis needs sharding
    annotations that the partitioner would otherwise infer (use ``axis_name`` under
    ``shard_map`` for per-shard blocks).
    """
    n, k = cost.shape
    spec = getattr(getattr(jax.typeof(cost), "sharding", None), "spec", None)
    if jax.default_backend() != "cpu" or (spec and any(s is not None for s in spec)):
        return n
    rows = max(1, min(n, _BLOCK_ENTRIES // max(k, 1)))
    blocks = -(-n // rows)
    return -(-n // blocks)  # spread the rows evenly: at most blocks − 1 padded rows


class _Sweep(NamedTuple):
    f: Float[Array, "blocks rows"]  # ε-scaled, the rows in cache blocks
    g: Float[Array, " k"]
    row_error: Float[Array, ""]  # ‖P1 − a‖₁ of the potentials *before* the sweep
    bound: Float[Array, ""]  # max |Δg|/ε of the sweep's g-update (ε-scaled units)


def _sweeps(scaled, a, b, axis_name):
    """The Gauss–Seidel sweep of METHODS.md §2.1 on ε-scaled potentials, two ways.

    ``scaled`` is ``C/ε`` reshaped to [blocks, rows, k] (padded rows have ``a = 0``). Returns
    ``sweep(f, g, bound) -> _Sweep`` that picks, with ``lax.cond`` on replicated scalars:

    * the exact sweep, two passes over ``C``: ``f = ln a − LSE_k(g − C/ε)`` then
      ``g = ln b − LSE_i(f − C/ε)``, each LSE stabilised by its own maximum;
    * the fused sweep, one pass and one exponential per entry, when ``bound`` (the largest change
      of ``g`` in the previous sweep) is below ``_FAST_BOUND``. With ``σ_i = ln a_i − f_i`` (the
      previous row LSE), ``E_ik = exp(g_k − C_ik/ε − σ_i) = (P_ik / a_i) e^{Δg_k}`` lies in
      ``[0, e^{bound}]``; its row sums ``s_i`` give ``f ← f − ln s`` (the exact update, without a
      max pass) and the row error ``Σ a_i |s_i − 1|`` of the incoming plan for free; the new
      plan's columns are ``Eᵀ(a/s)``, a matrix–vector product on the block still in cache, which
      give ``g ← g − ln(Eᵀ(a/s)/b)`` without a second exponential. If a column sum is too small
      to be accurate the ``g``-update is redone exactly.

    Both compute the same iterates up to rounding (the fixed point and the iterates do not
    depend on the path).
    """
    blocks, rows, k = scaled.shape
    dtype = scaled.dtype
    a_blk = a.reshape(blocks, rows)
    log_a, log_b = jnp.log(a_blk), jnp.log(b)
    pos_a, pos_b = a_blk > 0, b > 0
    # Column sums below this cannot be trusted to float precision (underflowed terms).
    tiny = jnp.finfo(dtype).tiny / jnp.finfo(dtype).eps * rows * blocks

    def col_exact(f):
        return jnp.where(pos_b, log_b - _collectives.logsumexp_over_samples(
            (f[:, :, None] - scaled).reshape(blocks * rows, k), axis_name), -jnp.inf)

    def exact(f, g):
        lse = _lse(g[None, None, :] - scaled, axis=2)
        new_f = jnp.where(pos_a, log_a - lse, -jnp.inf)
        rows_mass = jnp.where(pos_a, jnp.exp(jnp.minimum(f + lse, 80.0)), 0.0)
        error = _collectives.psum(jnp.sum(jnp.abs(rows_mass - a_blk)), axis_name)
        return new_f, col_exact(new_f), error

    def fused(f, g):
        sigma = jnp.where(pos_a, log_a - f, jnp.inf)  # zero-mass rows: E = 0

        def block(acc, xs):
            c_blk, sigma_blk, a_row = xs
            e = jnp.exp(g[None, :] - c_blk - sigma_blk[:, None])
            s = jnp.sum(e, axis=1)
            w = jnp.where(a_row > 0, a_row / jnp.where(a_row > 0, s, 1.0), 0.0)
            return acc + jnp.sum(w[:, None] * e, axis=0), s

        if blocks == 1:
            cols, s = block(jnp.zeros((k,), dtype), (scaled[0], sigma[0], a_blk[0]))
            s = s[None]
        else:
            cols, s = lax.scan(block, jnp.zeros((k,), dtype), (scaled, sigma, a_blk))
        cols = _collectives.psum(cols, axis_name)
        error = _collectives.psum(jnp.sum(jnp.where(pos_a, a_blk * jnp.abs(s - 1.0), 0.0)),
                                  axis_name)
        new_f = jnp.where(pos_a, f - jnp.log(jnp.where(pos_a, s, 1.0)), -jnp.inf)
        ok = jnp.all(jnp.where(pos_b, (cols > tiny) & jnp.isfinite(cols), True))
        new_g = lax.cond(
            ok,
            lambda: jnp.where(pos_b, g - jnp.log(jnp.where(pos_b, cols, 1.0) / b), -jnp.inf),
            lambda: col_exact(new_f),
        )
        return new_f, new_g, error

    def sweep(f, g, bound):
        new_f, new_g, error = lax.cond(bound < _FAST_BOUND, fused, exact, f, g)
        moved = jnp.where(pos_b, jnp.abs(new_g - g), 0.0)
        # NaN/inf iterates keep the bound infinite, hence the exact (max-stabilised) path.
        new_bound = jnp.where(jnp.all(jnp.isfinite(moved)), jnp.max(moved), jnp.inf)
        return _Sweep(new_f, new_g, error, new_bound)

    return sweep


class _FwdState(NamedTuple):
    f: Float[Array, "blocks rows"]  # the (ε-scaled) potentials after ``step`` sweeps ...
    g: Float[Array, " k"]
    error: Float[Array, ""]  # ... and their row error
    next: _Sweep  # the sweep after them (already computed: it measured ``error``)
    step: Int[Array, ""]


def _forward(cost, a, b, epsilon, tol, max_steps, inner_steps, axis_name):
    n, k = cost.shape
    dtype = cost.dtype
    rows = _block_rows(cost)
    blocks = -(-n // rows)
    pad = blocks * rows - n
    # The loop runs on ε-scaled potentials and C/ε (one [n, k] buffer computed once, padded with
    # zero-mass rows to whole blocks).
    scaled = jnp.pad(cost / epsilon, ((0, pad), (0, 0))).reshape(blocks, rows, k)
    a_pad = jnp.pad(a, (0, pad))
    sweep = _sweeps(scaled, a_pad, b, axis_name)

    def cond(s: _FwdState):
        return (s.step < max_steps) & ~(s.error < tol)

    def body(s: _FwdState) -> _FwdState:
        # ``s.next`` holds sweep ``step + 1``; run up to the block end, then one more sweep,
        # whose row pass measures the error of the block's last iterate (ott-jax's criterion,
        # checked every ``inner_steps`` sweeps) and is kept as the start of the next block.
        todo = jnp.minimum(inner_steps - 1, max_steps - s.step - 1)
        last = lax.fori_loop(0, todo, lambda _, w: sweep(w.f, w.g, w.bound), s.next)
        nxt = sweep(last.f, last.g, last.bound)
        return _FwdState(last.f, last.g, nxt.row_error, nxt, s.step + todo + 1)

    zeros_f = _collectives.pvary(jnp.zeros((blocks, rows), dtype), axis_name)
    zeros_g = jnp.zeros(k, dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    first = sweep(zeros_f, zeros_g, inf)
    init = _FwdState(zeros_f, zeros_g, inf, first, jnp.int32(0))
    s = lax.while_loop(cond, body, init)
    f = s.f.reshape(blocks * rows)[:n]
    return epsilon * f, epsilon * s.g, s.error, s.step


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
        # Zero-mass rows/columns (potential −inf, zero plan row/column) drop out of the system:
        # their rows of H are zero, so they get w = 0 (a unit diagonal keeps S invertible).
        p = jnp.exp(_log_plan(f, g, cost, epsilon))
        r = jnp.sum(p, axis=1)
        c = _collectives.psum(jnp.sum(p, axis=0), axis_name)
        live_f, live_g = jnp.isfinite(f), jnp.isfinite(g)
        f_bar = jnp.where(live_f, f_bar, 0.0)
        g_bar = jnp.where(live_g, g_bar, 0.0)
        r_safe = jnp.where(live_f, r, 1.0)
        pr = p / r_safe[:, None]
        k = g.shape[0]
        schur = jnp.diag(jnp.where(live_g, c, 1.0)) - _collectives.psum(pr.T @ p, axis_name)
        live = live_g.astype(schur.dtype)
        schur = schur + ridge * (live[:, None] * live[None, :]) / jnp.sum(live)
        rhs = g_bar - _collectives.psum(pr.T @ f_bar, axis_name)
        w_g = jnp.where(live_g, jnp.linalg.solve(schur, rhs), 0.0)
        w_f = jnp.where(live_f, (f_bar - p @ w_g) / r_safe, 0.0)
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
    # Zero-mass entries have potential −inf and zero plan rows/columns: they contribute 0 (their
    # gradient w.r.t. a or b, −∞ in the limit, is reported as 0).
    f, g = _finite_or_zero(f), _finite_or_zero(g)
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

    Speed: once the potentials move by less than ``30 ε`` per iteration, each iteration is one
    fused pass over ``C`` with one exponential per entry: ``E = exp(g − C/ε − σ)``, shifted by the
    previous row log-sum-exp ``σ`` (so ``E ≤ e^{30}`` and no max pass is needed), gives the
    ``f``-update from its row sums and the ``g``-update from ``Eᵀ(a/s)`` (on CPU in cache-sized
    row blocks). The row error is read off the same pass. This computes the same iterates as the
    two max-stabilised log-sum-exps (which are used for the first iterations, after large moves,
    and whenever a column sum is too small to be accurate), so the fixed point, the iteration
    count and the stopping rule are unchanged (METHODS.md §2.1).

    Zero-mass entries: ``a_i = 0`` (``b_k = 0``) gives a zero row (column) of the plan, with the
    potential ``f_i = −inf`` (``g_k = −inf``) by convention; the other potentials, ``cost`` and
    all gradients stay finite (the gradient of ``cost`` w.r.t. a zero entry of ``a`` or ``b``,
    ``−∞`` in the limit, is reported as 0).

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
      a: row marginal, shape [n], nonnegative and not all zero; uniform ``1/n`` if None.
      b: column marginal, shape [k], nonnegative, same total mass as ``a``; uniform ``1/k`` if
        None.
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
      ValueError: if shapes are wrong, values are not finite, a marginal has a negative entry or
        no positive one, the marginals have different masses, ``epsilon <= 0`` or ``tol < 0``.

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
