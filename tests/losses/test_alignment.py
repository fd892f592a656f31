"""Tests for jaxclust.losses.alignment_loss and uniformity_loss against brute force."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import alignment_loss, uniformity_loss


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ref_uniformity(z, t):
    z = _unit(z)
    vals = [np.exp(-t * ((z[i] - z[j]) ** 2).sum()) for i, j in itertools.combinations(range(len(z)), 2)]
    return np.log(np.mean(vals))


@pytest.mark.parametrize("alpha", [2.0, 1.0, 3.5])
def test_alignment_matches_numpy_and_grad(alpha):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    expected = (np.linalg.norm(_unit(a) - _unit(b), axis=1)) ** alpha
    fn = jax.jit(lambda a, b: alignment_loss(a, b, alpha=alpha))
    np.testing.assert_allclose(fn(jnp.asarray(a), jnp.asarray(b)), expected, rtol=1e-10)
    check_grads(lambda a, b: jnp.sum(fn(a, b)), (jnp.asarray(a), jnp.asarray(b)), order=1,
                modes=["rev"], atol=1e-6, rtol=1e-6)
    g = jax.grad(lambda a: jnp.sum(alignment_loss(a, a, alpha=alpha)))(jnp.asarray(a))
    np.testing.assert_array_equal(g, 0.0)  # identical pairs: zero, not NaN


@pytest.mark.parametrize("t", [2.0, 0.5])
def test_uniformity_matches_numpy(t):
    z = np.random.default_rng(1).normal(size=(9, 3))
    np.testing.assert_allclose(uniformity_loss(jnp.asarray(z), t=t), ref_uniformity(z, t),
                               rtol=1e-10)


def test_uniformity_jit_grad_masked_equals_sliced():
    z = np.random.default_rng(2).normal(size=(8, 3))
    keep = np.array([1, 0, 1, 1, 1, 0, 1, 1], bool)
    fn = jax.jit(lambda z: uniformity_loss(z, where=jnp.asarray(keep)))
    np.testing.assert_allclose(fn(jnp.asarray(z)), ref_uniformity(z[keep], 2.0), rtol=1e-10)
    check_grads(fn, (jnp.asarray(z),), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
    one = uniformity_loss(jnp.asarray(z), where=jnp.arange(8) == 0)
    assert float(one) == 0.0


def test_uniformity_sharded_equals_single_device():
    z = jnp.asarray(np.random.default_rng(3).normal(size=(16, 3)))
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    fn = jax.shard_map(lambda z: uniformity_loss(z, axis_name="data"), mesh=mesh,
                       in_specs=P("data"), out_specs=P())
    value, grad = jax.jit(jax.value_and_grad(fn))(jax.device_put(z, NamedSharding(mesh, P("data"))))
    ref_value, ref_grad = jax.value_and_grad(uniformity_loss)(z)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


class TestBadInput:
    def test_alignment_shapes(self):
        with pytest.raises(ValueError, match="same shape"):
            alignment_loss(jnp.ones((3, 2)), jnp.ones((3, 3)))

    def test_alpha(self):
        with pytest.raises(ValueError, match="alpha must be a number > 0"):
            alignment_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), alpha=0.0)

    def test_t(self):
        with pytest.raises(ValueError, match="t must be a number > 0"):
            uniformity_loss(jnp.ones((3, 2)), t=-1.0)
