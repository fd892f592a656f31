"""Tests for jaxclust.assign.sinkhorn_knopp against the SwAV scaling recipe, POT and invariances."""

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

from jaxclust.assign import _sinkhorn_knopp, power_law_prior, sinkhorn_knopp


def _swav_scaling_recipe(scores, epsilon, num_steps, column_mass=None):
    """Float64 NumPy transcription of METHODS.md §2.2 steps 1-3 (SwAV's ``distributed_sinkhorn``)."""
    b_count, k = scores.shape
    b = np.full(k, 1.0 / k) if column_mass is None else np.asarray(column_mass, np.float64)
    p = np.exp(scores / epsilon)
    p /= p.sum()
    for _ in range(num_steps):
        p *= (b / p.sum(axis=0))[None, :]  # each prototype gets mass b_k (1/K in SwAV)
        p /= b_count * p.sum(axis=1, keepdims=True)  # each sample gets mass 1/B
    return b_count * p


def _naive_float32(scores, epsilon, num_steps=3):
    """The scaling recipe as usually written, in float32: exp(S/ε) overflows for small ε."""
    q = jnp.exp(scores.astype(jnp.float32) / epsilon).T
    q = q / jnp.sum(q)
    k, b = q.shape
    for _ in range(num_steps):
        q = q / jnp.sum(q, axis=1, keepdims=True) / k
        q = q / jnp.sum(q, axis=0, keepdims=True) / b
    return (q * b).T


def _scores(rng, n=64, k=10):
    z = rng.normal(size=(n, 16))
    c = rng.normal(size=(k, 16))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return z @ c.T  # cosine similarities in [-1, 1], as in SwAV


@pytest.mark.parametrize("num_steps", [1, 3, 10])
def test_matches_swav_scaling_recipe(rng, num_steps):
    s = _scores(rng)
    ours = sinkhorn_knopp(jnp.asarray(s), epsilon=0.05, num_steps=num_steps)
    ref = _swav_scaling_recipe(s, 0.05, num_steps)
    assert ours.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(np.asarray(ours).sum(1), 1.0, rtol=1e-12)


def test_power_law_column_mass_matches_recipe_and_converges(rng):
    s = _scores(rng, n=60, k=6)
    b = power_law_prior(6, alpha=0.8)
    np.testing.assert_allclose(float(b.sum()), 1.0, rtol=1e-12)
    assert (np.diff(np.asarray(b)) < 0).all()
    ours = sinkhorn_knopp(jnp.asarray(s), epsilon=0.05, num_steps=3, column_mass=b)
    np.testing.assert_allclose(np.asarray(ours), _swav_scaling_recipe(s, 0.05, 3, b), rtol=1e-10)
    converged = sinkhorn_knopp(jnp.asarray(s), epsilon=0.5, num_steps=300, column_mass=b)
    np.testing.assert_allclose(np.asarray(converged).sum(0), 60 * np.asarray(b), rtol=1e-8)
    np.testing.assert_allclose(np.asarray(converged).sum(1), 1.0, rtol=1e-12)


def test_matches_pot_at_convergence(rng):
    s = _scores(rng, n=40, k=5)
    eps = 0.1
    ours = sinkhorn_knopp(jnp.asarray(s), epsilon=eps, num_steps=2000)
    a, b = np.full(40, 1 / 40), np.full(5, 1 / 5)
    plan = ot.sinkhorn(a, b, -s, reg=eps, method="sinkhorn_log", numItermax=10_000, stopThr=1e-14)
    # Both are run until the marginal error is ~1e-14, so the plans (scaled by n to ~1) agree to
    # the marginal error times the condition of the dual problem: 1e-9 is ample in float64.
    np.testing.assert_allclose(np.asarray(ours), 40 * plan, atol=1e-9)


