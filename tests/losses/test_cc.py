"""Tests for Contrastive Clustering (jaxclust.losses._cc) against float64 NumPy brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import cc_cluster_loss, cc_loss


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_ntxent(u1, u2, tau):
    """SimCLR NT-Xent over 2m items (rows of u1 and u2), mean over items."""
    u = np.concatenate([u1, u2])
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    s = u @ u.T / tau
    np.fill_diagonal(s, -np.inf)
    m = len(u1)
    pos = np.concatenate([np.arange(m, 2 * m), np.arange(m)])
    lse = np.log(np.exp(s).sum(1))
    return np.mean(lse - s[np.arange(2 * m), pos])


def _np_entropy(y):
    p = y.sum(0) / y.sum()
    return -(p * np.log(p)).sum()


def _np_cc(za, zb, ya, yb, tau_i=0.5, tau_c=1.0):
    """CC: L_ins (NT-Xent on rows) + NT-Xent on columns − [H(P^a) + H(P^b)]."""
    ent = _np_entropy(ya) + _np_entropy(yb)
    cluster = _np_ntxent(ya.T, yb.T, tau_c) - ent
    instance = _np_ntxent(za, zb, tau_i)
    return instance + cluster, instance, cluster, ent


def _inputs(rng, n=16, d=6, k=4):
    return (rng.normal(size=(n, d)), rng.normal(size=(n, d)),
            _softmax(rng.normal(size=(n, k)) * 2), _softmax(rng.normal(size=(n, k)) * 2))


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_matches_numpy_brute_force(rng):
    za, zb, ya, yb = _inputs(rng)
    out = jax.jit(lambda *a: cc_loss(*a, instance_temperature=0.5, cluster_temperature=1.0))(
        *map(jnp.asarray, (za, zb, ya, yb)))
    np.testing.assert_allclose(out, _np_cc(za, zb, ya, yb), rtol=1e-10)
    loss, ent = cc_cluster_loss(jnp.asarray(ya), jnp.asarray(yb), temperature=0.3)
    np.testing.assert_allclose(loss, _np_ntxent(ya.T, yb.T, 0.3) - ent, rtol=1e-10)


def test_one_hot_columns_are_cluster_indicators():
    y = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    _, ent = cc_cluster_loss(jnp.asarray(y), jnp.asarray(y))
    p = np.array([2, 1, 3]) / 6
    np.testing.assert_allclose(ent, -2 * (p * np.log(p)).sum(), rtol=1e-12)


def test_gradients(rng):
    za, zb, ya, yb = _inputs(rng, n=6, d=3, k=3)
    check_grads(jax.jit(lambda *a: cc_loss(*a).total), tuple(map(jnp.asarray, (za, zb, ya, yb))), order=1,
                modes=("rev",))


def test_where_equals_sliced_and_sharded(rng):
    za, zb, ya, yb = map(jnp.asarray, _inputs(rng))
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = cc_loss(za, zb, ya, yb, where=where)
    sliced = cc_loss(za[where], zb[where], ya[where], yb[where])
    np.testing.assert_allclose(masked, sliced, rtol=1e-10)
    mapped = jax.jit(jax.shard_map(
        lambda *a: cc_loss(*a[:4], where=a[4], axis_name="data"), mesh=_mesh(),
        in_specs=(P("data"),) * 5, out_specs=P(),
    ))(za, zb, ya, yb, where)
    np.testing.assert_allclose(mapped, masked, rtol=1e-10)
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit):
        args = [jax.device_put(a, NamedSharding(explicit, P("data"))) for a in (za, zb, ya, yb, where)]
        on_explicit = jax.jit(lambda *a: cc_loss(*a[:4], where=a[4]))(*args)
    np.testing.assert_allclose(on_explicit, masked, rtol=1e-10)


def test_zero_column_is_finite():
    y = jnp.asarray(np.eye(3)[[0, 0, 1, 1]])  # cluster 2 is empty
    loss, g = jax.jit(jax.value_and_grad(lambda y: cc_cluster_loss(y, y)[0]))(y)
    assert np.isfinite(float(loss)) and np.isfinite(np.asarray(g)).all()


class TestBadInput:
    def test_shapes(self):
        with pytest.raises(ValueError, match="y_a and y_b must have the same shape"):
            cc_cluster_loss(jnp.ones((4, 3)), jnp.ones((4, 2)))
        with pytest.raises(ValueError, match="z_a and y_a must have the same length"):
            cc_loss(jnp.ones((4, 3)), jnp.ones((4, 3)), jnp.ones((5, 2)), jnp.ones((5, 2)))

    def test_temperature(self):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            cc_cluster_loss(jnp.ones((4, 3)), jnp.ones((4, 3)), temperature=0.0)
