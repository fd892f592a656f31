"""Tests for jaxclust.assign.sinkhorn against POT, ott-jax, SciPy and finite differences."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from ott.geometry import geometry
from ott.solvers import linear
from scipy.optimize import linear_sum_assignment

from jaxclust.assign import SinkhornResult, _sinkhorn, apply_plan, plan, sinkhorn


def _problem(n=48, k=6, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(k, 2))
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    a = rng.uniform(0.5, 1.5, n)
    b = rng.uniform(0.5, 1.5, k)
    return cost, a / a.sum(), b / b.sum()


COST, A, B = _problem()


@pytest.mark.parametrize("epsilon", [0.5, 0.05])
def test_matches_pot_and_ott(epsilon):
    ours = sinkhorn(jnp.asarray(COST), jnp.asarray(A), jnp.asarray(B), epsilon=epsilon, tol=1e-10,
                    max_steps=20000)
    assert bool(ours.converged) and float(ours.error) < 1e-10
    p = np.asarray(plan(ours, jnp.asarray(COST)))
    ref = ot.sinkhorn(A, B, COST, reg=epsilon, method="sinkhorn_log", stopThr=1e-12,
                      numItermax=100000)
    # Both are within ~1e-10 of the fixed point in marginal error; plan entries are <= 1.
    np.testing.assert_allclose(p, ref, atol=1e-8)
    with jax.numpy_rank_promotion("allow"):  # ott-jax relies on implicit broadcasting
        out = linear.solve(geometry.Geometry(cost_matrix=jnp.asarray(COST), epsilon=epsilon),
                           jnp.asarray(A), jnp.asarray(B), threshold=1e-10, max_iterations=20000)
    np.testing.assert_allclose(p, np.asarray(out.matrix), atol=1e-8)
    # Potentials agree up to the gauge (f + κ, g − κ): centre f.
    shift = float(jnp.mean(ours.f) - jnp.mean(out.f))
    np.testing.assert_allclose(ours.f - shift, out.f, atol=1e-6)
    np.testing.assert_allclose(ours.g + shift, out.g, atol=1e-6)
    # Primal value ⟨P, C⟩ + ε Σ P ln P, and it equals the dual ⟨f, a⟩ + ⟨g, b⟩ at convergence.
    primal = (ref * COST).sum() + epsilon * (ref * np.log(ref)).sum()
    np.testing.assert_allclose(float(ours.cost), primal, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(float(ours.cost), float(ours.f @ A + ours.g @ B), rtol=1e-7,
                               atol=1e-9)


def test_blocked_fused_sweep_matches_pot(monkeypatch):
    # Force the CPU cache-blocked sweep on a small problem: 48 rows in 5 blocks of 10 (2 padded
    # zero-mass rows), float32 and float64, against POT's log-domain solver.
    monkeypatch.setattr(_sinkhorn, "_BLOCK_ENTRIES", 64)
    ref = ot.sinkhorn(A, B, COST, reg=0.05, method="sinkhorn_log", stopThr=1e-13,
                      numItermax=100000)
    # float32: C/ε reaches ~600, whose rounding (ulp 6e-5) is a ~1e-4 relative error in the
    # exponent of plan entries ≤ 0.025.
    for dtype, tol, atol in ((jnp.float64, 1e-11, 1e-9), (jnp.float32, 1e-5, 5e-6)):
        cost = jnp.asarray(COST, dtype)
        ours = sinkhorn(cost, jnp.asarray(A, dtype), jnp.asarray(B, dtype), epsilon=0.05, tol=tol,
                        max_steps=20000)
        assert bool(ours.converged) and ours.f.shape == (48,)
        np.testing.assert_allclose(np.asarray(plan(ours, cost)), ref, atol=atol)


def test_fused_and_exact_sweeps_give_the_same_iterates(monkeypatch):
    # The one-exponential sweep is a rewriting of the two max-stabilised LSEs: with it disabled
    # (bound 0: always exact) the iterates, the stopping step and the error are the same.
    cost, a, b = jnp.asarray(COST), jnp.asarray(A), jnp.asarray(B)
    fused = sinkhorn(cost, a, b, epsilon=0.05)
    monkeypatch.setattr(_sinkhorn, "_FAST_BOUND", 0.0)
    exact = sinkhorn(cost, a, b, epsilon=0.05)
    assert int(fused.num_steps) == int(exact.num_steps) > 10
    np.testing.assert_allclose(fused.f, exact.f, atol=1e-11)
    np.testing.assert_allclose(fused.g, exact.g, atol=1e-11)
    np.testing.assert_allclose(float(fused.error), float(exact.error), rtol=1e-8)


def test_zero_marginal_entries_match_pot_on_reduced_problem():
    # a_i = 0 / b_k = 0 drop row i / column k: compare with POT on the problem without them.
    a, b = A.copy(), B.copy()
    a[[3, 17, 40]] = 0.0
    b[2] = 0.0
    a, b = a / a.sum(), b / b.sum()
    rows, cols = a > 0, b > 0
    ref = ot.sinkhorn(a[rows], b[cols], COST[rows][:, cols], reg=0.1, method="sinkhorn_log",
                      stopThr=1e-13, numItermax=100000)
    cost = jnp.asarray(COST)
    solve = jax.jit(lambda c, a, b: sinkhorn(c, a, b, epsilon=0.1, tol=1e-12, max_steps=20000))
    ours = solve(cost, jnp.asarray(a), jnp.asarray(b))
    p = np.asarray(plan(ours, cost))
    assert bool(ours.converged)
    np.testing.assert_array_equal(p[~rows], 0.0)
    np.testing.assert_array_equal(p[:, ~cols], 0.0)
    np.testing.assert_allclose(p[rows][:, cols], ref, atol=1e-10)
    # Convention: zero-mass potentials are −inf; the others are finite, as is the value.
    assert np.isneginf(ours.f[~rows]).all() and np.isneginf(ours.g[~cols]).all()
    assert np.isfinite(ours.f[rows]).all() and np.isfinite(ours.g[cols]).all()
    reduced = (ref * COST[rows][:, cols]).sum() + 0.1 * (ref * np.log(ref)).sum()
    np.testing.assert_allclose(float(ours.cost), reduced, rtol=1e-8)
    # Gradients are finite: Danskin (value) gives the plan; the implicit plan gradient vanishes on
    # the dropped rows/columns and equals the reduced problem's elsewhere.
    w = jnp.asarray(np.random.default_rng(7).normal(size=COST.shape))
    grad_value = jax.grad(lambda c: solve(c, jnp.asarray(a), jnp.asarray(b)).cost)(cost)
    np.testing.assert_allclose(grad_value, p, atol=1e-10)
    loss = jax.jit(jax.grad(lambda c, a, b, w: jnp.sum(plan(solve(c, a, b), c) * w)))
    full = np.asarray(loss(cost, jnp.asarray(a), jnp.asarray(b), w))
    small = np.asarray(loss(cost[rows][:, cols], jnp.asarray(a[rows]), jnp.asarray(b[cols]),
                            w[rows][:, cols]))
    assert np.isfinite(full).all()
    np.testing.assert_array_equal(full[~rows], 0.0)
    np.testing.assert_array_equal(full[:, ~cols], 0.0)
    np.testing.assert_allclose(full[rows][:, cols], small, atol=1e-7)
    grad_a = jax.grad(lambda a: solve(cost, a, jnp.asarray(b)).cost)(jnp.asarray(a))
    assert np.isfinite(grad_a).all()


def test_default_tol_plan_within_tolerance():
    cost = jnp.asarray(COST)
    loose = sinkhorn(cost, jnp.asarray(A), jnp.asarray(B), epsilon=0.1)
    tight = sinkhorn(cost, jnp.asarray(A), jnp.asarray(B), epsilon=0.1, tol=1e-12)
    assert bool(loose.converged) and float(loose.error) < 1e-3
    assert int(loose.num_steps) % 10 == 0
    # Columns are exact and the rows are off by < tol in L1; with linear convergence the distance
    # to the fixed point is a small multiple of the marginal error (here ~2.7e-3 for 1e-3).
    diff = np.abs(np.asarray(plan(loose, cost) - plan(tight, cost))).sum()
    assert diff < 5e-3


def test_uniform_defaults_and_marginals():
    result = sinkhorn(jnp.asarray(COST), epsilon=0.1, tol=1e-9)
    p = plan(result, jnp.asarray(COST))
    np.testing.assert_allclose(p.sum(1), np.full(48, 1 / 48), atol=1e-9)
    np.testing.assert_allclose(p.sum(0), np.full(6, 1 / 6), atol=1e-12)
    np.testing.assert_allclose(apply_plan(result, jnp.asarray(COST), jnp.ones(6)), p.sum(1))
    v = jnp.arange(48.0 * 3).reshape(48, 3)
    np.testing.assert_allclose(apply_plan(result, jnp.asarray(COST), v, transpose=True), p.T @ v,
                               rtol=1e-12)


def test_tiny_epsilon_approaches_assignment():
    rng = np.random.default_rng(3)
    cost = rng.uniform(size=(12, 12))
    rows, cols = linear_sum_assignment(cost)
    result = sinkhorn(jnp.asarray(cost), epsilon=2e-3, max_steps=4000)
    p = np.asarray(plan(result, jnp.asarray(cost)))
    perm = np.zeros((12, 12))
    perm[rows, cols] = 1 / 12
    assert bool(result.converged)
    np.testing.assert_allclose(p, perm, atol=2e-3)
    np.testing.assert_allclose(float(result.cost), cost[rows, cols].mean(), atol=1e-2)


def test_non_convergence_reported():
    result = sinkhorn(jnp.asarray(COST), epsilon=0.01, max_steps=3)
    assert int(result.num_steps) == 3
    assert not bool(result.converged) and float(result.error) > 1e-3


@pytest.mark.parametrize("epsilon,scale", [(1e-4, 1.0), (1e-4, 1e4), (1e-2, 1e4)])
def test_no_nan_small_epsilon_large_cost(epsilon, scale):
    result = sinkhorn(jnp.asarray(COST * scale), epsilon=epsilon, max_steps=200)
    for field in (result.f, result.g, result.error, result.cost):
        assert np.isfinite(np.asarray(field)).all()
    assert np.isfinite(np.asarray(plan(result, jnp.asarray(COST * scale)))).all()


def _small():
    cost, a, b = _problem(n=6, k=4, seed=1)
    return jnp.asarray(cost), jnp.asarray(a), jnp.asarray(b)


def test_implicit_gradient_of_plan_matches_finite_differences():
    cost, a, b = _small()
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(6, 4)))

    @jax.jit
    def loss(cost, epsilon):
        result = sinkhorn(cost, a, b, epsilon=epsilon, tol=1e-13, max_steps=20000)
        return jnp.sum(plan(result, cost) * weights)

    check_grads(loss, (cost, 0.3), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-5)


def test_implicit_gradient_wrt_marginals_mass_preserving():
    cost, a, b = _small()
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(6, 4)))

    @jax.jit
    def loss(a, b):
        result = sinkhorn(cost, a, b, epsilon=0.3, tol=1e-13, max_steps=20000)
        return jnp.sum(plan(result, cost) * weights)

    ga, gb = jax.grad(loss, argnums=(0, 1))(a, b)
    rng = np.random.default_rng(4)
    da, db = rng.normal(size=6), rng.normal(size=4)
    da, db = da - da.mean(), db - db.mean()  # stay on the balanced (equal-mass) set
    h = 1e-6
    numeric = (loss(a + h * da, b + h * db) - loss(a - h * da, b - h * db)) / (2 * h)
    np.testing.assert_allclose(float(ga @ da + gb @ db), float(numeric), rtol=1e-5, atol=1e-7)


def test_value_gradient_is_danskin():
    cost, a, b = _small()
    value = jax.jit(lambda cost, eps: sinkhorn(cost, a, b, epsilon=eps, tol=1e-13).cost)
    result = sinkhorn(cost, a, b, epsilon=0.3, tol=1e-13, max_steps=20000)
    p = plan(result, cost)
    np.testing.assert_allclose(jax.grad(value)(cost, 0.3), p, atol=1e-10)
    check_grads(value, (cost, 0.3), order=1, modes=["rev"], eps=1e-6, atol=1e-7, rtol=1e-6)
    ga = jax.grad(lambda a: sinkhorn(cost, a, b, epsilon=0.3, tol=1e-13).cost)(a)
    np.testing.assert_allclose(ga - ga.mean(), result.f - result.f.mean(), atol=1e-10)


def test_jit_no_retrace():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(cost, epsilon):
        return sinkhorn(cost, epsilon=epsilon)

    for eps in (0.1, 0.2):
        result = run(jnp.asarray(COST), eps)
    assert isinstance(result, SinkhornResult) and bool(result.converged)


def test_vmap_over_costs():
    costs = jnp.stack([jnp.asarray(COST), 2 * jnp.asarray(COST)])
    batched = jax.jit(jax.vmap(lambda c: sinkhorn(c, epsilon=0.1, tol=1e-8)))(costs)
    single = sinkhorn(costs[1], epsilon=0.1, tol=1e-8)
    np.testing.assert_allclose(batched.g[1] - batched.g[1, 0], single.g - single.g[0], atol=1e-7)


def test_shard_map_equals_jit_on_sharded_equals_single_device():
    cost, a = jnp.asarray(COST[:48]), jnp.asarray(A)
    b = jnp.asarray(B)
    single = jax.jit(lambda c, a: sinkhorn(c, a, b, epsilon=0.1, tol=1e-8))(cost, a)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    shard = NamedSharding(mesh, P("data"))
    cs, as_ = jax.device_put(cost, shard), jax.device_put(a, shard)
    specs = SinkhornResult(P("data"), P(), P(), P(), P(), P(), P())
    mapped = jax.jit(jax.shard_map(
        lambda c, a, b: sinkhorn(c, a, b, epsilon=0.1, tol=1e-8, axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data"), P()), out_specs=specs,
    ))(cs, as_, b)
    on_sharded = jax.jit(lambda c, a: sinkhorn(c, a, b, epsilon=0.1, tol=1e-8))(cs, as_)
    for other in (mapped, on_sharded):
        np.testing.assert_allclose(other.f, single.f, atol=1e-10)
        np.testing.assert_allclose(other.g, single.g, atol=1e-10)
        np.testing.assert_allclose(float(other.cost), float(single.cost), rtol=1e-10)
        assert int(other.num_steps) == int(single.num_steps)
    # Implicit gradient under shard_map (psums in the Schur complement) equals single device.
    w = jnp.asarray(np.random.default_rng(5).normal(size=(48, 6)))

    def loss(c, w, axis_name=None):
        r = sinkhorn(c, epsilon=0.1, tol=1e-12, axis_name=axis_name)
        return jnp.sum(plan(r, c) * w)

    grad_single = jax.jit(jax.grad(loss))(cost, w)
    grad_mapped = jax.jit(jax.shard_map(
        jax.grad(lambda c, w: loss(c, w, "data")), mesh=mesh,
        in_specs=(P("data"), P("data")), out_specs=P("data"),
    ))(cs, jax.device_put(w, shard))
    np.testing.assert_allclose(grad_mapped, grad_single, atol=1e-9)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_jit_on_sharded_input_with_cache_blocks(monkeypatch, axis_type):
    # Small blocks (48 rows -> 5 blocks of 10, padded) on sharded rows: explicit sharding falls
    # back to one block, auto sharding lets the partitioner split the padded blocks.
    monkeypatch.setattr(_sinkhorn, "_BLOCK_ENTRIES", 64)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    cost = jnp.asarray(COST)
    cs = jax.device_put(cost, NamedSharding(mesh, P("data")))
    run = jax.jit(lambda c: sinkhorn(c, epsilon=0.1, tol=1e-8))
    np.testing.assert_allclose(run(cs).g, run(cost).g, atol=1e-12)


_marginal_solver = jax.jit(lambda c, a, b: sinkhorn(c, a, b, epsilon=0.2, tol=1e-9))


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(st.integers(0, 2**32 - 1), st.floats(0.1, 100.0))
def test_property_marginals(seed, scale):
    # Law: at convergence the plan has the prescribed marginals, for any cost and marginals.
    rng = np.random.default_rng(seed)
    cost = rng.normal(size=(10, 4)) * scale
    a, b = rng.uniform(0.1, 1.0, 10), rng.uniform(0.1, 1.0, 4)
    a, b = a / a.sum(), b / b.sum()
    result = _marginal_solver(jnp.asarray(cost), jnp.asarray(a), jnp.asarray(b))
    p = np.asarray(plan(result, jnp.asarray(cost)))
    if bool(result.converged):
        assert np.abs(p.sum(1) - a).sum() < 1e-9
    else:  # large cost / ε: slow, but reported as data and still finite
        assert float(result.error) >= 1e-9 and int(result.num_steps) == 2000
    np.testing.assert_allclose(p.sum(0), b, atol=1e-12)
    assert np.isfinite(p).all()


def test_bad_inputs():
    cost = jnp.asarray(COST)
    with pytest.raises(ValueError, match=r"cost must have rank 2 with shape \[n, k\], got shape \(48,\)"):
        sinkhorn(cost[:, 0])
    with pytest.raises(TypeError, match="cost must have a floating-point dtype"):
        sinkhorn(jnp.ones((3, 2), jnp.int32))
    with pytest.raises(ValueError, match=r"a must have shape \[n\] = \(48,\), got \(5,\)"):
        sinkhorn(cost, jnp.ones(5) / 5)
    with pytest.raises(ValueError, match=r"b must have shape \[k\] = \(6,\), got \(5,\)"):
        sinkhorn(cost, None, jnp.ones(5) / 5)
    with pytest.raises(ValueError, match="a must have at least one positive entry; got all zeros"):
        sinkhorn(cost, jnp.zeros(48))
    with pytest.raises(ValueError, match="b must be nonnegative; got min -0.5"):
        sinkhorn(cost, None, jnp.array([1.0, 0.5, -0.5, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="a and b must have the same total mass"):
        sinkhorn(cost, jnp.ones(48), jnp.ones(6))
    with pytest.raises(ValueError, match=r"got sum\(a\)=2 and sum\(b\)=1;"):
        sinkhorn(cost, jnp.full(48, 2 / 48))
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got 0.0"):
        sinkhorn(cost, epsilon=0.0)
    with pytest.raises(ValueError, match="cost contains 1 NaN or Inf"):
        sinkhorn(cost.at[0, 0].set(jnp.nan))
    with pytest.raises(TypeError, match="max_steps must be a Python int"):
        sinkhorn(cost, max_steps=10.5)
    with pytest.raises(ValueError, match="inner_steps must be >= 1, got 0"):
        sinkhorn(cost, inner_steps=0)
    with pytest.raises(ValueError, match=r"vec must have shape \[k\] or \[k, d\] with k=6, got \(5,\)"):
        apply_plan(sinkhorn(cost), cost, jnp.ones(5))