def test_row_mass_rows_and_zero_padding(rng):
    s = _scores(rng, n=30, k=4)
    w = rng.uniform(0.5, 2.0, 30)
    q = sinkhorn_knopp(jnp.asarray(s), epsilon=0.2, num_steps=500, row_mass=jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(q).sum(1), w, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(q).sum(0), w.sum() / 4, rtol=1e-8)
    padded_s = np.vstack([s, np.full((5, 4), 7.0)])
    padded_w = np.r_[w, np.zeros(5)]
    padded = sinkhorn_knopp(jnp.asarray(padded_s), epsilon=0.2, num_steps=7, row_mass=jnp.asarray(padded_w))
    alone = sinkhorn_knopp(jnp.asarray(s), epsilon=0.2, num_steps=7, row_mass=jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(padded[:30]), np.asarray(alone), rtol=1e-12)
    assert (np.asarray(padded[30:]) == 0).all()


_jitted = jax.jit(lambda s, eps: sinkhorn_knopp(s, epsilon=eps, num_steps=3))
_jitted_long = jax.jit(lambda s, eps: sinkhorn_knopp(s, epsilon=eps, num_steps=400))


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**16),
    log_eps=st.floats(np.log10(1e-4), 1.0),
    log_scale=st.floats(-2.0, 4.0),
    dtype=st.sampled_from([jnp.float32, jnp.bfloat16]),
    shape=st.sampled_from([(24, 5), (7, 16)]),
)
def test_properties_any_epsilon_scale_and_dtype(seed, log_eps, log_scale, dtype, shape):
    rng = np.random.default_rng(seed)
    s = jnp.asarray(rng.uniform(-1, 1, shape) * 10.0**log_scale, dtype)
    q = _jitted(s, jnp.float32(10.0**log_eps))
    assert q.dtype == jnp.float32  # half precision is upcast
    q = np.asarray(q, np.float64)
    assert np.isfinite(q).all() and (q >= 0).all()
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=5e-6)


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), eps=st.floats(0.2, 10.0))
def test_many_steps_columns_reach_target(seed, eps):
    rng = np.random.default_rng(seed)
    s = jnp.asarray(rng.uniform(-1, 1, (24, 5)), jnp.float32)
    q = np.asarray(_jitted_long(s, jnp.float32(eps)), np.float64)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=5e-6)
    # Scores in [-1, 1] and ε >= 0.2: the kernel's dynamic range is <= e^10, for which 400 sweeps
    # contract the column error far below float32 resolution of the column sums (~24 · 1e-7).
    np.testing.assert_allclose(q.sum(0), 24 / 5, rtol=1e-4)


def test_naive_recipe_overflows_where_ours_is_finite(rng):
    s = jnp.asarray(_scores(rng) * 10.0, jnp.float32)  # unnormalised features: |S| ~ 10
    naive = np.asarray(_naive_float32(s, 0.01))
    assert not np.isfinite(naive).all()  # exp(1000) = inf in float32, then inf/inf = NaN
    ours = np.asarray(sinkhorn_knopp(s, epsilon=0.01))
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours.sum(1), 1.0, rtol=1e-5)
    # Extreme corner: ε = 1e-4 and |S| = 1e4 in bfloat16.
    extreme = sinkhorn_knopp(jnp.asarray(s * 1e3, jnp.bfloat16), epsilon=1e-4)
    assert np.isfinite(np.asarray(extreme)).all()


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_shard_map_equals_jit_on_sharded_equals_single_device(rng):
    s = jnp.asarray(_scores(rng, n=64, k=10))
    w = jnp.asarray(rng.uniform(0.5, 1.5, 64))
    b = power_law_prior(10, 0.5)
    single = sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b)
    mesh = _mesh()
    ss = jax.device_put(s, NamedSharding(mesh, P("data")))
    ws = jax.device_put(w, NamedSharding(mesh, P("data")))
    mapped = jax.jit(
        jax.shard_map(
            lambda s, w, b: sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b, axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P("data"), P()),
            out_specs=P("data"),
        )
    )(ss, ws, b)
    on_sharded = jax.jit(lambda s, w: sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b))(ss, ws)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(single), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(on_sharded), np.asarray(single), rtol=1e-12)
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit):
        se = jax.device_put(s, NamedSharding(explicit, P("data")))
        we = jax.device_put(w, NamedSharding(explicit, P("data")))
        on_explicit = jax.jit(lambda s, w: sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b))(se, we)
    np.testing.assert_allclose(np.asarray(on_explicit), np.asarray(single), rtol=1e-12)


