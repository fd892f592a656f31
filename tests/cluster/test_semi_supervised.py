"""Tests for semi-supervised (novel-class-discovery) k-means against a NumPy brute force."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.cluster import SemiSupervisedKMeansResult, kmeans, semi_supervised_kmeans
from jaxclust.cluster._init import plusplus
from jaxclust.metrics import novel_class_accuracy


def _gcd_data(seed=0, n_per=60, k=6, d=4, num_known=3, frac=0.5):
    """Well-separated blobs; half of each known class is labelled, novel classes unlabelled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(k, d))
    y = np.repeat(np.arange(k), n_per)
    x = centres[y] + rng.normal(size=(k * n_per, d))
    labelled = (y < num_known) & (rng.random(k * n_per) < frac)
    return x, y, np.where(labelled, y, -1)


def _reference(x, labels, centroids, mode, max_steps=300):
    """Brute-force Lloyd with clamped labels (mode A/B of METHODS.md §1.4), tol = 0."""
    c = centroids.copy()
    num_known = labels.max() + 1
    labelled = labels >= 0
    prev = None
    for _ in range(max_steps):
        d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        assign = d.argmin(1)
        if mode == "clamp":
            assign = np.where(labelled, labels, assign)
            members = np.ones(len(x), bool)
        else:
            members = ~labelled
        if prev is not None and np.array_equal(assign[members], prev[members]):
            break
        new = c.copy()
        for j in range(c.shape[0]):
            if mode == "fixed" and j < num_known:
                continue
            sel = members & (assign == j)
            if sel.any():
                new[j] = x[sel].mean(0)
        c, prev = new, assign
    return c, np.where(labelled, labels, assign)


@pytest.mark.parametrize("mode", ["clamp", "fixed"])
def test_matches_numpy_brute_force(mode):
    x, y, labels = _gcd_data()
    key = jax.random.key(1)
    res = semi_supervised_kmeans(x, labels, k=6, key=key, mode=mode, tol=0.0)
    # Same seeding, recomputed by hand: class means, then k-means++ continued on unlabelled rows.
    means = np.stack([x[labels == j].mean(0) for j in range(3)])
    w_u = jnp.asarray(labels < 0, jnp.float64)
    init = np.asarray(plusplus(jnp.asarray(x), w_u, key, k=6, num_local_trials=2 + int(math.log(6)),
                               axis_name=None, known=jnp.asarray(means)))
    np.testing.assert_allclose(init[:3], means, rtol=1e-12)
    # Novel centres are unlabelled rows of x.
    for row in init[3:]:
        assert np.any(np.all(x[labels < 0] == row, axis=1))
    ref_c, ref_labels = _reference(x, labels, init, mode)
    np.testing.assert_array_equal(np.asarray(res.labels), ref_labels)
    np.testing.assert_allclose(np.asarray(res.centroids), ref_c, rtol=1e-10, atol=1e-10)
    assert bool(res.converged)
    dist = ((x - ref_c[ref_labels]) ** 2).sum(1)
    np.testing.assert_allclose(float(res.inertia), dist.sum(), rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(res.counts), np.bincount(ref_labels, minlength=6))
    np.testing.assert_array_equal(np.asarray(res.known), np.arange(6) < 3)
    if mode == "fixed":
        np.testing.assert_allclose(np.asarray(res.centroids)[:3], means, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(res.labels)[labels >= 0], labels[labels >= 0])


def test_without_labels_clamp_mode_is_kmeans_bit_for_bit(rng):
    x = rng.normal(size=(300, 5))
    key = jax.random.key(3)
    semi = semi_supervised_kmeans(x, -np.ones(300, np.int32), k=7, key=key)
    plain = kmeans(x, k=7, key=key)
    np.testing.assert_array_equal(np.asarray(semi.centroids), np.asarray(plain.centroids))
    np.testing.assert_array_equal(np.asarray(semi.labels), np.asarray(plain.labels))
    assert float(semi.inertia) == float(plain.inertia)
    assert int(semi.num_steps) == int(plain.num_steps)


