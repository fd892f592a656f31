"""Tests for jaxclust.cluster.knn against scikit-learn and brute-force NumPy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.neighbors import NearestNeighbors

from jaxclust.cluster import KNNResult, knn

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(240, 5))


def _brute(x, k, metric="sqeuclidean", exclude_self=True, valid=None):
    """Independent float64 NumPy reference: full score matrix and a stable argsort."""
    x = np.asarray(x, np.float64)
    if metric == "cosine":
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        scores = u @ u.T
    else:
        scores = -((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(scores, -np.inf)
    if valid is not None:
        scores[:, ~valid] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    return order, (top if metric == "cosine" else -top)


def test_matches_sklearn():
    dist, idx = NearestNeighbors(n_neighbors=6).fit(X).kneighbors()
    result = knn(jnp.asarray(X), k=6)
    assert isinstance(result, KNNResult)
    assert result.indices.dtype == jnp.int32 and result.indices.shape == (240, 6)
    np.testing.assert_array_equal(np.asarray(result.indices), idx)
    np.testing.assert_allclose(np.asarray(result.values), dist**2, rtol=1e-10, atol=1e-12)


def test_cosine_and_include_self_match_brute_force():
    for metric in ("cosine", "sqeuclidean"):
        idx, vals = _brute(X, 5, metric, exclude_self=False)
        result = knn(jnp.asarray(X), k=5, metric=metric, exclude_self=False)
        np.testing.assert_array_equal(np.asarray(result.indices), idx)
        np.testing.assert_allclose(np.asarray(result.values), vals, rtol=1e-10, atol=1e-12)
    # With the self included, each row's nearest neighbour is itself.
    np.testing.assert_array_equal(np.asarray(result.indices[:, 0]), np.arange(len(X)))
    dist, nn = NearestNeighbors(n_neighbors=4, metric="cosine").fit(X).kneighbors()
    cos = knn(jnp.asarray(X), k=4, metric="cosine")
    np.testing.assert_array_equal(np.asarray(cos.indices), nn)
    np.testing.assert_allclose(np.asarray(cos.values), 1.0 - dist, atol=1e-10)


def test_float32_and_large_offset():
    x = (X + 1e3).astype(np.float32)  # centring keeps the expansion accurate
    idx, _ = _brute(X, 3)
    result = knn(jnp.asarray(x), k=3)
    assert result.values.dtype == jnp.float32
    assert (np.asarray(result.indices) == idx).mean() > 0.98


@pytest.mark.parametrize("block_size", [1, 17, 1000])
def test_blocks_equal_unblocked(block_size):
    whole = knn(jnp.asarray(X), k=4, block_size=10**6)
    blocked = knn(jnp.asarray(X), k=4, block_size=block_size)
    np.testing.assert_array_equal(np.asarray(blocked.indices), np.asarray(whole.indices))
    # Different GEMM shapes may round differently in the last bit.
    np.testing.assert_allclose(np.asarray(blocked.values), np.asarray(whole.values), rtol=1e-12)


def test_where_masks_database_and_queries():
    valid = _RNG.uniform(size=len(X)) > 0.3
    result = knn(jnp.asarray(X), k=4, where=jnp.asarray(valid), block_size=50)
    idx, vals = _brute(X, 4, valid=valid)
    np.testing.assert_array_equal(np.asarray(result.indices)[valid], idx[valid])
    np.testing.assert_allclose(np.asarray(result.values)[valid], vals[valid], rtol=1e-10)
    assert (np.asarray(result.indices)[~valid] == -1).all()
    assert np.isposinf(np.asarray(result.values)[~valid]).all()
    # masked == sliced, up to the index map of the kept rows
    sliced = knn(jnp.asarray(X[valid]), k=4)
    kept = np.flatnonzero(valid)
    np.testing.assert_array_equal(kept[np.asarray(sliced.indices)], np.asarray(result.indices)[valid])


def test_too_few_valid_rows_gives_sentinels():
    valid = np.zeros(len(X), bool)
    valid[:3] = True
    result = knn(jnp.asarray(X), k=4, where=jnp.asarray(valid), metric="cosine")
    idx = np.asarray(result.indices)
    vals = np.asarray(result.values)
    assert (idx[:3, 2:] == -1).all() and np.isneginf(vals[:3, 2:]).all()
    assert set(idx[0, :2]) == {1, 2}
    assert (idx[3:] == -1).all() and np.isneginf(vals[3:]).all()


def test_jit_no_retrace():
    fn = jax.jit(chex.assert_max_traces(lambda x: knn(x, k=3, block_size=32), n=1))
    a = fn(jnp.asarray(X))
    b = fn(jnp.asarray(X[::-1].copy()))
    np.testing.assert_array_equal(np.asarray(a.indices), _brute(X, 3)[0])
    np.testing.assert_array_equal(np.asarray(b.indices), _brute(X[::-1], 3)[0])


def test_values_are_differentiable():
    # The value of a fixed neighbour is a smooth function of x; compare with the formula.
    def total(x):
        return jnp.sum(knn(x, k=2).values)

    grad = jax.grad(total)(jnp.asarray(X[:20]))
    idx = np.asarray(knn(jnp.asarray(X[:20]), k=2).indices)
    ref = np.zeros((20, 5))
    for i in range(20):
        for j in idx[i]:
            ref[i] += 2 * (X[i] - X[j])
            ref[j] -= 2 * (X[i] - X[j])
    np.testing.assert_allclose(np.asarray(grad), ref, rtol=1e-8, atol=1e-10)


def _mesh(axis_type=AxisType.Auto):
    return jax.make_mesh((8,), ("data",), axis_types=(axis_type,))


def test_shard_map_equals_single_device():
    mesh = _mesh()
    valid = _RNG.uniform(size=len(X)) > 0.2
    fn = jax.jit(
        jax.shard_map(
            lambda x, w: knn(x, k=5, where=w, block_size=7, axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P("data")),
            out_specs=KNNResult(P("data"), P("data")),
        )
    )
    xs = jax.device_put(jnp.asarray(X), NamedSharding(mesh, P("data")))
    sharded = fn(xs, jnp.asarray(valid))
    single = knn(jnp.asarray(X), k=5, where=jnp.asarray(valid))
    np.testing.assert_array_equal(np.asarray(sharded.indices), np.asarray(single.indices))
    np.testing.assert_allclose(np.asarray(sharded.values), np.asarray(single.values), rtol=1e-12)


def test_jit_on_explicitly_sharded_input():
    mesh = _mesh(AxisType.Explicit)
    xs = jax.device_put(jnp.asarray(X), NamedSharding(mesh, P("data")))
    with jax.set_mesh(mesh):
        result = jax.jit(lambda x: knn(x, k=3, metric="cosine"))(xs)
    np.testing.assert_array_equal(np.asarray(result.indices), _brute(X, 3, "cosine")[0])


class TestBadInput:
    def test_k_too_large(self):
        with pytest.raises(ValueError, match="k must be <= 239"):
            knn(jnp.asarray(X), k=240)
        knn(jnp.asarray(X[:5]), k=5, exclude_self=False)

    def test_k_not_int(self):
        with pytest.raises(TypeError, match="k must be a Python int"):
            knn(jnp.asarray(X), k=2.0)

    def test_rank(self):
        with pytest.raises(ValueError, match=r"x must have rank 2"):
            knn(jnp.asarray(X[0]), k=2)

    def test_integer_dtype(self):
        with pytest.raises(TypeError, match="floating-point dtype"):
            knn(jnp.arange(10).reshape(5, 2), k=2)

    def test_nan(self):
        with pytest.raises(ValueError, match="NaN or Inf"):
            knn(jnp.asarray(X).at[0, 0].set(jnp.nan), k=2)

    def test_metric(self):
        with pytest.raises(ValueError, match="metric must be one of"):
            knn(jnp.asarray(X), k=2, metric="manhattan")

    def test_where(self):
        with pytest.raises(ValueError, match="where and x must have the same length"):
            knn(jnp.asarray(X), k=2, where=jnp.ones(3, bool))
        with pytest.raises(TypeError, match="where must be a boolean mask"):
            knn(jnp.asarray(X), k=2, where=jnp.ones(len(X)))

    def test_block_size(self):
        with pytest.raises(ValueError, match="block_size must be >= 1"):
            knn(jnp.asarray(X), k=2, block_size=0)
