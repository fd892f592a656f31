"""Tests for mini-batch k-means: minibatch_init, minibatch_update and minibatch_kmeans.

Compilation dominates the run time on CPU, so every jitted function is built once at module level
with fixed shapes (600 x 5 blobs, batches of 48 rows, k = 6) and shared between tests.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.datasets import load_digits, make_blobs

from jaxclust.cluster import (
    KMeansResult,
    KMeansState,
    kmeans,
    minibatch_init,
    minibatch_kmeans,
    minibatch_update,
)
from jaxclust.cluster import _minibatch

N, D, K, B = 600, 5, 6, 48
X, _ = make_blobs(N, n_features=D, centers=K, cluster_std=1.5, random_state=0)
INIT = X[np.random.default_rng(1).choice(N, K, replace=False)]
FAR = np.vstack([X[:K - 1], np.full((1, D), 1e3)])  # the last centre never wins a point


def _batches(num, seed=0):
    rng = np.random.default_rng(seed)
    return [X[rng.choice(N, B, replace=False)] for _ in range(num)]  # distinct rows


def _state(centroids, **fields):
    state = minibatch_init(jnp.asarray(X), k=K, init=jnp.asarray(centroids))
    fields = {name: jnp.asarray(value, jnp.float64) for name, value in fields.items()}
    return state._replace(**fields)


# Built once: fixed shapes, so each compiles once for the whole module.
_update_r0 = jax.jit(
    functools.partial(minibatch_update, reassignment_ratio=0.0, num_samples=float(N))
)


@jax.jit
@chex.assert_max_traces(n=1)
def _update(state, x_batch, sample_weight, key):
    return minibatch_update(
        state, x_batch, key=key, sample_weight=sample_weight, num_samples=float(N)
    )


# ------------------------------------------------------------------------------------------------
# (a) parity with scikit-learn's partial_fit, after every step.


def _sklearn_convergence(est, step, batch_inertia):
    """scikit-learn's EWA bookkeeping (``_mini_batch_convergence``) on a partial_fit estimator."""
    if step == 0:
        est._batch_size, est._tol = B, 0.0
        est._ewa_inertia = est._ewa_inertia_min = None
        est._no_improvement = 0
    MiniBatchKMeans._mini_batch_convergence(est, step, 100, N, 0.0, batch_inertia)


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_sklearn_partial_fit_every_step(weighted):
    rng = np.random.default_rng(2)
    est = MiniBatchKMeans(n_clusters=K, init=INIT, n_init=1, reassignment_ratio=0.0, batch_size=B)
    state = minibatch_init(jnp.asarray(X), k=K, init=jnp.asarray(INIT))
    for step, xb in enumerate(_batches(12)):
        w = rng.uniform(0.1, 3.0, B) if weighted else np.ones(B)
        old = np.asarray(state.centroids)
        state = _update_r0(state, jnp.asarray(xb), sample_weight=jnp.asarray(w))
        est.partial_fit(xb, sample_weight=w)
        centroids = np.asarray(state.centroids)
        np.testing.assert_allclose(centroids, est.cluster_centers_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(state.counts), est._counts, rtol=1e-12)
        assert int(state.step) == est.n_steps_ == step + 1
        inertia = (w * ((xb[:, None] - old[None]) ** 2).sum(-1).min(1)).sum()
        np.testing.assert_allclose(float(state.batch_inertia), inertia, rtol=1e-9)
        if not weighted:  # scikit-learn counts rows where jaxclust counts weight
            assert float(state.samples_since_reassign) == est._n_since_last_reassign
            _sklearn_convergence(est, step, inertia)
            if step == 0:
                assert np.isinf(float(state.ewa_inertia))
            else:
                np.testing.assert_allclose(float(state.ewa_inertia), est._ewa_inertia, rtol=1e-9)
                ewa_min = float(state.ewa_inertia_min)
                np.testing.assert_allclose(ewa_min, est._ewa_inertia_min, rtol=1e-9)
            assert int(state.no_improvement) == est._no_improvement


