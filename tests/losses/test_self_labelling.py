"""Tests for SwAV, SeLa and P²OT losses (jaxclust.losses._self_labelling)."""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.assign import p2ot
from jaxclust.losses import p2ot_loss, sela_loss, sela_pseudo_labels, swav_loss


def _log_softmax(x, axis=-1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def _np_codes(s, eps, steps):
    """SwAV's scaling recipe (METHODS.md §2.2) in float64: rows of the result sum to one."""
    b, k = s.shape
    p = np.exp((s - s.max()) / eps)
    p /= p.sum()
    for _ in range(steps):
        p /= k * p.sum(0, keepdims=True)
        p /= b * p.sum(1, keepdims=True)
    return b * p


def _np_swav(scores, tau, eps, steps, a, queue=None, fixed_codes=None):
    """(1/A) Σ_a (1/(V−1)) Σ_{v≠a} mean_i [−Σ_k q^a_ik ln softmax(s^v_i/τ)_k]."""
    v, n, _ = scores.shape
    total = 0.0
    for i in range(a):
        if fixed_codes is not None:
            q = fixed_codes[i]
        elif queue is None:
            q = _np_codes(scores[i], eps, steps)
        else:
            q = _np_codes(np.concatenate([queue[i], scores[i]]), eps, steps)[-n:]
        for j in range(v):
            if j != i:
                total += (-(q * _log_softmax(scores[j] / tau)).sum(1)).mean() / (v - 1)
    return total / a


def _scores(rng, v=3, n=16, k=5):
    z = rng.normal(size=(v, n, 8))
    c = rng.normal(size=(k, 8))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    return z @ c.T


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_swav_matches_numpy_multi_view_and_queue(rng):
    s = _scores(rng)
    out = jax.jit(lambda s: swav_loss(s, temperature=0.1, epsilon=0.05))(jnp.asarray(s))
    np.testing.assert_allclose(out, _np_swav(s, 0.1, 0.05, 3, 2), rtol=1e-8)
    queue = _scores(rng, v=2, n=8)
    out_q = swav_loss(jnp.asarray(s), queue=jnp.asarray(queue), num_assignment_views=1, num_steps=5)
    np.testing.assert_allclose(out_q, _np_swav(s, 0.1, 0.05, 5, 1, queue=queue), rtol=1e-8)


def test_swav_two_view_identity(rng):
    s = _scores(rng, v=2)
    q1, q2 = _np_codes(s[0], 0.05, 3), _np_codes(s[1], 0.05, 3)
    ell = lambda s, q: (-(q * _log_softmax(s / 0.1)).sum(1)).mean()
    np.testing.assert_allclose(swav_loss(jnp.asarray(s)), 0.5 * (ell(s[0], q2) + ell(s[1], q1)),
                               rtol=1e-8)


def test_swav_gradient_treats_codes_as_constants(rng):
    s = _scores(rng, v=2, n=6, k=3)
    codes = [_np_codes(s[i], 0.05, 3) for i in range(2)]
    g = np.asarray(jax.jit(jax.grad(lambda s: swav_loss(s)))(jnp.asarray(s)))
    h = 1e-6
    for idx in [(0, 0, 0), (1, 3, 2), (0, 5, 1)]:
        e = np.zeros_like(s)
        e[idx] = h
        fd = (_np_swav(s + e, 0.1, 0.05, 3, 2, fixed_codes=codes)
              - _np_swav(s - e, 0.1, 0.05, 3, 2, fixed_codes=codes)) / (2 * h)
        np.testing.assert_allclose(g[idx], fd, rtol=1e-5, atol=1e-8)


def test_swav_where_equals_sliced_and_sharded(rng):
    s = jnp.asarray(_scores(rng))
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = swav_loss(s, where=where)
    np.testing.assert_allclose(masked, swav_loss(s[:, where]), rtol=1e-10)
    mapped = jax.jit(jax.shard_map(
        lambda s, w: swav_loss(s, where=w, axis_name="data"), mesh=_mesh(),
        in_specs=(P(None, "data"), P("data")), out_specs=P(),
    ))(s, where)
    np.testing.assert_allclose(mapped, masked, rtol=1e-10)


def test_swav_degenerate_scores_give_uniform_codes():
    """Collapse case: every sample prefers prototype 0 equally; codes must stay uniform."""
    k = 4
    s = np.tile(np.eye(k)[0], (2, 12, 1))
    out = swav_loss(jnp.asarray(s), temperature=0.1)
    uniform = (-_log_softmax(s[0, 0] / 0.1)).mean()  # −Σ_k (1/K) ln p_k
    np.testing.assert_allclose(out, uniform, rtol=1e-10)


def test_sela_labels_match_pot_and_stay_balanced(rng):
    logits = rng.normal(size=(24, 3)) * 2
    log_p = _log_softmax(logits)
    plan = ot.sinkhorn(np.full(24, 1 / 24), np.full(3, 1 / 3), -log_p, reg=0.1,
                       method="sinkhorn_log", numItermax=5000, stopThr=1e-12)
    labels = jax.jit(lambda x: sela_pseudo_labels(x, lam=10.0, num_steps=1000))(jnp.asarray(logits))
    np.testing.assert_array_equal(labels, plan.argmax(1))
    # Degenerate predictions (everyone prefers cluster 0): equipartition still balances them.
    deg = np.tile([3.0, 0.0, 0.0], (30, 1)) + 1e-3 * rng.normal(size=(30, 3))
    counts = np.bincount(np.asarray(sela_pseudo_labels(jnp.asarray(deg), num_steps=200)), minlength=3)
    assert counts.min() >= 8 and counts.max() <= 12


def test_sela_where_sharded_and_loss(rng):
    logits = jnp.asarray(rng.normal(size=(16, 3)) * 2)
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = sela_pseudo_labels(logits, where=where)
    np.testing.assert_array_equal(masked[where], sela_pseudo_labels(logits[where]))
    assert np.all(np.asarray(masked)[~np.asarray(where)] == -1)
    mapped = jax.jit(jax.shard_map(
        lambda x, w: sela_pseudo_labels(x, where=w, axis_name="data"), mesh=_mesh(),
        in_specs=(P("data"), P("data")), out_specs=P("data"),
    ))(logits, where)
    np.testing.assert_array_equal(mapped, masked)
    ce = sela_loss(logits, masked)
    ref = -_log_softmax(np.asarray(logits))[np.arange(16), np.maximum(np.asarray(masked), 0)]
    np.testing.assert_allclose(ce, np.where(np.asarray(where), ref, 0.0), rtol=1e-12)


def _np_p2ot_loss(logits, plans):
    v = logits.shape[0]
    return sum((-(plans[b] * _log_softmax(logits[a])).sum(1)).mean()
               for a in range(v) for b in range(v) if a != b)


def test_p2ot_loss_matches_brute_force_gradient_and_sharding(rng):
    logits = rng.normal(size=(2, 16, 3)) * 2
    solve = jax.jit(lambda x: p2ot(x, rho=0.4).assignments)
    plans = [np.asarray(solve(jnp.asarray(logits[b]))) for b in range(2)]
    fn = jax.jit(lambda x, rho: p2ot_loss(x, rho=rho))
    out = fn(jnp.asarray(logits), 0.4)
    np.testing.assert_allclose(out, _np_p2ot_loss(logits, plans), rtol=1e-8)
    g = np.asarray(jax.jit(jax.grad(lambda x: p2ot_loss(x, rho=0.4)))(jnp.asarray(logits)))
    h = 1e-6
    for idx in [(0, 0, 0), (1, 7, 2)]:
        e = np.zeros_like(logits)
        e[idx] = h
        fd = (_np_p2ot_loss(logits + e, plans) - _np_p2ot_loss(logits - e, plans)) / (2 * h)
        np.testing.assert_allclose(g[idx], fd, rtol=1e-5, atol=1e-8)
    mapped = jax.jit(jax.shard_map(
        lambda x: p2ot_loss(x, rho=0.4, axis_name="data"), mesh=_mesh(),
        in_specs=P(None, "data"), out_specs=P(),
    ))(jnp.asarray(logits))
    np.testing.assert_allclose(mapped, out, rtol=1e-6)
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit):
        x_e = jax.device_put(jnp.asarray(logits), NamedSharding(explicit, P(None, "data")))
        on_explicit = jax.jit(lambda x: p2ot_loss(x, rho=0.4))(x_e)
    np.testing.assert_allclose(on_explicit, out, rtol=1e-6)