@pytest.mark.parametrize("mode", ["clamp", "fixed"])
def test_discovers_novel_classes(mode):
    x, y, labels = _gcd_data(seed=2)
    res = semi_supervised_kmeans(x, labels, k=6, key=jax.random.key(0), mode=mode)
    acc = novel_class_accuracy(y, res.labels, num_known=3, num_classes=6, num_clusters=6)
    assert float(acc.known) == 1.0
    assert float(acc.novel) > 0.95
    assert float(acc.all) > 0.95


def test_jit_where_and_sharding():
    x, y, labels = _gcd_data(seed=4, n_per=64, k=4, num_known=2)
    key = jax.random.key(5)
    fn = jax.jit(lambda x, l, key: semi_supervised_kmeans(x, l, k=4, num_known=2, key=key))
    single = semi_supervised_kmeans(x, labels, k=4, key=key)
    jitted = fn(x, labels, key)
    np.testing.assert_array_equal(np.asarray(jitted.labels), np.asarray(single.labels))
    np.testing.assert_allclose(float(jitted.inertia), float(single.inertia), rtol=1e-10)

    # Padding rows masked out by ``where`` change nothing (same key, same seeding draws).
    pad = 16
    xp = np.concatenate([x, np.full((pad, x.shape[1]), 1e3)])
    lp = np.concatenate([labels, np.zeros(pad, np.int32)])
    mask = np.arange(len(xp)) < len(x)
    padded = semi_supervised_kmeans(xp, lp, k=4, key=key, where=mask)
    np.testing.assert_array_equal(np.asarray(padded.labels)[: len(x)], np.asarray(single.labels))
    assert np.all(np.asarray(padded.labels)[len(x):] == -1)
    np.testing.assert_allclose(float(padded.inertia), float(single.inertia), rtol=1e-10)

    # Sharded: class means, seeding and Lloyd sums are global.
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    specs = SemiSupervisedKMeansResult(P(), P("data"), P(), P(), P(), P(), P())
    sharded = jax.jit(jax.shard_map(
        lambda x, l: semi_supervised_kmeans(x, l, k=4, num_known=2, key=key, axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data")), out_specs=specs,
    ))(jax.device_put(x, NamedSharding(mesh, P("data"))), labels)
    acc = novel_class_accuracy(y, sharded.labels, num_known=2, num_classes=4, num_clusters=4)
    assert float(acc.all) > 0.95
    np.testing.assert_array_equal(np.asarray(sharded.labels)[labels >= 0], labels[labels >= 0])
    assert bool(sharded.converged)


def test_bad_input():
    x, _, labels = _gcd_data(n_per=10)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, num_known\)"):
        semi_supervised_kmeans(x, np.where(labels == 2, 5, labels), k=6, key=key, num_known=3)
    with pytest.raises(ValueError, match="class\\(es\\) \\[1\\]"):
        semi_supervised_kmeans(x, np.where(labels == 1, -1, labels), k=6, key=key, num_known=3)
    with pytest.raises(ValueError, match="k must be >= num_known=3"):
        semi_supervised_kmeans(x, labels, k=2, key=key)
    with pytest.raises(ValueError, match="mode"):
        semi_supervised_kmeans(x, labels, k=6, key=key, mode="soft")
    with pytest.raises(ValueError, match="num_known is required"):
        jax.jit(lambda l: semi_supervised_kmeans(x, l, k=6, key=key))(labels)
    with pytest.raises(TypeError, match="labels"):
        semi_supervised_kmeans(x, labels.astype(float), k=6, key=key)
    with pytest.raises(ValueError, match="labels"):
        semi_supervised_kmeans(x, labels[:-1], k=6, key=key)
    with pytest.raises(ValueError, match="key"):
        semi_supervised_kmeans(x, labels, k=6, key=None)
