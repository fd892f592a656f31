"""Tests for jaxclust.losses.supcon against a float64 NumPy transcription of Eq. 2 (L_out)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from scipy.special import logsumexp

from jaxclust.losses import nt_xent, supcon


def ref_supcon(z, y, tau, base=None):
    n, v, d = z.shape
    u = z.reshape(n * v, d)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    lab = np.repeat(y, v)
    s = u @ u.T / tau
    per, has = np.zeros(n * v), np.zeros(n * v, bool)
    for i in range(n * v):
        a = [j for j in range(n * v) if j != i]
        p = [j for j in a if lab[j] == lab[i]]
        if not p:
            continue
        has[i] = True
        per[i] = -np.mean([s[i, j] - logsumexp(s[i, a]) for j in p])
        if base is not None:
            per[i] *= tau / base
    return per[has].mean(), per.reshape(n, v), has.reshape(n, v)


def _data(seed, n=10, v=2, d=4, classes=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, v, d)), rng.integers(0, classes, n)


@pytest.mark.parametrize("v,base", [(2, None), (1, 0.07), (3, None)])
def test_matches_numpy(v, base):
    z, y = _data(0, v=v)
    y[0] = 9  # a singleton label: with v = 1 its anchor has no positive
    out = supcon(jnp.asarray(z), jnp.asarray(y), temperature=0.1, base_temperature=base)
    loss, per, has = ref_supcon(z, y, 0.1, base)
    np.testing.assert_allclose(out.loss, loss, rtol=1e-10)
    np.testing.assert_allclose(out.per_anchor, per, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(out.has_positive, has)
    assert int(out.num_anchors) == has.sum()
    assert (v == 1) == (not has[0].any())


def test_unique_labels_reduce_to_nt_xent():
    z, _ = _data(1)
    out = supcon(jnp.asarray(z), None, temperature=0.3)
    expected = nt_xent(jnp.asarray(z[:, 0]), jnp.asarray(z[:, 1]), temperature=0.3)
    np.testing.assert_allclose(out.loss, jnp.mean(expected), rtol=1e-10)
    np.testing.assert_allclose(out.per_anchor.mean(axis=1), expected, rtol=1e-10)


def test_jit_grad_and_masked_equals_sliced():
    z, y = _data(2, n=8)
    keep = np.array([1, 0, 1, 1, 1, 0, 1, 1], bool)
    fn = jax.jit(lambda z, tau: supcon(z, jnp.asarray(y), temperature=tau,
                                       where=jnp.asarray(keep)).loss)
    zp = z.copy()
    zp[~keep] = 0.0
    sliced = supcon(jnp.asarray(z[keep]), jnp.asarray(y[keep]), temperature=0.2)
    np.testing.assert_allclose(fn(jnp.asarray(zp), 0.2), sliced.loss, rtol=1e-10)
    check_grads(fn, (jnp.asarray(z), jnp.asarray(0.2)), order=1, modes=["rev"], atol=1e-6,
                rtol=1e-6)
    grad = jax.grad(fn)(jnp.asarray(zp), 0.2)
    assert np.isfinite(grad).all()


def test_sharded_equals_single_device():
    z, y = _data(3, n=16)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    shard = NamedSharding(mesh, P("data"))
    fn = jax.shard_map(
        lambda z, y: supcon(z, y, temperature=0.2, axis_name="data").loss,
        mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P(),
    )
    value, grad = jax.jit(jax.value_and_grad(fn))(
        jax.device_put(jnp.asarray(z), shard), jax.device_put(jnp.asarray(y), shard)
    )
    ref_value, ref_grad = jax.value_and_grad(
        lambda z: supcon(z, jnp.asarray(y), temperature=0.2).loss)(jnp.asarray(z))
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_no_positive_anywhere_gives_zero():
    out = supcon(jnp.ones((3, 1, 2)), jnp.array([0, 1, 2]))
    assert float(out.loss) == 0.0 and int(out.num_anchors) == 0


class TestBadInput:
    def test_rank(self):
        with pytest.raises(ValueError, match="z must have rank 3"):
            supcon(jnp.ones((4, 3)), jnp.zeros(4, int))

    def test_labels_length(self):
        with pytest.raises(ValueError, match="z and labels must have the same length"):
            supcon(jnp.ones((4, 2, 3)), jnp.zeros(5, int))

    def test_labels_dtype(self):
        with pytest.raises(TypeError, match="labels must have an integer dtype"):
            supcon(jnp.ones((4, 2, 3)), jnp.zeros(4))

    def test_temperature(self):
        with pytest.raises(ValueError, match="base_temperature must be a finite number > 0"):
            supcon(jnp.ones((4, 2, 3)), jnp.zeros(4, int), base_temperature=0.0)
