"""Tests for jaxclust.multivector.maxsim / maxsim_topk against brute-force loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.multivector import maxsim, maxsim_topk


def _problem(seed=0, q=3, tq=4, m=7, td=6, d=5):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(q, tq, d))
    docs = rng.normal(size=(m, td, d))
    qmask = rng.random((q, tq)) < 0.8
    qmask[:, 0] = True
    dmask = rng.random((m, td)) < 0.7
    dmask[:, 0] = True
    if m > 3:
        dmask[3] = False  # a fully padded document
    return queries, qmask, docs, dmask


def _brute(queries, qmask, docs, dmask):
    out = np.zeros((len(queries), len(docs)))
    for a in range(len(queries)):
        for b in range(len(docs)):
            total = 0.0
            for i in range(queries.shape[1]):
                if not qmask[a, i]:
                    continue
                sims = [queries[a, i] @ docs[b, j] for j in range(docs.shape[1]) if dmask[b, j]]
                total += max(sims) if sims else 0.0
            out[a, b] = total
    return out


def test_matches_brute_force_with_blocks_and_jit():
    q, qm, d, dm = _problem()
    ref = _brute(q, qm, d, dm)
    args = (jnp.asarray(q), jnp.asarray(qm), jnp.asarray(d), jnp.asarray(dm))
    np.testing.assert_allclose(np.asarray(maxsim(*args)), ref, rtol=1e-12)
    assert float(maxsim(*args)[0, 3]) == 0.0
    blocked = jax.jit(lambda *a: maxsim(*a, block_size=3))(*args)  # 7 docs: blocks of 3, 3, 1
    np.testing.assert_allclose(np.asarray(blocked), ref, rtol=1e-12)


def test_padding_equals_unpadded():
    q, _, d, _ = _problem(1)
    plain = maxsim(jnp.asarray(q), None, jnp.asarray(d), None)
    junk = np.random.default_rng(9).normal(size=(d.shape[0], 3, d.shape[2])) * 100
    d_pad = np.concatenate([d, junk], axis=1)
    dm = np.arange(d_pad.shape[1])[None, :] < d.shape[1]
    q_pad = np.concatenate([q, np.ones((q.shape[0], 2, q.shape[2]))], axis=1)
    qm = np.arange(q_pad.shape[1])[None, :] < q.shape[1]
    padded = maxsim(
        jnp.asarray(q_pad), jnp.asarray(np.broadcast_to(qm, q_pad.shape[:2])),
        jnp.asarray(d_pad), jnp.asarray(np.broadcast_to(dm, d_pad.shape[:2])),
    )
    np.testing.assert_allclose(np.asarray(padded), np.asarray(plain), rtol=1e-12)


def test_bfloat16_accumulates_in_float32():
    q, qm, d, dm = _problem(2)
    out = maxsim(jnp.asarray(q, jnp.bfloat16), jnp.asarray(qm), jnp.asarray(d, jnp.bfloat16), jnp.asarray(dm))
    assert out.dtype == jnp.float32
    qb = np.asarray(jnp.asarray(q, jnp.bfloat16).astype(jnp.float64))
    db = np.asarray(jnp.asarray(d, jnp.bfloat16).astype(jnp.float64))
    np.testing.assert_allclose(np.asarray(out), _brute(qb, qm, db, dm), rtol=1e-5, atol=1e-5)


def test_gradient_is_the_max_subgradient():
    q, qm, d, dm = _problem(3, q=2, m=3)
    fn = lambda q, d: jnp.sum(maxsim(q, jnp.asarray(qm), d, jnp.asarray(dm)))  # noqa: E731
    check_grads(fn, (jnp.asarray(q), jnp.asarray(d)), order=1, modes=("rev",), eps=1e-6)


def test_sharded_documents_equal_single_device():
    q, qm, d, dm = _problem(4, m=16)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    ds = jax.device_put(jnp.asarray(d), NamedSharding(mesh, P("data")))
    dms = jax.device_put(jnp.asarray(dm), NamedSharding(mesh, P("data")))
    single = maxsim(jnp.asarray(q), jnp.asarray(qm), jnp.asarray(d), jnp.asarray(dm))
    sharded = jax.jit(lambda d, m: maxsim(jnp.asarray(q), jnp.asarray(qm), d, m))(ds, dms)
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), rtol=1e-12)
    mapped = jax.jit(
        jax.shard_map(
            lambda d, m: maxsim(jnp.asarray(q), jnp.asarray(qm), d, m),
            mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P(None, "data"),
        )
    )(ds, dms)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(single), rtol=1e-12)


@pytest.mark.parametrize("block_size", [8, 5])
def test_sharded_documents_are_scored_where_they_lie(block_size):
    """Scoring in steps keeps each device on its own documents: no collective in the program."""
    q, qm, d, dm = _problem(6, m=64)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    ds = jax.device_put(jnp.asarray(d), NamedSharding(mesh, P("data")))
    dms = jax.device_put(jnp.asarray(dm), NamedSharding(mesh, P("data")))
    fn = jax.jit(lambda d, m: maxsim(jnp.asarray(q), jnp.asarray(qm), d, m, block_size=block_size))
    hlo = fn.lower(ds, dms).compile().as_text()
    if block_size == 8:  # 8 steps of 8 documents: step rows split like the corpus
        assert "all-gather" not in hlo and "all-to-all" not in hlo and "collective-permute" not in hlo
    np.testing.assert_allclose(np.asarray(fn(ds, dms)), _brute(q, qm, d, dm), rtol=1e-12)


@pytest.mark.parametrize("block_size", [1, 2, 6, 7, 100])
def test_every_step_size_gives_the_same_scores_and_gradients(block_size):
    q, qm, d, dm = _problem(7, m=7)
    args = (jnp.asarray(q), jnp.asarray(qm), jnp.asarray(d), jnp.asarray(dm))
    np.testing.assert_allclose(
        np.asarray(maxsim(*args, block_size=block_size)), _brute(q, qm, d, dm), rtol=1e-12
    )
    fn = lambda q, d: jnp.sum(maxsim(q, args[1], d, args[3], block_size=block_size) ** 2)  # noqa: E731
    check_grads(fn, (args[0], args[2]), order=1, modes=("rev",), eps=1e-6)


def test_default_step_size_is_cache_sized_on_cpu():
    """The default loops over steps once the similarities would exceed the CPU budget."""
    q, qm, d, dm = _problem(8, q=64, tq=32, m=40, td=128, d=4)  # 262,144 scores per document
    args = (jnp.asarray(q), jnp.asarray(qm), jnp.asarray(d), jnp.asarray(dm))
    hlo = jax.jit(maxsim).lower(*args).as_text()
    assert "while" in hlo  # 4 documents per step under the 2**20 CPU budget
    np.testing.assert_allclose(
        np.asarray(maxsim(*args)), np.asarray(maxsim(*args, block_size=40)), rtol=1e-12
    )


def test_topk_matches_sorting():
    q, qm, d, dm = _problem(5, m=9)
    ref = _brute(q, qm, d, dm)
    scores, idx = maxsim_topk(jnp.asarray(q), jnp.asarray(qm), jnp.asarray(d), jnp.asarray(dm), k=4, block_size=4)
    assert idx.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(idx), np.argsort(-ref, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(np.asarray(scores), -np.sort(-ref, axis=1)[:, :4], rtol=1e-12)


class TestBadInput:
    def test_dimension_mismatch(self):
        with pytest.raises(ValueError, match="same feature dimension d"):
            maxsim(jnp.ones((1, 2, 3)), None, jnp.ones((1, 2, 4)), None)

    def test_rank(self):
        with pytest.raises(ValueError, match=r"documents must have rank 3 with shape \[m, td, d\]"):
            maxsim(jnp.ones((1, 2, 3)), None, jnp.ones((2, 3)), None)

    def test_mask(self):
        with pytest.raises(TypeError, match="doc_mask must be a boolean mask"):
            maxsim(jnp.ones((1, 2, 3)), None, jnp.ones((1, 2, 3)), jnp.ones((1, 2)))
        with pytest.raises(ValueError, match=r"query_mask must have shape \[q, tq\]"):
            maxsim(jnp.ones((1, 2, 3)), jnp.ones((1, 3), bool), jnp.ones((1, 2, 3)), None)

    def test_integer(self):
        with pytest.raises(TypeError, match="queries must have a floating-point dtype"):
            maxsim(jnp.ones((1, 2, 3), jnp.int32), None, jnp.ones((1, 2, 3)), None)

    def test_block_size_and_k(self):
        with pytest.raises(ValueError, match="block_size must be >= 1"):
            maxsim(jnp.ones((1, 2, 3)), None, jnp.ones((4, 2, 3)), None, block_size=0)
        with pytest.raises(ValueError, match="k must be <= the number"):
            maxsim_topk(jnp.ones((1, 2, 3)), None, jnp.ones((4, 2, 3)), None, k=5)