def test_integer_weights_equal_repeated_rows():
    xb = _batches(1, seed=3)[0]
    reps = np.random.default_rng(3).integers(1, 3, B)
    state = minibatch_init(jnp.asarray(X), k=K, init=jnp.asarray(INIT))
    weighted = _update_r0(state, jnp.asarray(xb), sample_weight=jnp.asarray(reps, float))
    est = MiniBatchKMeans(n_clusters=K, init=INIT, n_init=1, reassignment_ratio=0.0)
    est.partial_fit(np.repeat(xb, reps, axis=0))
    np.testing.assert_allclose(np.asarray(weighted.centroids), est.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(weighted.counts), est._counts, rtol=1e-12)


def test_zero_weight_rows_change_nothing():
    # Padding a batch with zero-weight rows (e.g. to divide it over devices) is exact, the
    # reassignment counter included (it counts weight, scikit-learn counts rows).
    est = MiniBatchKMeans(n_clusters=K, init=INIT, n_init=1, reassignment_ratio=0.0)
    state = minibatch_init(jnp.asarray(X), k=K, init=jnp.asarray(INIT))
    for xb in _batches(2, seed=9):
        w = np.r_[np.ones(B - 8), np.zeros(8)]
        state = _update_r0(state, jnp.asarray(xb), sample_weight=jnp.asarray(w))
        est.partial_fit(xb[: B - 8])
        np.testing.assert_allclose(np.asarray(state.centroids), est.cluster_centers_, rtol=1e-9)
        np.testing.assert_allclose(np.asarray(state.counts), est._counts, rtol=1e-12)
        assert float(state.samples_since_reassign) == est._n_since_last_reassign


# ------------------------------------------------------------------------------------------------
# (b) quality: close to full Lloyd, reassignment on.


def _quality_data():
    digits = load_digits().data.astype(np.float64)
    # Same shape as digits, so one compilation serves both data sets.
    blobs, _ = make_blobs(len(digits), n_features=64, centers=10, cluster_std=1.0, random_state=1)
    return {"digits": digits, "blobs": blobs}


QUALITY = _quality_data()
_fit_quality = jax.jit(
    lambda x, key: minibatch_kmeans(x, k=10, key=key, batch_size=256, max_steps=300)
)
_lloyd = jax.jit(lambda x, init: kmeans(x, k=10, init=init))


