"""Tests for balanced k-means against POT Sinkhorn + exact linear assignment."""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
import scipy.optimize
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.assign import hard_assign
from jaxclust.cluster import BalancedKMeansResult, balanced_kmeans, kmeans
from jaxclust.data import make_blobs


def _sqdist(x, c):
    return ((x[:, None, :] - c[None]) ** 2).sum(-1)


def _exact_balanced_labels(cost, counts):
    """Optimal equal-size assignment: LSA on the cost with column j replicated counts[j] times."""
    cols = np.repeat(np.arange(len(counts)), counts)
    rows, assigned = scipy.optimize.linear_sum_assignment(cost[:, cols])
    labels = np.empty(cost.shape[0], int)
    labels[rows] = cols[assigned]
    return labels


def _reference(x, init, steps, epsilon, mass):
    """METHODS.md §1.3 transcribed with POT's log-domain Sinkhorn, then exact rounding."""
    c = init.copy()
    a = np.full(len(x), 1.0 / len(x))
    for _ in range(steps):
        cost = _sqdist(x, c)
        cost = cost / cost.mean()
        p = ot.sinkhorn(a, mass, cost, epsilon, method="sinkhorn_log", numItermax=100000,
                        stopThr=1e-12)
        c = (p.T @ x) / p.sum(0)[:, None]
    return c


def test_matches_pot_sinkhorn_loop_and_exact_rounding():
    data = make_blobs(key=jax.random.key(0), n=120, k=4, d=3, cluster_std=1.0,
                      imbalance_ratio=3.0, dtype=jnp.float64)
    x = np.asarray(data.x)
    init = x[[0, 30, 60, 90]]
    mass = np.full(4, 0.25)
    res = balanced_kmeans(x, k=4, init=init, epsilon=0.05, max_steps=6, tol=0.0,
                          sinkhorn_tol=1e-11, sinkhorn_max_steps=20000)
    assert int(res.num_steps) == 6
    soft = _reference(x, init, 6, 0.05, mass)
    # Final plan at the reference centres, rounded by the (separately tested) greedy rounding.
    cost = _sqdist(x, soft)
    cost = cost / cost.mean()
    p = ot.sinkhorn(np.full(len(x), 1.0 / len(x)), mass, cost, 0.05, method="sinkhorn_log",
                    numItermax=100000, stopThr=1e-12)
    labels = np.asarray(hard_assign(jnp.asarray(p)))
    np.testing.assert_array_equal(np.asarray(res.labels), labels)
    hard = np.stack([x[labels == j].mean(0) for j in range(4)])
    np.testing.assert_allclose(np.asarray(res.centroids), hard, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(res.inertia), ((x - hard[labels]) ** 2).sum(), rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(res.counts), [30] * 4)
    assert bool(res.balanced) and bool(res.plan_converged)


def test_equal_sizes_versus_plain_kmeans_and_rounding_gap():
    data = make_blobs(key=jax.random.key(1), n=200, k=5, d=4, cluster_std=2.5,
                      imbalance_ratio=4.0, dtype=jnp.float64)
    x = np.asarray(data.x)
    key = jax.random.key(2)
    bal = balanced_kmeans(x, k=5, key=key, epsilon=0.02)
    plain = kmeans(x, k=5, key=key)
    np.testing.assert_array_equal(np.asarray(bal.counts), [40] * 5)
    assert np.ptp(np.asarray(plain.counts)) > 10  # the imbalanced data is not split evenly by k-means
    # Balance costs inertia: the constrained optimum cannot beat the unconstrained local optimum
    # here by more than rounding noise, and greedy rounding is within 2% of exact rounding.
    assert float(bal.inertia) >= 0.99 * float(plain.inertia)
    cost = _sqdist(x, np.asarray(bal.centroids))
    exact = _exact_balanced_labels(cost, [40] * 5)
    greedy_obj = cost[np.arange(200), np.asarray(bal.labels)].sum()
    exact_obj = cost[np.arange(200), exact].sum()
    assert greedy_obj <= 1.02 * exact_obj, (greedy_obj, exact_obj)


def test_prescribed_sizes_argmax_and_jit():
    x = np.random.default_rng(3).normal(size=(90, 3))
    mass = np.array([1.0, 2.0, 3.0])
    res = balanced_kmeans(x, k=3, key=jax.random.key(0), column_mass=mass)
    np.testing.assert_array_equal(np.asarray(res.counts), [15, 30, 45])
    assert bool(res.balanced)
    fn = jax.jit(lambda x, key: balanced_kmeans(x, k=3, key=key, column_mass=mass))
    jitted = fn(x, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(jitted.labels), np.asarray(res.labels))
    loose = balanced_kmeans(x, k=3, key=jax.random.key(0), rounding="argmax")
    assert bool(loose.balanced) == bool(np.all(np.asarray(loose.counts) == 30))
    assert np.all(np.isfinite(np.asarray(loose.centroids)))


def test_shard_map_equals_single_device():
    data = make_blobs(key=jax.random.key(4), n=128, k=4, d=3, dtype=jnp.float64)
    x = np.asarray(data.x)
    init = x[:4]
    single = balanced_kmeans(x, k=4, init=init, sinkhorn_tol=1e-10)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    specs = BalancedKMeansResult(P(), P("data"), *(P(),) * 6)
    sharded = jax.jit(jax.shard_map(
        lambda x: balanced_kmeans(x, k=4, init=init, sinkhorn_tol=1e-10, axis_name="data"),
        mesh=mesh, in_specs=P("data"), out_specs=specs,
    ))(jax.device_put(x, NamedSharding(mesh, P("data"))))
    np.testing.assert_array_equal(np.asarray(sharded.labels), np.asarray(single.labels))
    np.testing.assert_allclose(np.asarray(sharded.centroids), np.asarray(single.centroids),
                               rtol=1e-8, atol=1e-8)
    assert int(sharded.num_steps) == int(single.num_steps)
    assert bool(sharded.balanced)


def test_bad_input():
    x = np.zeros((10, 2)) + np.arange(10)[:, None]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="rounding"):
        balanced_kmeans(x, k=2, key=key, rounding="exact")
    with pytest.raises(ValueError, match="column_mass must have shape"):
        balanced_kmeans(x, k=2, key=key, column_mass=np.ones(3))
    with pytest.raises(ValueError, match="strictly positive"):
        balanced_kmeans(x, k=2, key=key, column_mass=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        balanced_kmeans(x, k=2, key=key, epsilon=0.0)
    with pytest.raises(ValueError, match="key is required"):
        balanced_kmeans(x, k=2)
    with pytest.raises(ValueError, match="k"):
        balanced_kmeans(x, k=11, key=key)
    with pytest.raises(ValueError, match="x"):
        balanced_kmeans(x[0], k=2, key=key)
