"""Single-process tests for jaxclust.parallel.host_batches and host_local_to_global.

With one process these must reduce to plain NumPy: shuffling and slicing the data, and
``shard_rows``. The two-process behaviour is tested in ``test_distributed.py``.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.parallel import epoch_key, host_batches, host_local_to_global, make_mesh, shard_rows

N, D = 37, 3


@pytest.fixture(scope="module")
def mesh():
    return make_mesh()


@pytest.fixture(scope="module")
def x():
    # Column 0 is the row id, so every batch row can be traced back to its source row.
    noise = np.random.default_rng(0).normal(size=(N, D - 1))
    return np.column_stack([np.arange(N, dtype=np.float64), noise])


def _collect(batches):
    return [(np.asarray(b), np.asarray(m)) for b, m in batches]


def _expected(x, key, epoch, batch_size, where=None):
    """Epoch ``epoch`` by hand: permute the (selected) rows, cut into batches, pad the last."""
    rows = x if where is None else x[where]
    shuffle_key = epoch_key(key, epoch=epoch, process_index=0)
    shuffled = rows[np.asarray(jax.random.permutation(shuffle_key, len(rows)))]
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = shuffled[start : start + batch_size]
        pad = batch_size - len(chunk)
        out.append((np.pad(chunk, [(0, pad), (0, 0)]), np.arange(batch_size) < len(chunk)))
    return out


def test_equals_shuffling_and_slicing(x, mesh, key):
    got = _collect(host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=2))
    expected = _expected(x, key, 0, 8) + _expected(x, key, 1, 8)
    assert len(got) == len(expected) == 2 * 5
    for (b, m), (eb, em) in zip(got, expected):
        np.testing.assert_array_equal(b, eb)
        np.testing.assert_array_equal(m, em)


def test_every_row_once_per_epoch_in_a_new_order(x, mesh, key):
    got = _collect(host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=2))
    orders = []
    for epoch in range(2):
        ids = np.concatenate([b[m, 0] for b, m in got[epoch * 5 : (epoch + 1) * 5]])
        np.testing.assert_array_equal(np.sort(ids), np.arange(N))
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1])


def test_last_batch_is_padded_and_masked(x, mesh, key):
    *full, (last, mask) = _collect(host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=1))
    assert all(m.all() for _, m in full)
    np.testing.assert_array_equal(mask, np.arange(8) < N % 8)
    np.testing.assert_array_equal(last[~mask], 0.0)


def test_deterministic_given_key(x, mesh, key):
    def run(k):
        return _collect(host_batches(x, batch_size=8, mesh=mesh, key=k, num_epochs=1))

    for (a, ma), (b, mb) in zip(run(key), run(key)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)
    assert not np.array_equal(run(key)[0][0], run(jax.random.key(1))[0][0])


def test_drop_remainder(x, mesh, key):
    batches = host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=2, drop_remainder=True)
    got = _collect(batches)
    assert len(got) == 2 * (N // 8)
    assert all(m.all() for _, m in got)
    expected = _expected(x, key, 0, 8)[: N // 8]
    for (b, _), (eb, _) in zip(got, expected):
        np.testing.assert_array_equal(b, eb)


def test_repeats_forever_without_num_epochs(x, mesh, key):
    got = _collect(itertools.islice(host_batches(x, batch_size=16, mesh=mesh, key=key), 7))
    expected = [b for epoch in range(3) for b in _expected(x, key, epoch, 16)][:7]
    for (b, m), (eb, em) in zip(got, expected):
        np.testing.assert_array_equal(b, eb)
        np.testing.assert_array_equal(m, em)


def test_where_selects_rows(x, mesh, key):
    where = np.random.default_rng(1).uniform(size=N) < 0.6
    got = _collect(host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=1, where=where))
    expected = _expected(x, key, 0, 8, where=where)
    assert len(got) == len(expected)
    for (b, m), (eb, em) in zip(got, expected):
        np.testing.assert_array_equal(b, eb)
        np.testing.assert_array_equal(m, em)


def test_batches_sharded_over_data_axis(x, mesh, key):
    batch, mask = next(host_batches(jnp.asarray(x), batch_size=16, mesh=mesh, key=key))
    for a in (batch, mask):
        assert a.sharding == NamedSharding(mesh, P("data"))
        assert len(a.addressable_shards) == 8
        assert {s.data.shape[0] for s in a.addressable_shards} == {2}
    assert batch.shape == (16, D) and batch.dtype == jnp.float64 and mask.dtype == jnp.bool_


def test_batches_on_a_2d_mesh_replicate_over_the_other_axis(x, key):
    mesh = make_mesh((("data", 4), ("model", 2)))
    batch, _ = next(host_batches(x, batch_size=4, mesh=mesh, key=key))
    assert batch.sharding.spec == P("data")
    assert {s.data.shape[0] for s in batch.addressable_shards} == {1}
    np.testing.assert_array_equal(np.asarray(batch), _expected(x, key, 0, 4)[0][0])


def test_batch_feeds_a_jitted_step(x, mesh, key):
    batch, mask = next(host_batches(x, batch_size=8, mesh=mesh, key=key, num_epochs=1))
    total = jax.jit(lambda b, m: jnp.sum(jnp.where(m[:, None], b, 0.0), axis=0))(batch, mask)
    np.testing.assert_allclose(total, np.asarray(batch).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"batch_size": 12}, ValueError, "must be divisible by the 8 position"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 8.0}, TypeError, "batch_size must be a Python int"),
        ({"batch_size": 8, "axis": "rows"}, ValueError, "axis must be one of the mesh axes"),
        ({"batch_size": 8, "where": np.ones(N - 1, bool)}, ValueError, r"where must have shape"),
        ({"batch_size": 8, "where": np.ones(N)}, TypeError, "where must be a boolean array"),
        ({"batch_size": 40, "drop_remainder": True}, ValueError, "leaves no batch"),
        ({"batch_size": 8, "num_epochs": -1}, ValueError, "num_epochs must be >= 0"),
    ],
)
def test_bad_arguments_raise_before_iteration(x, mesh, key, kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        host_batches(x, mesh=mesh, key=key, **kwargs)  # no next(): checks are eager


def test_scalar_input_raises(mesh, key):
    with pytest.raises(ValueError, match="x_local must have a leading sample axis"):
        host_batches(np.float64(1.0), batch_size=8, mesh=mesh, key=key)
    with pytest.raises(ValueError, match="x_local must have a leading sample axis"):
        host_local_to_global(np.float64(1.0), mesh)


@pytest.mark.parametrize("n", [1, 8, 13])
def test_host_local_to_global_single_process_equals_shard_rows(n, mesh):
    x = np.random.default_rng(n).normal(size=(n, 2))
    got, got_mask = host_local_to_global(x, mesh)
    expected, expected_mask = shard_rows(x, mesh)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(got_mask), np.asarray(expected_mask))
    for a, b in ((got, expected), (got_mask, expected_mask)):
        assert a.sharding == b.sharding == NamedSharding(mesh, P("data"))
        assert a.dtype == b.dtype


def test_host_local_to_global_2d_mesh_and_jax_input():
    mesh = make_mesh((("data", 4), ("model", 2)))
    x = jnp.arange(10.0).reshape(5, 2)
    got, mask = host_local_to_global(x, mesh, axis="data")
    expected, expected_mask = shard_rows(x, mesh, axis="data")
    assert got.shape == (8, 2) and got.sharding.spec == P("data")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(mask), np.asarray(expected_mask))


def test_host_local_to_global_bad_axis(mesh):
    with pytest.raises(ValueError, match="axis must be one of the mesh axes"):
        host_local_to_global(np.ones((4, 2)), mesh, axis="rows")


def test_epoch_key_folds_process_then_epoch(key):
    expected = jax.random.fold_in(jax.random.fold_in(key, 3), 2)
    got = epoch_key(key, epoch=2, process_index=3)
    np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(expected))