@pytest.mark.parametrize("name", sorted(QUALITY))
def test_inertia_close_to_lloyd(name):
    x = QUALITY[name]
    # Reference: Lloyd's k-means from the best of 4 scikit-learn restarts.
    best = KMeans(10, n_init=4, random_state=0).fit(x).cluster_centers_
    ref = float(_lloyd(jnp.asarray(x), jnp.asarray(best)).inertia)
    ratios = []
    for seed in range(3):
        result = _fit_quality(jnp.asarray(x), jax.random.key(seed))
        ratios.append(float(result.inertia) / ref)
        d = ((x[:, None] - np.asarray(result.centroids)[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(np.asarray(result.labels), d.argmin(1))
        np.testing.assert_allclose(d.min(1).sum(), float(result.inertia), rtol=1e-9)
        counts = np.bincount(d.argmin(1), minlength=10)
        np.testing.assert_allclose(np.asarray(result.counts), counts)
        assert bool(result.converged) and 1 < int(result.num_steps) < 300  # EWA rule stopped it
    assert np.mean(ratios) <= 1.05, ratios


# ------------------------------------------------------------------------------------------------
# (c) low-count reassignment.


def test_empty_far_centre_is_reassigned_to_a_batch_row():
    xb = _batches(1, seed=4)[0]
    state = _state(FAR)
    plain = _update_r0(state, jnp.asarray(xb), sample_weight=jnp.ones(B))
    new = _update(state, jnp.asarray(xb), jnp.ones(B), jax.random.key(0))
    counts = np.asarray(new.counts)
    # The far centre won no point (count 0 < r · max) and moved onto a batch row ...
    assert float(plain.counts[-1]) == 0.0
    assert any(np.array_equal(np.asarray(new.centroids[-1]), row) for row in xb)
    # ... its count reset to the smallest count of the others; the others are untouched.
    assert counts[-1] == counts[:-1].min() > 0
    np.testing.assert_array_equal(new.centroids[:-1], plain.centroids[:-1])
    np.testing.assert_array_equal(counts[:-1], np.asarray(plain.counts)[:-1])
    assert float(new.samples_since_reassign) == 0.0  # the zero counts triggered it


def test_reassignment_draw_is_uniform_over_batch_rows():
    xb = _batches(1, seed=5)[0]
    state = _state(FAR)
    picks = []
    for seed in range(240):
        new = _update(state, jnp.asarray(xb), jnp.ones(B), jax.random.key(seed))
        moved = np.asarray(new.centroids[-1])
        picks.append(int(np.flatnonzero((xb == moved).all(1))[0]))
    freq = np.bincount(picks, minlength=B)
    # Uniform over 48 rows: mean index 23.5 with standard error ~0.9; all rows appear at ~5 each.
    assert abs(np.mean(picks) - (B - 1) / 2) < 4 * np.sqrt((B**2 - 1) / 12 / len(picks))
    assert (freq > 0).sum() >= 40
    # A chi-square test at a generous level.
    chi2 = ((freq - len(picks) / B) ** 2 / (len(picks) / B)).sum()
    assert chi2 < 90  # 47 degrees of freedom: P(chi2 > 90) < 1e-4


def test_at_most_half_the_batch_moves_to_distinct_rows():
    xb = _batches(1, seed=6)[0]
    w = np.zeros(B)
    w[[3, 10, 20, 33, 40]] = 1.0  # 5 positive-weight rows: at most floor(5 / 2) = 2 centres move
    # Two centres on positive rows (so both win points) and four far away that win none.
    far4 = np.vstack([xb[[3, 40]], 1e3 + np.arange(4)[:, None] * np.ones((4, D))])
    state = _state(far4)
    for seed in range(5):
        new = _update(state, jnp.asarray(xb), jnp.asarray(w), jax.random.key(seed))
        moved = ~np.all(np.asarray(new.centroids) == np.asarray(state.centroids), axis=1)
        moved[:2] = False  # the two near centres moved by the regular update
        assert moved.sum() == 2 and moved[2:4].all()  # lowest counts first, ties by index
        rows = [int(np.flatnonzero((xb == c).all(1))[0]) for c in np.asarray(new.centroids)[moved]]
        assert len(set(rows)) == 2 and all(w[r] > 0 for r in rows)


def test_trigger_waits_for_ten_k_samples():
    low = np.full(K, 100.0)
    low[-1] = 0.5  # below 0.01 · max, but no count is 0
    # 0 + 48 < 10·k = 60 since the last trigger: nothing moves.
    quiet = _update(_state(FAR, counts=low), jnp.asarray(X[:B]), jnp.ones(B), jax.random.key(0))
    np.testing.assert_array_equal(quiet.centroids[-1], FAR[-1])
    assert float(quiet.samples_since_reassign) == B and float(quiet.counts[-1]) == 0.5
    # 20 + 48 >= 60: the low-count centre moves and the counter restarts.
    state = _state(FAR, counts=low, samples_since_reassign=20.0)
    fired = _update(state, jnp.asarray(X[:B]), jnp.ones(B), jax.random.key(0))
    assert float(fired.samples_since_reassign) == 0.0
    assert np.abs(np.asarray(fired.centroids[-1])).max() < 100
    assert float(fired.counts[-1]) == float(fired.counts[:-1].min())


# ------------------------------------------------------------------------------------------------
# (d) no retrace.


def test_update_jit_no_retrace():
    # _update is wrapped in chex.assert_max_traces(n=1); states fed back must not retrace it.
    state = minibatch_init(jnp.asarray(X), k=K, init=jnp.asarray(INIT))
    for seed, xb in enumerate(_batches(3, seed=7)):
        state = _update(state, jnp.asarray(xb), jnp.ones(B), jax.random.key(seed))
    assert isinstance(state, KMeansState) and int(state.step) == 3
    assert state.step.dtype == jnp.int32 and state.no_improvement.dtype == jnp.int32


# ------------------------------------------------------------------------------------------------
# (e) shard_map over 8 devices == single device.


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


_STATE_SPECS = KMeansState(*([P()] * len(KMeansState._fields)))


def _sharded_update_fn(state, xb, w, key, ratio):
    return minibatch_update(
        state, xb, key=key, sample_weight=w, reassignment_ratio=ratio, num_samples=float(N),
        axis_name="data",
    )


# One compilation for both ratios: a traced reassignment_ratio keeps the reassignment code.
_sharded_update = jax.jit(
    jax.shard_map(
        _sharded_update_fn,
        mesh=_mesh(),
        in_specs=(_STATE_SPECS, P("data"), P("data"), P(), P()),
        out_specs=_STATE_SPECS,
    )
)


@pytest.mark.parametrize("ratio", [0.0, 0.01])
def test_shard_map_update_equals_single_device(ratio):
    state = _state(FAR)  # zero counts, so reassignment fires when it is on
    sharded = single = state
    w = jnp.asarray(np.random.default_rng(8).uniform(0.5, 2.0, B))
    for seed, xb in enumerate(_batches(3, seed=8)):
        xb, key = jnp.asarray(xb), jax.random.key(seed)
        if ratio == 0.0:
            single = _update_r0(single, xb, sample_weight=w)
        else:
            single = _update(single, xb, w, key)
        sharded = _sharded_update(sharded, xb, w, key, jnp.asarray(ratio))
        for a, b in zip(sharded, single):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    if ratio > 0:
        assert np.abs(np.asarray(single.centroids[-1])).max() < 100  # reassignment happened
    else:  # plain jit on a sharded batch (axis_name=None): XLA inserts the collectives
        xb = jnp.asarray(_batches(1, seed=8)[0])
        sharding = NamedSharding(_mesh(), P("data"))
        on_sharded = _update_r0(
            state, jax.device_put(xb, sharding), sample_weight=jax.device_put(w, sharding)
        )
        expected = _update_r0(state, xb, sample_weight=w)
        for a, b in zip(on_sharded, expected):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


_FIT = dict(k=K, init="random", batch_size=B, max_steps=60)  # init_size 3·48 < 600: subset seeding
_fit_single = jax.jit(lambda x, key, tol: minibatch_kmeans(x, key=key, tol=tol, **_FIT))


def test_shard_map_minibatch_kmeans_equals_single_device():
    mesh = _mesh()
    specs = KMeansResult(P(), P("data"), P(), P(), P(), P())
    fn = jax.jit(
        jax.shard_map(
            lambda x, key: minibatch_kmeans(x, key=key, axis_name="data", **_FIT),
            mesh=mesh,
            in_specs=(P("data"), P()),
            out_specs=specs,
        )
    )
    xs = jax.device_put(jnp.asarray(X), NamedSharding(mesh, P("data")))
    for seed in range(2):  # seed 1 reassigns centres during the run
        sharded = fn(xs, jax.random.key(seed))
        single = _fit_single(jnp.asarray(X), jax.random.key(seed), 0.0)
        np.testing.assert_allclose(sharded.centroids, single.centroids, rtol=1e-9, atol=1e-9)
        assert int(sharded.num_steps) == int(single.num_steps)
        np.testing.assert_array_equal(np.asarray(sharded.labels), np.asarray(single.labels))
        np.testing.assert_allclose(float(sharded.inertia), float(single.inertia), rtol=1e-10)
        assert bool(sharded.converged) == bool(single.converged)


def test_stopping_rules():
    steps = []
    for seed in range(3):
        result = _fit_single(jnp.asarray(X), jax.random.key(seed), 0.0)
        steps.append(int(result.num_steps))
        # converged exactly when the EWA rule stopped the run before max_steps
        assert bool(result.converged) == (steps[-1] < _FIT["max_steps"])
    assert min(steps) > 11 and max(steps) == _FIT["max_steps"]  # both outcomes occur
    # A centre-shift tolerance far above any shift stops at the first batch where it is checked
    # (scikit-learn skips the first batch).
    loose = _fit_single(jnp.asarray(X), jax.random.key(0), 1e6)
    assert int(loose.num_steps) == 2 and bool(loose.converged)


def test_weighted_batch_sampling_is_global_and_proportional():
    # Row i holds the value i, so a drawn row names its index.
    rows = jnp.arange(N, dtype=jnp.float64)[:, None]
    w = np.random.default_rng(12).uniform(0.0, 2.0, N)
    w[::5] = 0.0
    num = 6000
    # NumPy reference: inverse CDF of the same uniform numbers (scikit-learn's rule, p ∝ w).
    u = np.asarray(jax.random.uniform(jax.random.key(0), (num,), jnp.float64))
    expected_idx = np.searchsorted(np.cumsum(w), u * w.sum(), side="right")
    mesh = _mesh()
    sharded = jax.jit(
        jax.shard_map(
            lambda r, w, key: _minibatch._make_sampler(r, w, "data")(key, num),
            mesh=mesh,
            in_specs=(P("data"), P("data"), P()),
            out_specs=P(),
        )
    )(rows, jnp.asarray(w), jax.random.key(0))
    idx = np.asarray(sharded[:, 0]).astype(int)
    assert (idx != expected_idx).mean() < 1e-3  # equal up to rounding of the cumulative sums
    assert not np.isin(idx, np.arange(0, N, 5)).any()  # zero weight: never drawn
    # Proportional to w: compare the weight-binned frequencies (10 bins of rows).
    freq = np.bincount(idx // 60, minlength=10) / num
    expected = np.add.reduceat(w, np.arange(0, N, 60)) / w.sum()
    np.testing.assert_allclose(freq, expected, atol=0.025)


def test_dtypes_and_vmap_by_tracing():
    # jax.eval_shape traces without compiling: the loop carry must keep the compute dtype.
    key = jax.random.key(0)
    for dtype, expected in [(jnp.float32, jnp.float32), (jnp.float16, jnp.float32)]:
        x = jax.ShapeDtypeStruct((N, D), dtype)
        out = jax.eval_shape(lambda x, key: minibatch_kmeans(x, k=K, key=key, batch_size=B), x, key)
        assert out.centroids.dtype == expected and out.labels.dtype == jnp.int32
        assert out.num_steps.dtype == jnp.int32 and out.converged.dtype == jnp.bool_
    keys = jax.random.split(key, 3)
    out = jax.eval_shape(jax.vmap(lambda key: minibatch_kmeans(jnp.asarray(X), k=K, key=key)), keys)
    assert out.centroids.shape == (3, K, D) and out.labels.shape == (3, N)


# ------------------------------------------------------------------------------------------------
# (f) streaming: a Python loop over a jitted update reproduces minibatch_kmeans.


_init_stream = jax.jit(
    lambda x, key: minibatch_init(x, k=K, key=key, init="random", init_size=3 * B)
)


def test_streaming_loop_equals_minibatch_kmeans():
    key = jax.random.key(11)
    result = _fit_single(jnp.asarray(X), key, 0.0)
    # The same batches: minibatch_kmeans splits its key into a seeding and a loop key, and draws
    # batch t and its reassignment key from fold_in(loop key, t).
    init_key, loop_key = jax.random.split(key)
    sample = jax.jit(_minibatch._make_sampler(jnp.asarray(X), None, None), static_argnums=1)
    state = _init_stream(jnp.asarray(X), init_key)
    while int(state.step) < _FIT["max_steps"]:
        batch_key, update_key = _minibatch._step_keys(loop_key, state.step)
        state = _update(state, sample(batch_key, B), jnp.ones(B), update_key)
        if int(state.step) > 1 and int(state.no_improvement) >= 10:  # max_no_improvement
            break
    assert int(state.step) == int(result.num_steps)
    np.testing.assert_allclose(np.asarray(state.centroids), result.centroids, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# (g) bad input.


class TestBadInput:
    x = jnp.ones((10, 2))
    state = minibatch_init(jnp.ones((10, 2)), k=2, init=jnp.zeros((2, 2)))

    def test_nan_batch(self):
        with pytest.raises(ValueError, match="x_batch contains 1 NaN or Inf"):
            minibatch_update(self.state, self.x.at[3, 1].set(jnp.nan), key=jax.random.key(0))

    def test_batch_rank(self):
        msg = r"x_batch must have rank 2 with shape \[n, d\], got shape \(10,\)"
        with pytest.raises(ValueError, match=msg):
            minibatch_update(self.state, jnp.ones(10), key=jax.random.key(0))

    def test_batch_dimension_mismatch(self):
        msg = r"x_batch must have shape \[n, d\] with d=2 to match state.centroids, got shape"
        msg += r" \(10, 3\)"
        with pytest.raises(ValueError, match=msg):
            minibatch_update(self.state, jnp.ones((10, 3)), key=jax.random.key(0))

    def test_empty_batch(self):
        with pytest.raises(ValueError, match="x_batch must have at least one row"):
            minibatch_update(self.state, jnp.ones((0, 2)), key=jax.random.key(0))

    def test_integer_dtype(self):
        with pytest.raises(TypeError, match="x_batch must have a floating-point dtype"):
            minibatch_update(self.state, jnp.ones((10, 2), jnp.int32), key=jax.random.key(0))
        with pytest.raises(TypeError, match="x must have a floating-point dtype"):
            minibatch_kmeans(jnp.ones((10, 2), jnp.int32), k=2, key=jax.random.key(0))

    def test_k_larger_than_n(self):
        with pytest.raises(ValueError, match="k must be <= the number of samples n=10, got k=11"):
            minibatch_kmeans(self.x, k=11, key=jax.random.key(0))
        with pytest.raises(ValueError, match="k must be <= the number of samples n=10"):
            minibatch_init(self.x, k=11, key=jax.random.key(0))

    @pytest.mark.parametrize("batch_size", [0, -3])
    def test_batch_size_below_one(self, batch_size):
        with pytest.raises(ValueError, match=f"batch_size must be >= 1, got {batch_size}"):
            minibatch_kmeans(self.x, k=2, key=jax.random.key(0), batch_size=batch_size)

    def test_negative_reassignment_ratio(self):
        msg = "reassignment_ratio must be a finite number >= 0, got -0.1"
        with pytest.raises(ValueError, match=msg):
            minibatch_update(self.state, self.x, key=jax.random.key(0), reassignment_ratio=-0.1)
        with pytest.raises(ValueError, match=msg):
            minibatch_kmeans(self.x, k=2, key=jax.random.key(0), reassignment_ratio=-0.1)

    def test_missing_key(self):
        with pytest.raises(ValueError, match="key is required when reassignment_ratio > 0"):
            minibatch_update(self.state, self.x)
        with pytest.raises(ValueError, match="key is required"):
            minibatch_kmeans(self.x, k=2, key=None)
        with pytest.raises(ValueError, match="key is required when init='k-means\\+\\+'"):
            minibatch_init(self.x, k=2)

    def test_negative_sample_weight(self):
        with pytest.raises(ValueError, match="sample_weight must be non-negative"):
            minibatch_update(
                self.state, self.x, reassignment_ratio=0.0, sample_weight=-jnp.ones(10)
            )

    def test_sample_weight_length(self):
        with pytest.raises(ValueError, match="x_batch and sample_weight must have the same length"):
            minibatch_update(self.state, self.x, reassignment_ratio=0.0, sample_weight=jnp.ones(9))

    def test_init_size_below_k(self):
        with pytest.raises(ValueError, match="init_size must be >= k=3"):
            minibatch_init(self.x, k=3, key=jax.random.key(0), init_size=2)

    def test_init_shape(self):
        msg = r"init must have shape \[k, d\] = \(2, 2\), got \(3, 2\)"
        with pytest.raises(ValueError, match=msg):
            minibatch_kmeans(self.x, k=2, key=jax.random.key(0), init=jnp.ones((3, 2)))

    def test_unknown_init(self):
        with pytest.raises(ValueError, match="init must be one of"):
            minibatch_init(self.x, k=2, key=jax.random.key(0), init="kmeans||")

    def test_negative_max_no_improvement(self):
        with pytest.raises(ValueError, match="max_no_improvement must be >= 0, got -1"):
            minibatch_kmeans(self.x, k=2, key=jax.random.key(0), max_no_improvement=-1)

    def test_negative_tol(self):
        with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
            minibatch_kmeans(self.x, k=2, key=jax.random.key(0), tol=-1.0)