def test_p2ot_beats_balanced_sela_on_imbalanced_mixture():
    """Pseudo-labels on a 3-component mixture with imbalance ratio 10 (500 / 160 / 50).

    Balanced SeLa must give every cluster a third of the samples, so it moves majority samples
    into the minority cluster: minority recall stays 1 but minority precision collapses. P²OT's
    relaxed cluster sizes keep the imbalance: higher minority F1, majority recall and ACC.
    """
    rng = np.random.default_rng(0)
    mus = np.array([[0, 0], [4, 0], [0, 4]], float)
    y = np.repeat(np.arange(3), [500, 160, 50])
    x = mus[y] + rng.normal(size=(len(y), 2))
    logits = jnp.asarray(-((x[:, None] - mus[None]) ** 2).sum(-1) / 2)
    sela = np.asarray(sela_pseudo_labels(logits, lam=10.0))
    pot = np.asarray(jnp.argmax(p2ot(logits, rho=1.0).assignments, axis=1))

    def f1(lab, c):
        tp = np.sum((lab == c) & (y == c))
        return 2 * tp / (np.sum(lab == c) + np.sum(y == c))

    assert f1(pot, 2) > f1(sela, 2) + 0.2
    assert np.mean(pot[y == 0] == 0) > np.mean(sela[y == 0] == 0) + 0.3
    assert np.mean(pot == y) > np.mean(sela == y) + 0.2


class TestBadInput:
    def test_views(self):
        with pytest.raises(ValueError, match="scores must hold at least 2 views"):
            swav_loss(jnp.ones((1, 4, 3)))
        with pytest.raises(ValueError, match=r"scores must have rank 3 with shape \[v, n, k\]"):
            swav_loss(jnp.ones((4, 3)))
        with pytest.raises(ValueError, match="num_assignment_views must be <= the number of views v=2"):
            swav_loss(jnp.ones((2, 4, 3)), num_assignment_views=3)

    def test_hyperparameters(self):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            swav_loss(jnp.ones((2, 4, 3)), temperature=0.0)
        with pytest.raises(ValueError, match="lam must be a finite number > 0"):
            sela_pseudo_labels(jnp.ones((4, 3)), lam=-1.0)
        with pytest.raises(ValueError, match=r"rho must be in \(0, 1\]"):
            p2ot_loss(jnp.ones((2, 4, 3)), rho=1.5)

    def test_queue_and_labels(self):
        with pytest.raises(ValueError, match="queue must have shape"):
            swav_loss(jnp.ones((2, 4, 3)), queue=jnp.ones((2, 4, 2)))
        with pytest.raises(TypeError, match="labels must have an integer dtype"):
            sela_loss(jnp.ones((4, 3)), jnp.ones(4))
