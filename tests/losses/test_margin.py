"""Tests for jaxclust.losses.margin_softmax_loss against a float64 NumPy (arccos) transcription."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from scipy.special import log_softmax

from jaxclust.losses import margin_softmax_loss


def ref_margin(z, y, w, s, m_a, m_c, easy):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    cos = z @ w.T
    out = []
    for i, c in enumerate(y):
        theta = np.arccos(np.clip(cos[i, c], -1, 1))
        if easy:
            psi = np.cos(theta + m_a) if cos[i, c] > 0 else cos[i, c]
        else:
            psi = np.cos(theta + m_a) if theta + m_a <= np.pi else cos[i, c] - m_a * np.sin(m_a)
        logits = cos[i].copy()
        logits[c] = psi - m_c
        out.append(-log_softmax(s * logits)[c])
    return np.array(out)


@pytest.mark.parametrize("m_a,m_c,easy", [(0.5, 0.0, False), (0.5, 0.0, True), (0.0, 0.35, False),
                                          (0.3, 0.1, False)])
def test_matches_numpy(m_a, m_c, easy):
    rng = np.random.default_rng(0)
    z, w = rng.normal(size=(20, 3)), rng.normal(size=(4, 3))
    y = rng.integers(0, 4, 20)
    got = margin_softmax_loss(jnp.asarray(z), jnp.asarray(y), jnp.asarray(w), scale=8.0,
                              angular_margin=m_a, cosine_margin=m_c, easy_margin=easy)
    np.testing.assert_allclose(got, ref_margin(z, y, w, 8.0, m_a, m_c, easy), rtol=1e-9)


def test_jit_grad_and_stable_at_zero_and_pi():
    rng = np.random.default_rng(1)
    z, w = rng.normal(size=(6, 3)), rng.normal(size=(3, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    fn = jax.jit(lambda z, w: jnp.sum(margin_softmax_loss(z, jnp.asarray(y), w, scale=4.0)))
    check_grads(fn, (jnp.asarray(z), jnp.asarray(w)), order=1, modes=["rev"], atol=1e-6,
                rtol=1e-6)
    wj = jnp.asarray(w)
    at_zero = wj[jnp.asarray(y)]  # θ_y = 0
    at_pi = -at_zero  # θ_y = π
    for zz in (at_zero, at_pi):
        value, g = jax.value_and_grad(fn, argnums=(0, 1))(zz, wj)
        assert np.isfinite(float(value))
        assert all(np.isfinite(x).all() for x in g)


def test_where():
    z = jnp.asarray(np.random.default_rng(2).normal(size=(4, 3)))
    w = jnp.eye(3)
    keep = jnp.array([True, False, True, True])
    full = margin_softmax_loss(z, jnp.array([0, 1, 2, 0]), w)
    masked = margin_softmax_loss(z, jnp.array([0, 1, 2, 0]), w, where=keep)
    np.testing.assert_array_equal(masked, jnp.where(keep, full, 0.0))


def test_sharded_global_mean_equals_single_device():
    # Separable, so no axis_name: the documented psum-of-sums mean gives the single-device value
    # and gradients, those of the replicated prototypes summed over shards.
    rng = np.random.default_rng(3)
    z, w, y = rng.normal(size=(16, 3)), rng.normal(size=(4, 3)), rng.integers(0, 4, 16)
    keep = np.arange(16) % 5 != 0
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))

    def local(z, w, y, m):
        per = margin_softmax_loss(z, y, w, scale=8.0, cosine_margin=0.1, where=m)
        return jax.lax.psum(jnp.sum(per), "data") / jax.lax.psum(jnp.sum(m), "data")

    fn = jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P(), P("data"), P("data")),
                       out_specs=P())
    shard = NamedSharding(mesh, P("data"))
    value, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(
        jax.device_put(jnp.asarray(z), shard), jnp.asarray(w),
        jax.device_put(jnp.asarray(y), shard), jax.device_put(jnp.asarray(keep), shard))
    ref_value, ref_grads = jax.value_and_grad(
        lambda z, w: jnp.sum(margin_softmax_loss(z, jnp.asarray(y), w, scale=8.0,
                                                 cosine_margin=0.1, where=jnp.asarray(keep)))
        / keep.sum(), argnums=(0, 1))(jnp.asarray(z), jnp.asarray(w))
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


class TestBadInput:
    def test_margin(self):
        with pytest.raises(ValueError, match=r"angular_margin must be in \[0, pi/2\)"):
            margin_softmax_loss(jnp.ones((2, 3)), jnp.zeros(2, int), jnp.eye(3), angular_margin=2.0)

    def test_dims(self):
        with pytest.raises(ValueError, match="same feature dimension"):
            margin_softmax_loss(jnp.ones((2, 3)), jnp.zeros(2, int), jnp.eye(2))
