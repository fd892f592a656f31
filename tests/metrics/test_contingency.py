"""Tests for jaxclust.metrics.contingency_matrix against scikit-learn and NumPy."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.metrics.cluster import contingency_matrix as sk_contingency

from jaxclust.metrics import contingency_matrix


def _numpy_table(t, p, r, c):
    table = np.zeros((r, c), np.int64)
    for a, b in zip(t, p):
        if 0 <= a < r and 0 <= b < c:
            table[a, b] += 1
    return table


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 40),
    r=st.integers(1, 6),
    c=st.integers(1, 6),
)
def test_matches_sklearn(seed, n, r, c):
    # Static shapes (40 samples, a 6 x 6 table) so one compilation serves every example: the
    # samples past n are -1 padding and the classes/clusters past r/c are empty.
    rng = np.random.default_rng(seed)
    t, p = rng.integers(0, r, n), rng.integers(0, c, n)
    tp, pp = np.full(40, -1), np.full(40, -1)
    tp[:n], pp[:n] = t, p
    ours = contingency_matrix(jnp.asarray(tp), jnp.asarray(pp), num_classes=6, num_clusters=6)
    ours = np.asarray(ours)
    # scikit-learn keeps only the labels present; ours has a row/column for every label < num.
    ref = sk_contingency(t, p)
    np.testing.assert_array_equal(ours[np.ix_(np.unique(t), np.unique(p))], ref)
    assert ours.sum() == n
    np.testing.assert_array_equal(ours, _numpy_table(t, p, 6, 6))


def test_dtype_and_shape():
    t, p = jnp.array([0, 1, 1]), jnp.array([2, 0, 0])
    table = contingency_matrix(t, p, num_classes=3, num_clusters=4)
    assert table.dtype == jnp.int32
    assert table.shape == (3, 4)
    np.testing.assert_array_equal(table, [[0, 0, 1, 0], [2, 0, 0, 0], [0, 0, 0, 0]])


def test_out_of_range_labels_are_dropped():
    t = np.array([0, -1, 1, 2, 5, 1, 2**40])
    p = np.array([1, 0, -3, 1, 0, 7, 0])
    table = contingency_matrix(jnp.asarray(t), jnp.asarray(p), num_classes=3, num_clusters=2)
    np.testing.assert_array_equal(table, _numpy_table(t, p, 3, 2))
    assert int(table.sum()) == 2  # huge int64 labels do not wrap into range


def test_where_equals_slicing(rng):
    t, p = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    where = rng.random(50) < 0.6
    masked = contingency_matrix(
        jnp.asarray(t), jnp.asarray(p), num_classes=4, num_clusters=3, where=jnp.asarray(where)
    )
    sliced = contingency_matrix(
        jnp.asarray(t[where]), jnp.asarray(p[where]), num_classes=4, num_clusters=3
    )
    np.testing.assert_array_equal(masked, sliced)


def test_jit_no_retrace(rng):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def table(t, p, where):
        return contingency_matrix(t, p, num_classes=5, num_clusters=3, where=where)

    for _ in range(3):
        t, p = rng.integers(-1, 5, 30), rng.integers(0, 3, 30)
        where = rng.random(30) < 0.5
        out = table(jnp.asarray(t), jnp.asarray(p), jnp.asarray(where))
        np.testing.assert_array_equal(out, _numpy_table(t[where], p[where], 5, 3))


def test_vmap(rng):
    t, p = rng.integers(0, 3, (4, 20)), rng.integers(0, 2, (4, 20))
    out = jax.vmap(lambda a, b: contingency_matrix(a, b, num_classes=3, num_clusters=2))(
        jnp.asarray(t), jnp.asarray(p)
    )
    for i in range(4):
        np.testing.assert_array_equal(out[i], _numpy_table(t[i], p[i], 3, 2))


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_shard_map_equals_jit_on_sharded_equals_single_device(rng, axis_type):
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    t, p = rng.integers(-1, 4, 64), rng.integers(0, 5, 64)
    where = rng.random(64) < 0.8
    kw = dict(num_classes=4, num_clusters=5)
    single = contingency_matrix(jnp.asarray(t), jnp.asarray(p), where=jnp.asarray(where), **kw)
    sharding = NamedSharding(mesh, P("data"))
    ts, ps, ws = (jax.device_put(jnp.asarray(v), sharding) for v in (t, p, where))
    shard_mapped = jax.jit(
        jax.shard_map(
            lambda a, b, w: contingency_matrix(a, b, where=w, axis_name="data", **kw),
            mesh=mesh,
            in_specs=P("data"),
            out_specs=P(),
        )
    )(ts, ps, ws)
    sharded_jit = jax.jit(lambda a, b, w: contingency_matrix(a, b, where=w, **kw))(ts, ps, ws)
    np.testing.assert_array_equal(shard_mapped, single)
    np.testing.assert_array_equal(sharded_jit, single)


def test_bad_inputs():
    y = jnp.array([0, 1, 1])
    kw = dict(num_classes=2, num_clusters=2)
    with pytest.raises(TypeError, match="labels_true"):
        contingency_matrix(jnp.array([0.0, 1.0, 1.0]), y, **kw)
    with pytest.raises(TypeError, match="labels_pred"):
        contingency_matrix(y, jnp.array([0.0, 1.0, 1.0]), **kw)
    with pytest.raises(ValueError, match="labels_pred must have rank 1"):
        contingency_matrix(y, y[None, :], **kw)
    with pytest.raises(ValueError, match="labels_true and labels_pred must have the same length"):
        contingency_matrix(y, jnp.array([0, 1]), **kw)
    with pytest.raises(TypeError, match="where must be a boolean"):
        contingency_matrix(y, y, where=jnp.array([1, 0, 1]), **kw)
    with pytest.raises(ValueError, match="where and labels_true must have the same length"):
        contingency_matrix(y, y, where=jnp.array([True, False]), **kw)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        contingency_matrix(y, y, num_classes=0, num_clusters=2)
    with pytest.raises(TypeError, match="num_clusters must be a Python int"):
        contingency_matrix(y, y, num_classes=2, num_clusters=2.0)
