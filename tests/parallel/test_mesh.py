"""Tests for jaxclust.parallel.make_mesh and shard_rows on the 8 simulated CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.cluster import kmeans
from jaxclust.parallel import make_mesh, shard_rows


def _blobs(n=701, d=8, k=10, seed=1):
    """Overlapping Gaussian blobs, so Lloyd takes several steps (NumPy only: fast to build).

    The shapes are those of the two-process test's data, so in one pytest process the eager
    k-means there reuses the executables compiled here.
    """
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.normal(size=(k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize(
    "axes, expected",
    [
        ((("data", -1),), {"data": 8}),
        ((("data", 8),), {"data": 8}),
        ((("data", -1), ("model", 2)), {"data": 4, "model": 2}),
        ((("data", 2), ("model", -1)), {"data": 2, "model": 4}),
        ((("data", 2), ("model", 4)), {"data": 2, "model": 4}),
    ],
)
def test_make_mesh_sizes(axes, expected):
    mesh = make_mesh(axes)
    assert dict(mesh.shape) == expected
    assert mesh.axis_names == tuple(expected)
    assert mesh.axis_types == (AxisType.Auto,) * len(expected)
    assert sorted(d.id for d in mesh.devices.flat) == sorted(d.id for d in jax.devices())


def test_make_mesh_default_and_device_subset():
    assert dict(make_mesh().shape) == {"data": 8}
    devices = jax.devices()[:4]
    mesh = make_mesh((("data", -1),), devices=devices)
    assert dict(mesh.shape) == {"data": 4}
    assert list(mesh.devices.flat) == devices


@pytest.mark.parametrize(
    "axes, fragment",
    [
        ((("data", -1), ("model", -1)), "at most one size of -1"),
        ((("data", -1), ("model", 3)), "do not divide the 8 devices"),
        ((("data", 3),), "multiply to 3, but there are 8 devices"),
        ((("data", 4), ("model", 4)), "multiply to 16, but there are 8 devices"),
    ],
)
def test_make_mesh_bad_axes(axes, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_mesh(axes)


@pytest.mark.parametrize("n", [1, 8, 13, 16])
def test_shard_rows_pads_and_masks(n):
    mesh = make_mesh()
    x = np.arange(3.0 * n).reshape(n, 3) + 1.0
    xs, mask = shard_rows(x, mesh)
    padded = -(-n // 8) * 8
    assert xs.shape == (padded, 3) and mask.shape == (padded,)
    assert mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(mask), np.arange(padded) < n)
    np.testing.assert_array_equal(np.asarray(xs)[:n], x)
    np.testing.assert_array_equal(np.asarray(xs)[n:], 0.0)
    for a in (xs, mask):
        assert a.sharding == NamedSharding(mesh, P("data"))
        assert {s.data.shape[0] for s in a.addressable_shards} == {padded // 8}


def test_shard_rows_over_one_axis_of_a_2d_mesh():
    mesh = make_mesh((("data", 4), ("model", 2)))
    xs, mask = shard_rows(np.ones((6, 2)), mesh, axis="data")
    assert xs.shape == (8, 2) and int(mask.sum()) == 6
    assert xs.sharding.spec == P("data")
    xs, mask = shard_rows(np.ones((3, 2)), mesh, axis="model")
    assert xs.shape == (4, 2) and int(mask.sum()) == 3


def test_shard_rows_bad_axis():
    fragment = r"axis must be one of the mesh axes \('data',\), got 'rows'"
    with pytest.raises(ValueError, match=fragment):
        shard_rows(np.ones((4, 2)), make_mesh(), axis="rows")


def test_kmeans_on_padded_shards_equals_unpadded():
    x = _blobs()
    init = jnp.asarray(x[:10])
    plain = kmeans(jnp.asarray(x), k=10, init=init)
    xs, mask = shard_rows(x, make_mesh())
    assert xs.shape[0] > x.shape[0]  # 701 rows: padding is exercised
    sharded = jax.jit(lambda x, w: kmeans(x, k=10, init=init, sample_weight=w))(
        xs, mask.astype(xs.dtype)
    )
    assert sharded.labels.sharding.spec == P("data")
    np.testing.assert_array_equal(np.asarray(sharded.labels)[np.asarray(mask)], plain.labels)
    np.testing.assert_allclose(float(sharded.inertia), float(plain.inertia), rtol=1e-10)
    np.testing.assert_allclose(sharded.centroids, plain.centroids, rtol=1e-10, atol=1e-10)
    assert int(sharded.num_steps) == int(plain.num_steps) > 1
