"""Tests for CDC calibration (jaxclust.losses._cdc) against float64 NumPy brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import cdc_calibration_loss, cdc_calibration_targets, cdc_select_confident


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_targets_are_super_cluster_means(rng):
    p = _softmax(rng.normal(size=(24, 3)))
    s = rng.integers(0, 5, 24)
    where = rng.uniform(size=24) < 0.7
    out = jax.jit(lambda p, s, w: cdc_calibration_targets(p, s, num_super_clusters=5, where=w))(
        jnp.asarray(p), jnp.asarray(s), jnp.asarray(where))
    ref = np.stack([p[(s == s[i]) & where].mean(0) if ((s == s[i]) & where).any() else np.zeros(3)
                    for i in range(24)])
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    mapped = jax.jit(jax.shard_map(
        lambda p, s, w: cdc_calibration_targets(p, s, num_super_clusters=5, where=w, axis_name="data"),
        mesh=_mesh(), in_specs=(P("data"),) * 3, out_specs=P("data"),
    ))(jnp.asarray(p), jnp.asarray(s), jnp.asarray(where))
    np.testing.assert_allclose(mapped, out, rtol=1e-12)
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit):
        args = [jax.device_put(jnp.asarray(a), NamedSharding(explicit, P("data"))) for a in (p, s, where)]
        on_explicit = jax.jit(lambda p, s, w: cdc_calibration_targets(p, s, num_super_clusters=5, where=w))(*args)
    np.testing.assert_allclose(on_explicit, out, rtol=1e-12)


def test_calibration_loss_numpy_gradient_where_sharded(rng):
    logits, t = rng.normal(size=(16, 4)), _softmax(rng.normal(size=(16, 4)))
    r = _softmax(logits)
    r_bar = r.mean(0)
    ref = (-(t * np.log(r)).sum(1)).mean() + (r_bar * np.log(r_bar)).sum()
    np.testing.assert_allclose(cdc_calibration_loss(jnp.asarray(logits), jnp.asarray(t)), ref, rtol=1e-10)
    check_grads(jax.jit(lambda x: cdc_calibration_loss(x, jnp.asarray(t))), (jnp.asarray(logits),), order=1,
                modes=("rev",))
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = cdc_calibration_loss(jnp.asarray(logits), jnp.asarray(t), where=where)
    np.testing.assert_allclose(masked, cdc_calibration_loss(jnp.asarray(logits)[where], jnp.asarray(t)[where]),
                               rtol=1e-12)
    mapped = jax.jit(jax.shard_map(
        lambda x, t, w: cdc_calibration_loss(x, t, where=w, axis_name="data"),
        mesh=_mesh(), in_specs=(P("data"),) * 3, out_specs=P(),
    ))(jnp.asarray(logits), jnp.asarray(t), where)
    np.testing.assert_allclose(mapped, masked, rtol=1e-12)


def test_select_confident_matches_brute_force(rng):
    r = _softmax(rng.normal(size=(40, 3)) * 2)
    where = rng.uniform(size=40) < 0.8
    labels, mask = jax.jit(lambda r, w: cdc_select_confident(r, num_per_class=10, where=w))(
        jnp.asarray(r), jnp.asarray(where))
    y, conf = r.argmax(1), r.max(1)
    budget = np.floor(10 * conf[where].mean())
    expected = np.zeros(40, bool)
    for c in range(3):
        members = np.flatnonzero((y == c) & where)
        keep = members[np.argsort(-conf[members], kind="stable")][: int(budget)]
        expected[keep] = True
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(mask, expected)


class TestBadInput:
    def test_shapes(self):
        with pytest.raises(ValueError, match="cluster_probs and super_labels must have the same length"):
            cdc_calibration_targets(jnp.ones((4, 2)), jnp.zeros(3, int), num_super_clusters=2)
        with pytest.raises(ValueError, match="calibration_logits and targets must have the same shape"):
            cdc_calibration_loss(jnp.ones((4, 2)), jnp.ones((4, 3)))

    def test_budget(self):
        with pytest.raises(ValueError, match="num_per_class must be >= 1"):
            cdc_select_confident(jnp.ones((4, 2)), num_per_class=0)
