"""Tests for jaxclust.losses.prototypical_loss against a float64 NumPy transcription."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from scipy.special import log_softmax

from jaxclust.losses import prototypical_loss


def ref_proto(s, sy, q, qy, k):
    present = [c for c in range(k) if (sy == c).any()]
    protos = np.stack([s[sy == c].mean(0) for c in present])
    logits = -((q[:, None] - protos[None]) ** 2).sum(-1)
    lp = log_softmax(logits, axis=1)
    return np.array([-lp[i, present.index(c)] for i, c in enumerate(qy)])


def _episode(seed):
    rng = np.random.default_rng(seed)
    sy = np.repeat(np.arange(4), 3)
    s = rng.normal(size=(12, 5)) + sy[:, None]
    qy = rng.integers(0, 4, 7)
    return s, sy, rng.normal(size=(7, 5)) + qy[:, None], qy


def test_matches_numpy_jit_and_grad():
    s, sy, q, qy = _episode(0)
    fn = jax.jit(lambda s, q: prototypical_loss(s, jnp.asarray(sy), q, jnp.asarray(qy),
                                                num_classes=4))
    np.testing.assert_allclose(fn(jnp.asarray(s), jnp.asarray(q)), ref_proto(s, sy, q, qy, 4),
                               rtol=1e-10)
    check_grads(lambda s, q: jnp.sum(fn(s, q)), (jnp.asarray(s), jnp.asarray(q)), order=1,
                modes=["rev"], atol=1e-6, rtol=1e-6)


def test_masks_equal_slicing_and_missing_class_is_left_out():
    s, sy, q, qy = _episode(1)
    s_keep = np.ones(12, bool)
    s_keep[[0, 4, 6, 7, 8]] = False  # class 2 loses all its support
    q_keep = np.array([1, 1, 0, 1, 1, 1, 1], bool)
    got = prototypical_loss(jnp.asarray(s), jnp.asarray(sy), jnp.asarray(q), jnp.asarray(qy),
                            num_classes=4, support_where=jnp.asarray(s_keep),
                            where=jnp.asarray(q_keep))
    has_class = qy != 2
    ok = q_keep & has_class
    expected = ref_proto(s[s_keep], sy[s_keep], q[ok], qy[ok], 4)
    np.testing.assert_allclose(got[ok], expected, rtol=1e-10)
    np.testing.assert_array_equal(got[~ok], 0.0)
    g = jax.grad(lambda s: jnp.sum(prototypical_loss(
        s, jnp.asarray(sy), jnp.asarray(q), jnp.asarray(qy), num_classes=4,
        support_where=jnp.asarray(s_keep))))(jnp.asarray(s))
    assert np.isfinite(g).all()
    np.testing.assert_array_equal(g[~s_keep], 0.0)


def test_sharded_equals_single_device_value_and_gradient():
    # 16 support rows and 8 queries over 8 shards: each shard holds 2 support rows, so most
    # classes have no local support and the prototypes must come from the other shards.
    rng = np.random.default_rng(3)
    sy = rng.permutation(np.repeat(np.arange(4), 4))
    sy[5] = -1  # padding
    s = rng.normal(size=(16, 3)) + sy[:, None]
    s_keep = np.ones(16, bool)
    s_keep[9] = False
    qy = rng.integers(0, 4, 8)
    q = rng.normal(size=(8, 3)) + qy[:, None]
    q_keep = np.ones(8, bool)
    q_keep[2] = False
    labels = (jnp.asarray(sy), jnp.asarray(qy), jnp.asarray(s_keep), jnp.asarray(q_keep))

    def per_query(s, q, sy, qy, sm, qm, axis_name=None):
        return prototypical_loss(s, sy, q, qy, num_classes=4, support_where=sm, where=qm,
                                 axis_name=axis_name)

    def mean_loss(s, q, sy, qy, sm, qm):
        per = per_query(s, q, sy, qy, sm, qm, "data")
        return jax.lax.psum(jnp.sum(per), "data") / jax.lax.psum(per.shape[0], "data"), per

    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    fn = jax.shard_map(mean_loss, mesh=mesh, in_specs=(P("data"),) * 6,
                       out_specs=(P(), P("data")))
    args = [jax.device_put(a, NamedSharding(mesh, P("data")))
            for a in (jnp.asarray(s), jnp.asarray(q), *labels)]
    (value, per), grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1), has_aux=True))(*args)
    ref_per = per_query(jnp.asarray(s), jnp.asarray(q), *labels)
    ref_value, ref_grads = jax.value_and_grad(
        lambda s, q: jnp.mean(per_query(s, q, *labels)), argnums=(0, 1))(jnp.asarray(s),
                                                                          jnp.asarray(q))
    np.testing.assert_allclose(per, ref_per, rtol=1e-10)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


class TestBadInput:
    def test_dims(self):
        with pytest.raises(ValueError, match="same feature dimension"):
            prototypical_loss(jnp.ones((3, 2)), jnp.zeros(3, int), jnp.ones((2, 3)),
                              jnp.zeros(2, int), num_classes=2)

    def test_num_classes(self):
        with pytest.raises(TypeError, match="num_classes must be a Python int"):
            prototypical_loss(jnp.ones((3, 2)), jnp.zeros(3, int), jnp.ones((2, 2)),
                              jnp.zeros(2, int), num_classes=2.0)