def test_gradients_match_finite_differences(rng):
    s = jnp.asarray(rng.uniform(-1, 1, (6, 3)))
    w = jnp.asarray(rng.uniform(0.5, 1.5, (6, 3)))

    def f(s, eps):
        return jnp.sum(w * sinkhorn_knopp(s, epsilon=eps, num_steps=4))

    jax.test_util.check_grads(jax.jit(f), (s, 0.3), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    g = jax.jit(jax.grad(lambda s: jnp.sum(w * sinkhorn_knopp(s.astype(jnp.bfloat16), epsilon=1e-3))))(s)
    assert np.isfinite(np.asarray(g)).all()


def test_jit_no_retrace(rng):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(s, eps):
        return sinkhorn_knopp(s, epsilon=eps, num_steps=3)

    for i in range(3):
        q = run(jnp.asarray(_scores(np.random.default_rng(i), n=16, k=4)), 0.05 * (i + 1))
    assert q.shape == (16, 4)


# ------------------------------------------------ the potential form (accelerators), on the CPU


@pytest.fixture
def potential_form(monkeypatch):
    monkeypatch.setattr(_sinkhorn_knopp, "_use_potential_form", lambda: True)


def test_one_pass_logsumexp_matches_logsumexp_with_inf_rows(rng):
    x = rng.normal(size=(5, 9)) * 30
    x[1] = -np.inf  # an all -inf row: LSE -inf, no NaN
    x[2, :4] = -np.inf
    for axis in (0, 1):
        got = _sinkhorn_knopp._one_pass_logsumexp(jnp.asarray(x), axis)
        np.testing.assert_allclose(got, jax.nn.logsumexp(jnp.asarray(x), axis=axis), rtol=1e-13)
    assert np.asarray(_sinkhorn_knopp._one_pass_logsumexp(jnp.asarray(x), 1))[1] == -np.inf
    y = jnp.asarray(rng.normal(size=(4, 6)))
    jax.test_util.check_grads(lambda y: _sinkhorn_knopp._one_pass_logsumexp(y, 0), (y,), order=2,
                              modes=("fwd", "rev"))


@pytest.mark.parametrize("num_steps", [1, 3, 10])
def test_potential_form_matches_swav_recipe(rng, potential_form, num_steps):
    s = _scores(rng)
    b = np.asarray(power_law_prior(10, 0.7))
    q = sinkhorn_knopp(jnp.asarray(s), epsilon=0.05, num_steps=num_steps, column_mass=jnp.asarray(b))
    np.testing.assert_allclose(q, _swav_scaling_recipe(s, 0.05, num_steps, b), rtol=1e-10)


def test_potential_form_row_mass_and_zero_padding(rng, potential_form):
    s = _scores(rng, n=30, k=4)
    w = rng.uniform(0.5, 2.0, 30)
    padded_s = np.vstack([s, np.full((5, 4), 7.0)])
    padded_w = np.r_[w, np.zeros(5)]
    padded = sinkhorn_knopp(jnp.asarray(padded_s), epsilon=0.2, num_steps=7, row_mass=jnp.asarray(padded_w))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_sinkhorn_knopp, "_use_potential_form", lambda: False)
        log_plan = sinkhorn_knopp(jnp.asarray(s), epsilon=0.2, num_steps=7, row_mass=jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(padded[:30]), np.asarray(log_plan), rtol=1e-12)
    assert (np.asarray(padded[30:]) == 0).all()


