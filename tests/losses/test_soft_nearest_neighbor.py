"""Tests for jaxclust.losses.soft_nearest_neighbor_loss against a float64 NumPy transcription."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import soft_nearest_neighbor_loss


def ref_snnl(x, y, t):
    """Frosst et al. Eq. 1, without the stability epsilon, over anchors with a partner."""
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    vals = []
    for i in range(len(x)):
        same = [np.exp(-d[i, j] / t) for j in range(len(x)) if j != i and y[j] == y[i]]
        if not same:
            continue
        allk = [np.exp(-d[i, k] / t) for k in range(len(x)) if k != i]
        vals.append(-np.log(sum(same) / sum(allk)))
    return np.mean(vals)


def _data(seed, n=12):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    y[-1] = 7  # a singleton: excluded as an anchor, still a neighbour of others
    return rng.normal(size=(n, 3)) + y[:, None] % 3, y


@pytest.mark.parametrize("t", [0.5, 2.0, 30.0])
def test_matches_numpy(t):
    x, y = _data(0)
    got = soft_nearest_neighbor_loss(jnp.asarray(x), jnp.asarray(y), temperature=t)
    np.testing.assert_allclose(got, ref_snnl(x, y, t), rtol=1e-10)


def test_tiny_temperature_stays_finite():
    x, y = _data(1)
    got = soft_nearest_neighbor_loss(jnp.asarray(x), jnp.asarray(y), temperature=1e-4)
    assert np.isfinite(float(got)) and float(got) >= 0


def test_jit_grad_log_temperature_and_masked_equals_sliced():
    x, y = _data(2, n=10)
    keep = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 1], bool)
    fn = jax.jit(lambda x, log_t: soft_nearest_neighbor_loss(
        x, jnp.asarray(y), temperature=jnp.exp(log_t), where=jnp.asarray(keep)))
    sliced = soft_nearest_neighbor_loss(jnp.asarray(x[keep]), jnp.asarray(y[keep]))
    np.testing.assert_allclose(fn(jnp.asarray(x), 0.0), sliced, rtol=1e-10)
    check_grads(fn, (jnp.asarray(x), jnp.asarray(0.3)), order=1, modes=["rev"], atol=1e-6,
                rtol=1e-6)


def test_sharded_equals_single_device():
    x, y = _data(3, n=16)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    shard = NamedSharding(mesh, P("data"))
    fn = jax.shard_map(
        lambda x, y: soft_nearest_neighbor_loss(x, y, temperature=0.7, axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P(),
    )
    value, grad = jax.jit(jax.value_and_grad(fn))(
        jax.device_put(jnp.asarray(x), shard), jax.device_put(jnp.asarray(y), shard))
    ref_value, ref_grad = jax.value_and_grad(
        lambda x: soft_nearest_neighbor_loss(x, jnp.asarray(y), temperature=0.7))(jnp.asarray(x))
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


class TestBadInput:
    def test_temperature(self):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            soft_nearest_neighbor_loss(jnp.ones((3, 2)), jnp.zeros(3, int), temperature=0.0)

    def test_labels(self):
        with pytest.raises(TypeError, match="labels must have an integer dtype"):
            soft_nearest_neighbor_loss(jnp.ones((3, 2)), jnp.zeros(3))
