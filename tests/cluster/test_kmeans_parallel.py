"""Tests for k-means|| seeding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.datasets import load_digits, make_blobs

from jaxclust.cluster import KMeansResult, kmeans, kmeans_parallel


def _potential(x, centres):
    return ((x[:, None] - np.asarray(centres)[None]) ** 2).sum(-1).min(1).sum()


def test_seeding_quality_matches_kmeans_plusplus():
    x = load_digits().data[:1000].astype(np.float64)
    k = 10
    keys = jax.random.split(jax.random.key(0), 20)
    ours = jax.jit(jax.vmap(lambda key: kmeans_parallel(jnp.asarray(x), k=k, key=key)))(keys)
    ours = np.array([_potential(x, c) for c in ours])
    rs = np.random.RandomState(0)
    pp = np.array([_potential(x, sk_kmeans_plusplus(x, k, random_state=rs)[0]) for _ in range(20)])
    # Bahmani et al. report k-means|| seeds at least as good as k-means++ ones.
    assert ours.mean() <= 1.05 * pp.mean()


def test_finds_well_separated_blobs():
    x, y = make_blobs(3000, n_features=5, centers=12, cluster_std=0.3, random_state=1)
    centres = np.asarray(kmeans_parallel(jnp.asarray(x), k=12, key=jax.random.key(3)))
    labels = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    # one seed per blob: each true cluster maps to exactly one seed
    assert len({(a, b) for a, b in zip(y, labels)}) == 12


def test_as_kmeans_init_and_weights():
    x, _ = make_blobs(800, n_features=3, centers=6, random_state=2)
    w = np.zeros(len(x))
    w[::3] = 1.0
    allowed = x[::3]
    result = kmeans(jnp.asarray(x), k=6, key=jax.random.key(0), init="k-means||", sample_weight=jnp.asarray(w))
    assert bool(result.converged)
    c = np.asarray(kmeans_parallel(jnp.asarray(x), k=6, key=jax.random.key(0), sample_weight=jnp.asarray(w), refine_steps=0))
    assert all(np.isclose(allowed, row).all(1).any() for row in c)


def test_shard_map():
    x, _ = make_blobs(1600, n_features=4, centers=8, cluster_std=0.4, random_state=4)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    xs = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
    fn = jax.jit(
        jax.shard_map(
            lambda x, key: kmeans(x, k=8, key=key, init="k-means||", axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P()),
            out_specs=KMeansResult(P(), P("data"), P(), P(), P(), P()),
        )
    )
    sharded = min(float(fn(xs, jax.random.key(s)).inertia) for s in range(3))
    single = min(float(kmeans(jnp.asarray(x), k=8, key=jax.random.key(s)).inertia) for s in range(3))
    np.testing.assert_allclose(sharded, single, rtol=1e-6)


def test_bad_input():
    x = jnp.ones((50, 2))
    with pytest.raises(ValueError, match="fewer than k=40"):
        kmeans_parallel(x, k=40, key=jax.random.key(0), rounds=1, oversampling=0.5)
    with pytest.raises(ValueError, match="oversampling must be > 0"):
        kmeans_parallel(x, k=4, key=jax.random.key(0), oversampling=0.0)
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        kmeans_parallel(x, k=4, key=jax.random.key(0), rounds=0)