def test_potential_form_float32_and_large_exponents_fall_back(rng, potential_form):
    s = _scores(rng, n=128, k=30).astype(np.float32)
    q = sinkhorn_knopp(jnp.asarray(s), epsilon=0.05)
    np.testing.assert_allclose(q, _swav_scaling_recipe(s.astype(np.float64), 0.05, 3),
                               rtol=2e-5, atol=1e-7)
    # |S|/ε = 1e7: above _POTENTIAL_RANGE, so the log-plan form runs (exactly its result)
    big = jnp.asarray(s * 1e3)
    q = sinkhorn_knopp(big, epsilon=1e-4)
    assert np.isfinite(np.asarray(q)).all()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_sinkhorn_knopp, "_use_potential_form", lambda: False)
        np.testing.assert_array_equal(q, sinkhorn_knopp(big, epsilon=1e-4))


def test_potential_form_sharded_and_gradients(rng, potential_form):
    s = jnp.asarray(_scores(rng, n=64, k=10))
    w = jnp.asarray(rng.uniform(0.5, 1.5, 64))
    b = power_law_prior(10, 0.5)
    single = sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b)
    mesh = _mesh()
    mapped = jax.jit(jax.shard_map(
        lambda s, w, b: sinkhorn_knopp(s, epsilon=0.05, num_steps=5, row_mass=w, column_mass=b,
                                       axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data"), P()), out_specs=P("data"),
    ))(jax.device_put(s, NamedSharding(mesh, P("data"))),
       jax.device_put(w, NamedSharding(mesh, P("data"))), b)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(single), rtol=1e-12)
    weights = jnp.asarray(rng.uniform(0.5, 1.5, (6, 3)))
    f = lambda s, eps: jnp.sum(weights * sinkhorn_knopp(s, epsilon=eps, num_steps=4))  # noqa: E731
    jax.test_util.check_grads(jax.jit(f), (jnp.asarray(rng.uniform(-1, 1, (6, 3))), 0.3),
                              order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


class TestBadInput:
    s = jnp.ones((6, 3))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"scores must have rank 2 with shape \[n, k\], got shape \(6,\)"):
            sinkhorn_knopp(jnp.ones(6))

    def test_integer_dtype(self):
        with pytest.raises(TypeError, match="scores must have a floating-point dtype"):
            sinkhorn_knopp(jnp.ones((6, 3), jnp.int32))

    def test_non_finite(self):
        with pytest.raises(ValueError, match="scores contains 1 NaN or Inf"):
            sinkhorn_knopp(self.s.at[2, 1].set(jnp.inf))

    @pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
    def test_epsilon(self, eps):
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
            sinkhorn_knopp(self.s, epsilon=eps)

    def test_num_steps(self):
        with pytest.raises(ValueError, match="num_steps must be >= 1, got 0"):
            sinkhorn_knopp(self.s, num_steps=0)
        with pytest.raises(TypeError, match="num_steps must be a Python int"):
            sinkhorn_knopp(self.s, num_steps=3.0)

    def test_column_mass_shape(self):
        with pytest.raises(ValueError, match=r"column_mass must have shape \[k\] = \(3,\), got \(4,\)"):
            sinkhorn_knopp(self.s, column_mass=jnp.ones(4) / 4)

    def test_column_mass_negative(self):
        with pytest.raises(ValueError, match="column_mass must be non-negative"):
            sinkhorn_knopp(self.s, column_mass=jnp.array([1.5, -0.5, 0.0]))

    def test_column_mass_sum(self):
        with pytest.raises(ValueError, match=r"column_mass must sum to 1 \(within 0.0001\), got sum 1.5"):
            sinkhorn_knopp(self.s, column_mass=jnp.array([0.5, 0.5, 0.5]))

    def test_row_mass(self):
        with pytest.raises(ValueError, match=r"row_mass must have shape \[n\] = \(6,\), got \(5,\)"):
            sinkhorn_knopp(self.s, row_mass=jnp.ones(5))
        with pytest.raises(ValueError, match="row_mass must be non-negative"):
            sinkhorn_knopp(self.s, row_mass=-jnp.ones(6))

    def test_power_law_prior(self):
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            power_law_prior(3, alpha=-1.0)
        with pytest.raises(ValueError, match="k must be >= 1"):
            power_law_prior(0)
