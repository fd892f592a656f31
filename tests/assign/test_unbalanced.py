"""Tests for jaxclust.assign.sinkhorn_unbalanced against POT, ott-jax and NumPy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from jax.test_util import check_grads
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxclust.assign import UnbalancedResult, plan, sinkhorn, sinkhorn_unbalanced

rng = np.random.default_rng(0)
COST = rng.uniform(size=(40, 5))
A = rng.uniform(0.5, 1.5, 40)
A /= A.sum()
B = rng.uniform(0.5, 1.5, 5)
B /= 2 * B.sum()  # half the mass of A: only meaningful when relaxed
EPS = 0.1


def _reg_m(tau):
    """POT's marginal weight ρ for ott-jax/jaxclust's exponent τ = ρ/(ρ + ε)."""
    return EPS * tau / (1 - tau)


@jax.jit
def _solve(cost, a, b, tau_a, tau_b):
    return sinkhorn_unbalanced(cost, a, b, epsilon=EPS, tau_a=tau_a, tau_b=tau_b, tol=1e-12,
                               max_steps=20000)


def _numpy_value(p, a, b, tau_a, tau_b):
    def kl(m, r, tau):
        return 0.0 if tau == 1 else _reg_m(tau) * np.sum(m * np.log(m / r) - m + r)

    return ((p * COST).sum() + EPS * (p * (np.log(p) - 1)).sum()
            + kl(p.sum(1), a, tau_a) + kl(p.sum(0), b, tau_b))


@pytest.mark.parametrize("tau_a,tau_b", [(0.7, 0.4), (1.0, 0.5)])
def test_matches_pot(tau_a, tau_b):
    ours = _solve(jnp.asarray(COST), jnp.asarray(A), jnp.asarray(B), tau_a, tau_b)
    assert bool(ours.converged)
    p = np.asarray(plan(ours, jnp.asarray(COST)))
    # POT's reg_type="entropy" is ε Σ P(ln P − 1), ours; its default "kl" is KL(P‖abᵀ), another
    # problem. reg_m = ρ = ετ/(1 − τ); POT writes a hard marginal as reg_m = inf.
    reg_m = tuple(np.inf if t == 1 else _reg_m(t) for t in (tau_a, tau_b))
    with pytest.warns(UserWarning, match="overwritten"):
        ref = ot.unbalanced.sinkhorn_unbalanced(
            A, B, COST, reg=EPS, reg_m=reg_m, method="sinkhorn_stabilized", reg_type="entropy",
            stopThr=1e-14, numItermax=100000,
        )
    np.testing.assert_allclose(p, ref, atol=1e-10)
    np.testing.assert_allclose(ours.row_mass, p.sum(1), rtol=1e-12)
    np.testing.assert_allclose(ours.column_mass, p.sum(0), rtol=1e-12)
    np.testing.assert_allclose(float(ours.cost), _numpy_value(p, A, B, tau_a, tau_b), rtol=1e-10)
    if tau_a == 1:  # semi-relaxed: rows exact
        np.testing.assert_allclose(ours.row_mass, A, atol=1e-12)


@pytest.mark.parametrize("tau_a,tau_b", [(0.7, 0.4), (1.0, 0.5)])
def test_matches_ott(tau_a, tau_b):
    ours = _solve(jnp.asarray(COST), jnp.asarray(A), jnp.asarray(B), tau_a, tau_b)
    geom = geometry.Geometry(cost_matrix=jnp.asarray(COST), epsilon=EPS)
    problem = linear_problem.LinearProblem(geom, jnp.asarray(A), jnp.asarray(B), tau_a=tau_a,
                                           tau_b=tau_b)
    with jax.numpy_rank_promotion("allow"):  # ott-jax relies on implicit broadcasting
        out = ott_sinkhorn.Sinkhorn(threshold=1e-12, max_iterations=20000)(problem)
    # Unbalanced potentials have no gauge freedom: compare them directly.
    np.testing.assert_allclose(ours.f, out.f, atol=1e-9)
    np.testing.assert_allclose(ours.g, out.g, atol=1e-9)
    np.testing.assert_allclose(plan(ours, jnp.asarray(COST)), out.matrix, atol=1e-10)


def test_tau_one_is_balanced_sinkhorn():
    b = jnp.asarray(2 * B)
    ours = _solve(jnp.asarray(COST), jnp.asarray(A), b, 1.0, 1.0)
    ref = sinkhorn(jnp.asarray(COST), jnp.asarray(A), b, epsilon=EPS, tol=1e-12)
    np.testing.assert_allclose(plan(ours, jnp.asarray(COST)), plan(ref, jnp.asarray(COST)),
                               atol=1e-10)
    # Same plan; the values differ by the ε Σ P = ε term of the unnormalised entropy.
    np.testing.assert_allclose(float(ours.cost), float(ref.cost) - EPS, rtol=1e-9)


def test_vector_tau():
    cost = jnp.asarray(COST)
    scalar = _solve(cost, jnp.asarray(A), jnp.asarray(B), 0.6, 0.3)
    vector = _solve(cost, jnp.asarray(A), jnp.asarray(B), jnp.full(40, 0.6), jnp.full(5, 0.3))
    np.testing.assert_allclose(vector.f, scalar.f, atol=1e-12)
    # One exact column among relaxed ones: that column's mass is exactly b there.
    tau_b = jnp.asarray([0.3, 0.3, 0.3, 0.3, 1.0])
    mixed = _solve(cost, jnp.asarray(A), jnp.asarray(B), 1.0, tau_b)
    assert bool(mixed.converged)
    np.testing.assert_allclose(float(mixed.column_mass[4]), B[4], rtol=1e-10)
    p = np.asarray(plan(mixed, cost))
    np.testing.assert_allclose(float(mixed.cost), _numpy_value(p, A, B, 1.0, 1.0)
                               + _reg_m(0.3) * np.sum((lambda m, r: m * np.log(m / r) - m + r)(
                                   p.sum(0)[:4], B[:4])), rtol=1e-10)


def test_non_convergence_and_jit_no_retrace():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(cost, tau_b):
        return sinkhorn_unbalanced(cost, epsilon=0.01, tau_b=tau_b, max_steps=3)

    for tau_b in (0.5, 0.9):
        result = run(jnp.asarray(COST), tau_b)
    assert isinstance(result, UnbalancedResult)
    assert int(result.num_steps) == 3 and not bool(result.converged)
    assert float(result.error) > 1e-3


def test_no_nan_small_epsilon_large_cost():
    result = sinkhorn_unbalanced(jnp.asarray(COST * 1e4), epsilon=1e-4, tau_b=0.9, max_steps=50)
    for field in result[:-1]:
        assert np.isfinite(np.asarray(field)).all()


def test_shard_map_equals_jit_on_sharded_equals_single_device():
    cost, a = jnp.asarray(COST), jnp.asarray(A)
    fn = lambda c, a, axis_name=None: sinkhorn_unbalanced(
        c, a, jnp.asarray(B), epsilon=EPS, tau_a=0.8, tau_b=0.5, tol=1e-10, axis_name=axis_name)
    single = jax.jit(fn)(cost, a)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    shard = NamedSharding(mesh, P("data"))
    cs, as_ = jax.device_put(cost, shard), jax.device_put(a, shard)
    specs = UnbalancedResult(P("data"), P(), P(), P(), P(), P("data"), P(), P(), P())
    mapped = jax.jit(jax.shard_map(
        lambda c, a: fn(c, a, "data"), mesh=mesh, in_specs=(P("data"), P("data")),
        out_specs=specs,
    ))(cs, as_)
    on_sharded = jax.jit(fn)(cs, as_)
    for other in (mapped, on_sharded):
        for got, want in zip(other, single):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


def test_bad_inputs():
    cost = jnp.asarray(COST)
    with pytest.raises(ValueError, match=r"tau_a must lie in \(0, 1\]"):
        sinkhorn_unbalanced(cost, tau_a=0.0)
    with pytest.raises(ValueError, match=r"tau_b must lie in \(0, 1\]"):
        sinkhorn_unbalanced(cost, tau_b=1.5)
    with pytest.raises(ValueError, match=r"tau_b must be a scalar or have shape \[k\] = \(5,\), got \(4,\)"):
        sinkhorn_unbalanced(cost, tau_b=jnp.ones(4))
    with pytest.raises(ValueError, match=r"b must have shape \[k\] = \(5,\), got \(3,\)"):
        sinkhorn_unbalanced(cost, None, jnp.ones(3))
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got -1.0"):
        sinkhorn_unbalanced(cost, epsilon=-1.0)
    with pytest.raises(ValueError, match="a must be nonnegative; got min -1.0"):
        sinkhorn_unbalanced(cost, -jnp.ones(40))
    with pytest.raises(ValueError, match="b must have at least one positive entry"):
        sinkhorn_unbalanced(cost, None, jnp.zeros(5))


@pytest.mark.parametrize("tau_a,tau_b", [(0.7, 0.4), (1.0, 0.5)])
def test_value_gradient_is_danskin(tau_a, tau_b):
    # d cost / dC = P, and finite differences (float64) w.r.t. C, a and b.
    cost, a, b = jnp.asarray(COST[:8]), jnp.asarray(A[:8] / A[:8].sum()), jnp.asarray(B)
    value = jax.jit(lambda c, a, b: sinkhorn_unbalanced(
        c, a, b, epsilon=EPS, tau_a=tau_a, tau_b=tau_b, tol=1e-13, max_steps=20000).cost)
    result = sinkhorn_unbalanced(cost, a, b, epsilon=EPS, tau_a=tau_a, tau_b=tau_b, tol=1e-13,
                                 max_steps=20000)
    np.testing.assert_allclose(jax.grad(value)(cost, a, b), plan(result, cost), atol=1e-12)
    check_grads(value, (cost, a, b), order=1, modes=["rev"], eps=1e-6, atol=1e-7, rtol=1e-6)


def test_zero_mass_entries_match_pot_on_reduced_problem():
    a, b = A.copy(), B.copy()
    a[[0, 9]] = 0.0
    b[3] = 0.0
    rows, cols = a > 0, b > 0
    ours = _solve(jnp.asarray(COST), jnp.asarray(a), jnp.asarray(b), 0.7, 0.4)
    p = np.asarray(plan(ours, jnp.asarray(COST)))
    with pytest.warns(UserWarning, match="overwritten"):
        ref = ot.unbalanced.sinkhorn_unbalanced(
            a[rows], b[cols], COST[rows][:, cols], reg=EPS, reg_m=(_reg_m(0.7), _reg_m(0.4)),
            method="sinkhorn_stabilized", reg_type="entropy", stopThr=1e-14, numItermax=100000,
        )
    assert bool(ours.converged)
    np.testing.assert_array_equal(p[~rows], 0.0)
    np.testing.assert_array_equal(p[:, ~cols], 0.0)
    np.testing.assert_allclose(p[rows][:, cols], ref, atol=1e-10)
    assert np.isneginf(ours.f[~rows]).all() and np.isfinite(ours.f[rows]).all()
    value = lambda c, a, b: _solve(c, a, b, 0.7, 0.4).cost
    reduced = value(jnp.asarray(COST[rows][:, cols]), jnp.asarray(a[rows]), jnp.asarray(b[cols]))
    np.testing.assert_allclose(float(ours.cost), float(reduced), rtol=1e-10)
    grads = jax.grad(value, argnums=(0, 1, 2))(jnp.asarray(COST), jnp.asarray(a), jnp.asarray(b))
    for grad in grads:
        assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(grads[0], p, atol=1e-12)
