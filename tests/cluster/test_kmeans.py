"""Tests for jaxclust.cluster.kmeans and kmeans_predict against scikit-learn and brute force."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs

from jaxclust.cluster import KMeansResult, kmeans, kmeans_predict


def _datasets():
    rng = np.random.default_rng(0)
    blobs, _ = make_blobs(500, n_features=5, centers=6, cluster_std=2.0, random_state=0)
    return {
        "digits": (load_digits().data.astype(np.float64), 10),
        "blobs": (blobs, 6),
        "uniform": (rng.uniform(size=(400, 3)), 7),
        "shifted": (rng.normal(size=(300, 4)) + 1e4, 4),  # large offset: tests centring
    }


DATASETS = _datasets()


def _sklearn(x, init, **kw):
    return KMeans(len(init), init=init, n_init=1, algorithm="lloyd", **kw).fit(x)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_matches_sklearn_from_same_init(name):
    x, k = DATASETS[name]
    init = x[np.random.default_rng(1).choice(len(x), k, replace=False)]
    ours = kmeans(jnp.asarray(x), k=k, init=jnp.asarray(init))
    ref = _sklearn(x, init)
    np.testing.assert_allclose(float(ours.inertia), ref.inertia_, rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    np.testing.assert_allclose(np.asarray(ours.centroids), ref.cluster_centers_, rtol=1e-7, atol=1e-7)
    assert int(ours.num_steps) == ref.n_iter_
    assert bool(ours.converged)
    assert ours.labels.dtype == jnp.int32


def test_matches_sklearn_float32():
    x, k = DATASETS["digits"]
    x32 = (x / 16).astype(np.float32)
    init = x32[:k]
    ours = kmeans(jnp.asarray(x32), k=k, init=jnp.asarray(init))
    ref = _sklearn(x32.astype(np.float64), init.astype(np.float64))
    assert ours.centroids.dtype == jnp.float32
    np.testing.assert_allclose(float(ours.inertia), ref.inertia_, rtol=1e-4)


def test_empty_clusters_relocated_like_sklearn():
    x, _ = DATASETS["digits"]
    init = np.repeat(x[:5], 2, axis=0)  # duplicated centres leave 5 clusters empty at step one
    ours = kmeans(jnp.asarray(x), k=10, init=jnp.asarray(init))
    ref = _sklearn(x, init)
    np.testing.assert_allclose(float(ours.inertia), ref.inertia_, rtol=1e-9)
    assert np.all(np.asarray(ours.counts) > 0)


def test_more_clusters_than_distinct_points_reports_empty():
    x = jnp.asarray(np.repeat(np.eye(3), 4, axis=0))
    result = kmeans(x, k=5, init=jnp.asarray(np.vstack([np.eye(3), np.eye(3)[:2] + 0.5])))
    counts = np.asarray(result.counts)
    assert np.isfinite(np.asarray(result.centroids)).all()
    assert (counts == 0).sum() == 2 and counts.sum() == 12
    assert float(result.inertia) == pytest.approx(0.0, abs=1e-12)


def test_sample_weight_matches_sklearn():
    x, k = DATASETS["blobs"]
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(x))
    init = x[:k]
    ours = kmeans(jnp.asarray(x), k=k, init=jnp.asarray(init), sample_weight=jnp.asarray(w))
    ref = KMeans(k, init=init, n_init=1, algorithm="lloyd").fit(x, sample_weight=w)
    np.testing.assert_allclose(float(ours.inertia), ref.inertia_, rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)


def test_integer_weights_equal_repeated_points():
    x, k = DATASETS["uniform"]
    reps = np.random.default_rng(3).integers(1, 4, len(x))
    init = x[:k]
    weighted = kmeans(jnp.asarray(x), k=k, init=jnp.asarray(init), sample_weight=jnp.asarray(reps, float))
    repeated = kmeans(jnp.asarray(np.repeat(x, reps, axis=0)), k=k, init=jnp.asarray(init))
    np.testing.assert_allclose(float(weighted.inertia), float(repeated.inertia), rtol=1e-10)
    np.testing.assert_allclose(weighted.centroids, repeated.centroids, rtol=1e-10)


def test_zero_weight_padding_is_exact():
    x, k = DATASETS["digits"]
    init = jnp.asarray(x[:k])
    plain = kmeans(jnp.asarray(x), k=k, init=init)
    padded_x = np.vstack([x, np.full((11, x.shape[1]), 99.0)])
    w = np.r_[np.ones(len(x)), np.zeros(11)]
    padded = kmeans(jnp.asarray(padded_x), k=k, init=init, sample_weight=jnp.asarray(w))
    np.testing.assert_array_equal(padded.labels[: len(x)], plain.labels)
    np.testing.assert_allclose(float(padded.inertia), float(plain.inertia), rtol=1e-12)
    assert int(padded.num_steps) == int(plain.num_steps)


def test_tol_and_max_steps():
    x, k = DATASETS["digits"]
    init = jnp.asarray(x[:k])
    capped = kmeans(jnp.asarray(x), k=k, init=init, max_steps=2)
    assert int(capped.num_steps) == 2 and not bool(capped.converged)
    ref = _sklearn(x, np.asarray(init), max_iter=2)
    np.testing.assert_allclose(float(capped.inertia), ref.inertia_, rtol=1e-9)
    loose = kmeans(jnp.asarray(x), k=k, init=init, tol=1.0)
    ref = _sklearn(x, np.asarray(init), tol=1.0)
    assert int(loose.num_steps) == ref.n_iter_ and bool(loose.converged)
    np.testing.assert_allclose(float(loose.inertia), ref.inertia_, rtol=1e-9)


def test_chunked_equals_unchunked():
    x, k = DATASETS["digits"]
    init = jnp.asarray(x[:k])
    full = kmeans(jnp.asarray(x), k=k, init=init)
    chunked = kmeans(jnp.asarray(x), k=k, init=init, distance_budget=7 * k + 3)  # 7 rows, ragged
    np.testing.assert_array_equal(full.labels, chunked.labels)
    np.testing.assert_allclose(float(full.inertia), float(chunked.inertia), rtol=1e-12)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeded_runs_are_deterministic_and_sensible(init):
    x, k = DATASETS["blobs"]
    a = kmeans(jnp.asarray(x), k=k, key=jax.random.key(5), init=init)
    b = kmeans(jnp.asarray(x), k=k, key=jax.random.key(5), init=init)
    np.testing.assert_array_equal(a.labels, b.labels)
    best_sklearn = KMeans(k, n_init=10, random_state=0).fit(x).inertia_
    assert float(a.inertia) <= 1.25 * best_sklearn


def test_jit_no_retrace():
    x, k = DATASETS["blobs"]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(x, key):
        return kmeans(x, k=k, key=key)

    for seed in range(3):
        result = run(jnp.asarray(x), jax.random.key(seed))
    assert isinstance(result, KMeansResult)


def test_vmap_over_keys():
    x, k = DATASETS["blobs"]
    keys = jax.random.split(jax.random.key(0), 3)
    results = jax.jit(jax.vmap(lambda key: kmeans(jnp.asarray(x), k=k, key=key)))(keys)
    assert results.labels.shape == (3, len(x))
    single = kmeans(jnp.asarray(x), k=k, key=keys[2])
    np.testing.assert_allclose(float(results.inertia[2]), float(single.inertia), rtol=1e-10)


def _mesh(axis_type=AxisType.Auto):
    return jax.make_mesh((8,), ("data",), axis_types=(axis_type,))


_SPECS = KMeansResult(P(), P("data"), P(), P(), P(), P())


@pytest.mark.parametrize("empty", [False, True])
def test_shard_map_equals_jit_on_sharded_equals_single_device(empty):
    x = jnp.asarray(DATASETS["digits"][0][:1600])
    init = jnp.repeat(x[:5], 2, axis=0) if empty else x[:10]
    single = kmeans(x, k=10, init=init)
    mesh = _mesh()
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    mapped = jax.jit(
        jax.shard_map(
            lambda x, c: kmeans(x, k=10, init=c, axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P()),
            out_specs=_SPECS,
        )
    )(xs, init)
    on_sharded = jax.jit(lambda x: kmeans(x, k=10, init=init))(xs)
    for other in (mapped, on_sharded):
        np.testing.assert_array_equal(np.asarray(other.labels), np.asarray(single.labels))
        np.testing.assert_allclose(float(other.inertia), float(single.inertia), rtol=1e-10)
        np.testing.assert_allclose(other.centroids, single.centroids, rtol=1e-9, atol=1e-9)
        assert int(other.num_steps) == int(single.num_steps)


@pytest.mark.parametrize("init", ["k-means++", "k-means||"])
def test_jit_on_explicitly_sharded_input(init):
    # jax.make_mesh's default axes are Explicit: kmeans then runs itself under shard_map.
    x = jnp.asarray(DATASETS["digits"][0][:1600])
    mesh = _mesh(AxisType.Explicit)
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    start = x[:10]
    with jax.set_mesh(mesh):
        from_init = jax.jit(lambda x: kmeans(x, k=10, init=start))(xs)
        seeded = jax.jit(lambda x, key: kmeans(x, k=10, key=key, init=init, n_init=2))(xs, jax.random.key(0))
    single = kmeans(x, k=10, init=start)
    np.testing.assert_array_equal(np.asarray(from_init.labels), np.asarray(single.labels))
    np.testing.assert_allclose(float(from_init.inertia), float(single.inertia), rtol=1e-10)
    d = ((np.asarray(x)[:, None] - np.asarray(seeded.centroids)[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(np.asarray(seeded.labels), d.argmin(1))
    assert bool(seeded.converged)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_shard_map_seeding_gives_good_clusterings(init):
    x, y = make_blobs(800, n_features=4, centers=5, cluster_std=0.5, random_state=3)
    mesh = _mesh()
    fn = jax.jit(
        jax.shard_map(
            lambda x, key: kmeans(x, k=5, key=key, init=init, axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P()),
            out_specs=_SPECS,
        )
    )
    xs = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
    sharded = [float(fn(xs, jax.random.key(s)).inertia) for s in range(4)]
    run_single = jax.jit(lambda x, key: kmeans(x, k=5, key=key, init=init))
    single = [float(run_single(jnp.asarray(x), jax.random.key(s)).inertia) for s in range(4)]
    # Same distribution of outcomes: on well-separated blobs the best of 4 restarts is the optimum.
    np.testing.assert_allclose(min(sharded), min(single), rtol=1e-9)


_jit_kmeans_from = jax.jit(lambda x, init: kmeans(x, k=init.shape[0], init=init))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), k=st.integers(1, 4), scale=st.floats(1e-3, 1e3))
def test_inertia_never_exceeds_initial_assignment(seed, k, scale):
    n = 40  # fixed shapes: one compilation per k
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) * scale
    init = x[rng.choice(n, k, replace=False)] + rng.normal(scale=0.1 * scale, size=(k, 2))
    d0 = ((x[:, None] - init[None]) ** 2).sum(-1).min(1).sum()
    result = _jit_kmeans_from(jnp.asarray(x), jnp.asarray(init))
    assert float(result.inertia) <= d0 * (1 + 1e-10)
    # Labels are the nearest centroids of the returned centres.
    d = ((x[:, None] - np.asarray(result.centroids)[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d[np.arange(n), np.asarray(result.labels)], d.min(1), rtol=1e-9)


def test_kmeans_predict_matches_brute_force(rng):
    x = rng.normal(size=(300, 6))
    c = rng.normal(size=(9, 6))
    expected = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(kmeans_predict(jnp.asarray(x), jnp.asarray(c)), expected)
    chunked = kmeans_predict(jnp.asarray(x), jnp.asarray(c), distance_budget=50)
    np.testing.assert_array_equal(chunked, expected)
    assert jax.jit(kmeans_predict)(jnp.asarray(x), jnp.asarray(c)).dtype == jnp.int32


class TestBadInput:
    x = jnp.ones((10, 2))

    def test_nan(self):
        with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
            kmeans(self.x.at[3, 1].set(jnp.nan), k=2, key=jax.random.key(0))

    def test_inf(self):
        with pytest.raises(ValueError, match="NaN or Inf"):
            kmeans(self.x.at[0, 0].set(jnp.inf), k=2, key=jax.random.key(0))

    @pytest.mark.parametrize("k", [0, -1])
    def test_k_too_small(self, k):
        with pytest.raises(ValueError, match="k must be >= 1"):
            kmeans(self.x, k=k, key=jax.random.key(0))

    def test_k_too_large(self):
        with pytest.raises(ValueError, match="k must be <= the number of samples n=10"):
            kmeans(self.x, k=11, key=jax.random.key(0))

    def test_k_not_int(self):
        with pytest.raises(TypeError, match="k must be a Python int"):
            kmeans(self.x, k=2.0, key=jax.random.key(0))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"x must have rank 2 with shape \[n, d\], got shape \(10,\)"):
            kmeans(jnp.ones(10), k=2, key=jax.random.key(0))

    def test_integer_dtype(self):
        with pytest.raises(TypeError, match="x must have a floating-point dtype"):
            kmeans(jnp.ones((10, 2), jnp.int32), k=2, key=jax.random.key(0))

    def test_sample_weight_length(self):
        with pytest.raises(ValueError, match="x and sample_weight must have the same length"):
            kmeans(self.x, k=2, key=jax.random.key(0), sample_weight=jnp.ones(9))

    def test_negative_weight(self):
        with pytest.raises(ValueError, match="sample_weight must be non-negative"):
            kmeans(self.x, k=2, key=jax.random.key(0), sample_weight=-jnp.ones(10))

    def test_init_shape(self):
        with pytest.raises(ValueError, match=r"init must have shape \[k, d\] = \(2, 2\), got \(3, 2\)"):
            kmeans(self.x, k=2, init=jnp.ones((3, 2)))

    def test_unknown_init(self):
        with pytest.raises(ValueError, match="init must be one of"):
            kmeans(self.x, k=2, init="kmeans||", key=jax.random.key(0))

    def test_missing_key(self):
        with pytest.raises(ValueError, match="key is required"):
            kmeans(self.x, k=2)

    def test_negative_tol(self):
        with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
            kmeans(self.x, k=2, key=jax.random.key(0), tol=-1.0)

    def test_predict_dimension_mismatch(self):
        with pytest.raises(ValueError, match="centroids must have shape"):
            kmeans_predict(self.x, jnp.ones((3, 5)))


def test_n_init_keeps_the_best_run():
    x, k = DATASETS["digits"]
    key = jax.random.key(7)
    best = kmeans(jnp.asarray(x), k=k, key=key, n_init=4)
    singles = [float(kmeans(jnp.asarray(x), k=k, key=kk).inertia) for kk in jax.random.split(key, 4)]
    np.testing.assert_allclose(float(best.inertia), min(singles), rtol=1e-12)
    d = ((x[:, None] - np.asarray(best.centroids)[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d[np.arange(len(x)), np.asarray(best.labels)].sum(), float(best.inertia), rtol=1e-9)


def test_n_init_with_array_init_is_an_error():
    with pytest.raises(ValueError, match="n_init must be 1 when init is an array"):
        kmeans(jnp.ones((4, 2)), k=2, init=jnp.ones((2, 2)), n_init=3)


def _spherical_reference(x, init, max_steps=300):
    """Float64 NumPy spherical k-means (Dhillon & Modha 2001) from the same initial centres."""
    xh = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = init / np.linalg.norm(init, axis=1, keepdims=True)
    labels = None
    for _ in range(max_steps):
        new_labels = np.argmax(xh @ c.T, axis=1)
        if labels is not None and (new_labels == labels).all():
            break
        labels = new_labels
        for j in range(len(c)):
            s = xh[labels == j].sum(0)
            if np.linalg.norm(s) > 0:
                c[j] = s / np.linalg.norm(s)
    labels = np.argmax(xh @ c.T, axis=1)
    return labels, c, (1 - (xh * c[labels]).sum(1)).sum()


def test_spherical_matches_reference():
    rng = np.random.default_rng(4)
    directions = rng.normal(size=(5, 8))
    x = np.repeat(directions, 60, axis=0) * rng.uniform(0.5, 3, (300, 1)) + rng.normal(scale=0.4, size=(300, 8))
    init = x[rng.choice(300, 5, replace=False)]
    labels, centres, inertia = _spherical_reference(x, init)
    ours = kmeans(jnp.asarray(x), k=5, init=jnp.asarray(init), spherical=True, tol=0.0)
    np.testing.assert_array_equal(np.asarray(ours.labels), labels)
    np.testing.assert_allclose(np.asarray(ours.centroids), centres, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(ours.centroids), axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(float(ours.inertia), inertia, rtol=1e-10)
    # Scale invariance: rescaling rows changes nothing.
    scaled = kmeans(jnp.asarray(x * rng.uniform(0.1, 10, (300, 1))), k=5, init=jnp.asarray(init), spherical=True, tol=0.0)
    np.testing.assert_array_equal(scaled.labels, ours.labels)


def test_spherical_seeded_and_zero_rows():
    x, k = DATASETS["blobs"]
    result = kmeans(jnp.asarray(x), k=k, key=jax.random.key(0), spherical=True)
    assert 0 <= float(result.inertia) <= 2 * len(x)
    with pytest.raises(ValueError, match="x has 1 row"):
        kmeans(jnp.asarray(x).at[3].set(0.0), k=k, key=jax.random.key(0), spherical=True)


def test_where_mask_equals_slicing_and_vmaps_over_padded_sets():
    rng = np.random.default_rng(5)
    lengths, n_max, k, d = [40, 17, 64], 64, 4, 3
    sets = rng.normal(size=(3, n_max, d)) + rng.integers(0, 3, (3, n_max, 1)) * 4.0
    where = np.arange(n_max)[None, :] < np.asarray(lengths)[:, None]
    inits = np.stack([s[:k] for s in sets])
    batched = jax.jit(jax.vmap(lambda x, m, c: kmeans(x, k=k, init=c, where=m)))(
        jnp.asarray(sets), jnp.asarray(where), jnp.asarray(inits)
    )
    for i, n in enumerate(lengths):
        alone = kmeans(jnp.asarray(sets[i, :n]), k=k, init=jnp.asarray(inits[i]))
        ref = KMeans(k, init=inits[i], n_init=1, algorithm="lloyd").fit(sets[i, :n])
        np.testing.assert_array_equal(np.asarray(batched.labels[i, :n]), np.asarray(alone.labels))
        np.testing.assert_array_equal(np.asarray(batched.labels[i, :n]), ref.labels_)
        assert (np.asarray(batched.labels[i, n:]) == -1).all()
        np.testing.assert_allclose(float(batched.inertia[i]), ref.inertia_, rtol=1e-9)
        assert int(batched.num_steps[i]) == int(alone.num_steps)


def test_where_bad_input():
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        kmeans(jnp.ones((4, 2)), k=2, key=jax.random.key(0), where=jnp.ones(4))
    with pytest.raises(ValueError, match="where and x must have the same length"):
        kmeans(jnp.ones((4, 2)), k=2, key=jax.random.key(0), where=jnp.ones(3, bool))
