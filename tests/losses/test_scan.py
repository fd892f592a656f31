"""Tests for SCAN (jaxclust.losses._scan) against float64 NumPy brute force."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import mine_neighbors, sample_neighbors, scan_loss, scan_self_label_loss
from jaxclust.metrics import accuracy


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_scan(a, b, lam, w=None):
    """SCAN Eq. 2 with one neighbour per anchor: mean −ln⟨Φ_a, Φ_n⟩ − λ H(mean Φ_a)."""
    w = np.ones(len(a)) if w is None else w.astype(float)
    pa, pb = _softmax(a), _softmax(b)
    cons = (w * -np.maximum(np.log((pa * pb).sum(1)), -100)).sum() / w.sum()
    mean_p = (w[:, None] * pa).sum(0) / w.sum()
    ent = -(mean_p * np.log(mean_p)).sum()
    return cons - lam * ent, cons, ent


def _np_self_label(weak, strong, thr, balance=True):
    """SCAN self-labelling: weighted mean CE over confident samples, ω_c = n_conf / n_conf,c."""
    pw = _softmax(weak)
    conf = pw.max(1) > thr
    y = pw.argmax(1)
    omega = np.ones(weak.shape[1])
    if balance:
        classes, counts = np.unique(y[conf], return_counts=True)
        omega[classes] = conf.sum() / counts
    wts = conf * omega[y]
    ce = -np.log(_softmax(strong)[np.arange(len(y)), y])
    return (wts * ce).sum() / wts.sum()


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_scan_loss_matches_numpy_and_where(rng):
    a, b = rng.normal(size=(16, 5)) * 3, rng.normal(size=(16, 5)) * 3
    b[0] = -1e3 * np.eye(5)[np.argmax(a[0])]  # ⟨Φ_a, Φ_n⟩ ≈ 0: hits the −100 clamp
    where = rng.uniform(size=16) < 0.7
    where[0] = True
    fn = jax.jit(lambda a, b, w: scan_loss(a, b, entropy_weight=2.0, where=w))
    out = fn(jnp.asarray(a), jnp.asarray(b), jnp.asarray(where))
    ref = _np_scan(a, b, 2.0, where)
    np.testing.assert_allclose(out, ref, rtol=1e-10)
    sliced = scan_loss(jnp.asarray(a[where]), jnp.asarray(b[where]), entropy_weight=2.0)
    np.testing.assert_allclose(out, sliced, rtol=1e-12)
    mapped = jax.jit(jax.shard_map(
        lambda a, b, w: scan_loss(a, b, entropy_weight=2.0, where=w, axis_name="data"),
        mesh=_mesh(), in_specs=(P("data"),) * 3, out_specs=P(),
    ))(jnp.asarray(a), jnp.asarray(b), jnp.asarray(where))
    np.testing.assert_allclose(mapped, out, rtol=1e-12)


def test_scan_loss_gradients(rng):
    a, b = jnp.asarray(rng.normal(size=(6, 3))), jnp.asarray(rng.normal(size=(6, 3)))
    check_grads(jax.jit(lambda a, b: scan_loss(a, b).total), (a, b), order=1, modes=("rev",))


def test_self_label_matches_numpy_and_sharded(rng):
    weak = rng.normal(size=(16, 4)) * 4
    strong = rng.normal(size=(16, 4))
    for balance in (True, False):
        out = scan_self_label_loss(jnp.asarray(weak), jnp.asarray(strong), threshold=0.9,
                                   class_balance=balance)
        np.testing.assert_allclose(out, _np_self_label(weak, strong, 0.9, balance), rtol=1e-10)
    where = jnp.asarray(rng.uniform(size=16) < 0.7)
    fn = lambda w, s, m, axis_name=None: scan_self_label_loss(w, s, threshold=0.9, where=m,
                                                              axis_name=axis_name)
    masked = jax.jit(fn)(jnp.asarray(weak), jnp.asarray(strong), where)
    np.testing.assert_allclose(masked, fn(jnp.asarray(weak)[where], jnp.asarray(strong)[where], None),
                               rtol=1e-12)
    mapped = jax.jit(jax.shard_map(
        lambda w, s, m: fn(w, s, m, axis_name="data"), mesh=_mesh(),
        in_specs=(P("data"),) * 3, out_specs=P(),
    ))(jnp.asarray(weak), jnp.asarray(strong), where)
    np.testing.assert_allclose(mapped, masked, rtol=1e-12)


def test_self_label_hand_built_batch_and_gradients():
    # Class 0 has two confident samples, class 1 one: ω = (3/2, 3), weights (1.5, 1.5, 3).
    weak = jnp.array([[9.0, 0.0], [8.0, 0.0], [0.0, 9.0], [0.1, 0.0]])
    strong = jnp.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    ce = np.array([np.log1p(np.exp(-1.0)), np.log(2.0), np.log1p(np.exp(-2.0))])
    expected = (1.5 * ce[0] + 1.5 * ce[1] + 3 * ce[2]) / 6.0
    np.testing.assert_allclose(scan_self_label_loss(weak, strong, threshold=0.99), expected,
                               rtol=1e-12)
    # No gradient into the weak branch; the strong branch matches finite differences.
    g = jax.grad(lambda w: scan_self_label_loss(w, strong))(weak)
    assert np.all(np.asarray(g) == 0)
    check_grads(jax.jit(lambda s: scan_self_label_loss(weak, s)), (strong,), order=1, modes=("rev",))
    # Nobody confident: 0 with a zero (not NaN) gradient.
    g0 = jax.grad(lambda s: scan_self_label_loss(jnp.zeros((4, 2)), s))(strong)
    assert float(scan_self_label_loss(jnp.zeros((4, 2)), strong)) == 0.0
    assert np.all(np.asarray(g0) == 0)


def test_sample_neighbors_uniform_over_valid():
    idx = jnp.array([[3, 5, 7, -1]] * 4000 + [[-1, -1, -1, -1]])
    out = np.asarray(jax.jit(sample_neighbors)(jax.random.key(1), idx))
    assert out[-1] == -1
    counts = np.array([(out[:-1] == v).sum() for v in (3, 5, 7)])
    assert counts.sum() == 4000
    assert np.all(np.abs(counts / 4000 - 1 / 3) < 0.04)


def test_mine_neighbors_matches_brute_force_cosine(rng):
    z = rng.normal(size=(30, 5))
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    expected = np.argsort(-s, axis=1, kind="stable")[:, :4]
    out = mine_neighbors(jnp.asarray(z), k=4, block_size=8)
    np.testing.assert_array_equal(out, expected)


def test_scan_trains_linear_head_with_correct_neighbours():
    rng = np.random.default_rng(0)
    k, d, n = 4, 8, 200
    centers = rng.normal(size=(k, d))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    y = np.repeat(np.arange(k), n // k)
    z = jnp.asarray(centers[y] * 3 + rng.normal(size=(n, d)) * 0.5)
    nbrs = mine_neighbors(z, k=10)
    assert np.mean(y[np.asarray(nbrs)] == y[:, None]) > 0.99  # neighbours are correct
    opt = optax.adam(0.05)
    params = (jnp.asarray(rng.normal(size=(d, k)) * 0.01), jnp.zeros(k))

    @jax.jit
    def train(params, key):
        def step(carry, key):
            params, state = carry
            nb = sample_neighbors(key, nbrs)

            def loss(params):
                logits = z @ params[0] + params[1][None, :]
                return scan_loss(logits, logits[nb]).total

            upd, state = opt.update(jax.grad(loss)(params), state, params)
            return (optax.apply_updates(params, upd), state), None

        return jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, 200))[0][0]

    w, b = train(params, jax.random.key(0))
    acc = accuracy(jnp.asarray(y), jnp.argmax(z @ w + b[None, :], axis=1), num_classes=k, num_clusters=k)
    assert float(acc) >= 0.95


class TestBadInput:
    def test_shapes(self):
        with pytest.raises(ValueError, match="anchor_logits and neighbor_logits must have the same shape"):
            scan_loss(jnp.ones((3, 2)), jnp.ones((3, 3)))
        with pytest.raises(ValueError, match=r"anchor_logits must have rank 2 with shape \[n, k\]"):
            scan_loss(jnp.ones(3), jnp.ones(3))

    def test_hyperparameters(self):
        with pytest.raises(ValueError, match="entropy_weight must be a finite number >= 0"):
            scan_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), entropy_weight=-1.0)
        with pytest.raises(ValueError, match=r"threshold must be a finite number >= 0 and <= 1"):
            scan_self_label_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), threshold=1.5)

    def test_dtypes(self):
        with pytest.raises(TypeError, match="neighbor_indices must have an integer dtype"):
            sample_neighbors(jax.random.key(0), jnp.ones((3, 2)))
        with pytest.raises(TypeError, match="where must be a boolean mask"):
            scan_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), where=jnp.ones(3))


def test_scan_loss_no_retrace(rng):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(a, b, lam):
        return scan_loss(a, b, entropy_weight=lam).total

    for i in range(3):
        out = run(jnp.asarray(rng.normal(size=(8, 3))), jnp.asarray(rng.normal(size=(8, 3))), 1.0 + i)
    assert np.isfinite(float(out))
