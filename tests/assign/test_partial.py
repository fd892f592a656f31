"""Tests for jaxclust.assign.p2ot and rho_schedule against NumPy, POT and the semi-relaxed solver.

POT's ``ot.partial.entropic_partial_wasserstein`` is not a reference: it fixes the total
transported mass with inequality constraints on both marginals (no KL on the cluster sizes and no
exact rows), a different problem from METHODS.md §2.6 except in the degenerate limit tested via
balanced Sinkhorn below (ρ = 1, γ → ∞).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jax.test_util import check_grads

from jaxclust.assign import P2OTResult, p2ot, plan, rho_schedule, sinkhorn_unbalanced

rng = np.random.default_rng(0)
LOGITS = rng.normal(size=(48, 4)) * 2 + np.array([1.0, 0.5, 0.0, -1.0])  # imbalanced
EPS, GAMMA = 0.1, 1.0


def _numpy_p2ot(logits, rho, epsilon, gamma, steps=5000):
    """fp64 scaling-domain transcription of METHODS.md §2.6 (u ← a/Kv, v ← (b/Kᵀu)^τ)."""
    n, k = logits.shape
    z = logits - logits.max(1, keepdims=True)
    cost = -(z - np.log(np.exp(z).sum(1, keepdims=True)))
    cost = np.hstack([cost, np.zeros((n, 1))])
    kernel = np.exp(-cost / epsilon)
    a = np.full(n, 1 / n)
    b = np.r_[np.full(k, rho / k), 1 - rho]
    tau = np.r_[np.full(k, gamma / (gamma + epsilon)), 1.0]
    v = np.ones(k + 1)
    for _ in range(steps):
        u = a / (kernel @ v)
        v = (b / (kernel.T @ u)) ** tau
    u = a / (kernel @ v)  # the reference's last update is the row step after v: same fixed point
    return n * (u[:, None] * kernel * v[None])[:, :k]


@jax.jit
def _solve(logits, rho):
    return p2ot(logits, rho=rho, epsilon=EPS, gamma=GAMMA, tol=1e-13, max_steps=5000)


@pytest.mark.parametrize("rho", [0.3, 0.8])
def test_matches_numpy_transcription(rho):
    ours = _solve(jnp.asarray(LOGITS), rho)
    assert bool(ours.converged)
    ref = _numpy_p2ot(LOGITS, rho, EPS, GAMMA)
    np.testing.assert_allclose(ours.assignments, ref, atol=1e-8)
    q = np.asarray(ours.assignments)
    rows = q.sum(1)
    assert (rows >= 0).all() and (rows <= 1 + 1e-12).all()
    np.testing.assert_allclose(q.sum(), 48 * rho, rtol=1e-9)


def _numpy_objective(q, logits, rho, epsilon, gamma):
    """The P²OT objective of the plan ``P = [Q, virtual column]/N``, in float64 NumPy."""
    n, k = logits.shape
    z = logits - logits.max(1, keepdims=True)
    cost = -(z - np.log(np.exp(z).sum(1, keepdims=True)))
    p = q / n
    p_virtual = 1.0 / n - p.sum(1)  # rows are exact
    cols, prior = p.sum(0), rho / k
    ent = lambda x: (x[x > 0] * (np.log(x[x > 0]) - 1)).sum()  # 0 ln 0 = 0
    return ((p * cost).sum() + epsilon * (ent(p) + ent(p_virtual))
            + gamma * (cols * np.log(cols / prior) - cols + prior).sum())


@pytest.mark.parametrize("rho", [0.4, 1.0])
def test_objective_value_and_danskin_gradient(rho):
    logits = jnp.asarray(LOGITS[:10])
    result = _solve(logits, rho)
    q = np.asarray(result.assignments)
    want = _numpy_objective(q, LOGITS[:10], rho, EPS, GAMMA)
    np.testing.assert_allclose(float(result.cost), want, rtol=1e-10)
    # d value / d logits = Jᵀ P through C = −log_softmax(logits): finite differences in float64.
    check_grads(lambda x: _solve(x, rho).cost, (logits,), order=1, modes=["rev"], eps=1e-6,
                atol=1e-7, rtol=1e-6)
    memory, batch = logits[:6], logits[6:]
    value = lambda m, x: p2ot(x, rho=rho, epsilon=EPS, gamma=GAMMA, memory=m, tol=1e-13,
                              max_steps=5000).cost
    grad_m, grad_x = jax.grad(value, argnums=(0, 1))(memory, batch)
    grad_joint = jax.grad(lambda x: _solve(x, rho).cost)(logits)
    np.testing.assert_allclose(np.vstack([grad_m, grad_x]), grad_joint, atol=1e-12)


def test_rho_one_is_semi_relaxed():
    ours = _solve(jnp.asarray(LOGITS), 1.0)
    assert bool(ours.converged) and float(ours.g[-1]) == -np.inf
    cost = -jax.nn.log_softmax(jnp.asarray(LOGITS), axis=1)
    ref = sinkhorn_unbalanced(cost, epsilon=EPS, tau_b=GAMMA / (GAMMA + EPS), tol=1e-13,
                              max_steps=5000)
    np.testing.assert_allclose(ours.assignments, 48 * plan(ref, cost), atol=1e-10)
    np.testing.assert_allclose(ours.assignments.sum(1), np.ones(48), atol=1e-10)


def test_rho_one_large_gamma_is_balanced_sinkhorn():
    ours = p2ot(jnp.asarray(LOGITS), rho=1.0, epsilon=0.5, gamma=1e12, tol=1e-12, max_steps=5000)
    z = LOGITS - LOGITS.max(1, keepdims=True)
    cost = -(z - np.log(np.exp(z).sum(1, keepdims=True)))
    ref = ot.sinkhorn(np.full(48, 1 / 48), np.full(4, 1 / 4), cost, reg=0.5, method="sinkhorn_log",
                      stopThr=1e-13, numItermax=100000)
    np.testing.assert_allclose(ours.assignments, 48 * ref, atol=1e-8)


def test_memory_rows_and_warm_start():
    memory, batch = jnp.asarray(LOGITS[:32]), jnp.asarray(LOGITS[32:])
    joint = _solve(jnp.asarray(LOGITS), 0.5)
    with_memory = p2ot(batch, rho=0.5, epsilon=EPS, gamma=GAMMA, memory=memory, tol=1e-13,
                       max_steps=5000)
    np.testing.assert_allclose(with_memory.assignments, joint.assignments[32:], atol=1e-10)
    warm = p2ot(jnp.asarray(LOGITS), rho=0.5, epsilon=EPS, gamma=GAMMA, init_g=joint.g,
                tol=1e-13, max_steps=5000)
    assert int(warm.num_steps) <= 20
    np.testing.assert_allclose(warm.assignments, joint.assignments, atol=1e-10)


def test_jit_no_retrace_traced_rho_and_float32():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(logits, step):
        return p2ot(logits, rho=rho_schedule(step, 100))

    for step in (0, 50):
        result = run(jnp.asarray(LOGITS, jnp.float32), step)
    assert isinstance(result, P2OTResult) and result.assignments.dtype == jnp.float32
    assert np.isfinite(np.asarray(result.assignments)).all()
    # Peaked logits: costs near −ln(1e−8) would underflow e^{−C/ε} in fp32; the log domain holds.
    peaked = p2ot(jnp.asarray(LOGITS * 20, jnp.float32), rho=0.5, max_steps=200)
    assert np.isfinite(np.asarray(peaked.assignments)).all()


def test_shard_map_equals_jit_on_sharded_equals_single_device():
    logits = jnp.asarray(LOGITS)
    fn = lambda x, axis_name=None: p2ot(x, rho=0.4, epsilon=EPS, gamma=GAMMA, tol=1e-10,
                                        axis_name=axis_name)
    single = jax.jit(fn)(logits)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    xs = jax.device_put(logits, NamedSharding(mesh, P("data")))
    mapped = jax.jit(jax.shard_map(
        lambda x: fn(x, "data"), mesh=mesh, in_specs=P("data"),
        out_specs=P2OTResult(P("data"), P("data"), P(), P(), P(), P(), P()),
    ))(xs)
    on_sharded = jax.jit(fn)(xs)
    for other in (mapped, on_sharded):
        for got, want in zip(other, single):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


def test_rho_schedule():
    np.testing.assert_allclose(float(rho_schedule(0, 10)), 0.1 + 0.9 * np.exp(-5.0))
    np.testing.assert_allclose(float(rho_schedule(10, 10)), 1.0)
    np.testing.assert_allclose(float(rho_schedule(20, 10)), 1.0)
    np.testing.assert_allclose(float(rho_schedule(3, 10, ramp="linear", rho_0=0.2)), 0.2 + 0.8 * 0.3)
    steps = jnp.arange(11)
    values = jax.jit(jax.vmap(lambda t: rho_schedule(t, 10)))(steps)
    assert np.all(np.diff(np.asarray(values)) > 0)
    with pytest.raises(ValueError, match=r"ramp must be one of \['sigmoid', 'linear'\], got 'cosine'"):
        rho_schedule(0, 10, ramp="cosine")


def test_bad_inputs():
    logits = jnp.asarray(LOGITS)
    with pytest.raises(ValueError, match=r"rho must be in \(0, 1\], got 1.5"):
        p2ot(logits, rho=1.5)
    with pytest.raises(ValueError, match=r"rho must be in \(0, 1\], got 0.0"):
        p2ot(logits, rho=0.0)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0, got -1.0"):
        p2ot(logits, rho=0.5, gamma=-1.0)
    with pytest.raises(ValueError, match=r"memory must have shape \[m, k\] with k=4 \(as logits\), got \(3, 5\)"):
        p2ot(logits, rho=0.5, memory=jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"logits must have rank 2 with shape \[n, k\], got shape \(4,\)"):
        p2ot(logits[0], rho=0.5)
