"""Tests for DEPICT targets and loss (jaxclust.losses._depict)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import depict_loss, depict_target


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_target(p):
    """DEPICT's closed form q_ik ∝ p_ik / sqrt(Σ_i p_ik)."""
    w = p / np.sqrt(p.sum(0))
    return w / w.sum(1, keepdims=True)


def _objective(q, p):
    """J(Q) = (1/N) Σ_i KL(q_i ‖ p_i) + KL(f ‖ u), f_k = (1/N) Σ_i q_ik (METHODS.md §3.2)."""
    n, k = q.shape
    f = q.mean(0)
    return (q * np.log(q / p)).sum() / n + (f * np.log(f * k)).sum()


def test_target_matches_closed_form_and_lowers_objective(rng):
    logits = rng.normal(size=(20, 4)) * 2
    p = _softmax(logits)
    q = np.asarray(depict_target(jnp.asarray(logits)))
    np.testing.assert_allclose(q, _np_target(p), rtol=1e-10)
    assert _objective(q, p) <= _objective(p, p)


def test_target_near_minimum_of_objective():
    rng = np.random.default_rng(3)
    n, k = 6, 3
    p = _softmax(rng.normal(size=(n, k)) * 1.5)
    q = np.asarray(depict_target(jnp.asarray(np.log(p))))
    best = scipy.optimize.minimize(
        lambda t: _objective(_softmax(t.reshape(n, k)), p), np.log(p).ravel(), method="BFGS"
    )
    assert _objective(q, p) - best.fun < 0.05 * abs(_objective(p, p) - best.fun) + 1e-3


def test_loss_numpy_gradient_and_jit(rng):
    noisy, q = rng.normal(size=(7, 3)), _softmax(rng.normal(size=(7, 3)))
    out = jax.jit(depict_loss)(jnp.asarray(noisy), jnp.asarray(q))
    np.testing.assert_allclose(out, -(q * np.log(_softmax(noisy))).sum(1), rtol=1e-10)
    check_grads(jax.jit(lambda x: jnp.sum(depict_loss(x, jnp.asarray(q)))), (jnp.asarray(noisy),), order=1,
                modes=("rev",))
    # The target is held fixed: no gradient flows into q.
    g = jax.grad(lambda q: jnp.sum(depict_loss(jnp.asarray(noisy), q)))(jnp.asarray(q))
    assert np.all(np.asarray(g) == 0)


def test_where_equals_sliced_and_sharded_equals_single(rng):
    logits = jnp.asarray(rng.normal(size=(16, 3)))
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = depict_target(logits, where=where)
    np.testing.assert_allclose(masked[where], depict_target(logits[where]), rtol=1e-12)
    loss = depict_loss(logits, masked, where=where)
    assert np.all(np.asarray(loss)[~np.asarray(where)] == 0)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    mapped = jax.jit(jax.shard_map(
        lambda x, w: depict_target(x, where=w, axis_name="data"), mesh=mesh,
        in_specs=(P("data"), P("data")), out_specs=P("data"),
    ))(logits, where)
    np.testing.assert_allclose(mapped, masked, rtol=1e-12)


class TestBadInput:
    def test_rank(self):
        with pytest.raises(ValueError, match=r"logits must have rank 2 with shape \[n, k\]"):
            depict_target(jnp.ones(3))

    def test_shapes(self):
        with pytest.raises(ValueError, match="noisy_logits and q must have the same shape"):
            depict_loss(jnp.ones((3, 2)), jnp.ones((3, 3)))

    def test_where_length(self):
        with pytest.raises(ValueError, match="where and logits must have the same length"):
            depict_target(jnp.ones((3, 2)), where=jnp.ones(2, bool))
