"""Tests for jaxclust.losses.triplet_loss against brute-force Python loops."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import triplet_loss


def _dist(x, squared, normalize):
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    return d if squared else np.sqrt(d)


def ref_semi_hard(x, y, margin, squared=True, normalize=True):
    """FaceNet semi-hard rule as in TF-Addons triplet_semihard_loss, one pair at a time."""
    d = _dist(x, squared, normalize)
    losses = []
    for a in range(len(x)):
        negs = [k for k in range(len(x)) if y[k] != y[a]]
        if not negs:
            continue
        for p in range(len(x)):
            if p == a or y[p] != y[a]:
                continue
            farther = [d[a, k] for k in negs if d[a, k] > d[a, p]]
            dn = min(farther) if farther else max(d[a, k] for k in negs)
            losses.append(max(0.0, d[a, p] - dn + margin))
    return np.mean(losses) if losses else 0.0


def ref_batch_hard(x, y, margin, squared=True, normalize=True):
    d = _dist(x, squared, normalize)
    losses = []
    for a in range(len(x)):
        pos = [d[a, p] for p in range(len(x)) if p != a and y[p] == y[a]]
        neg = [d[a, k] for k in range(len(x)) if y[k] != y[a]]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return np.mean(losses) if losses else 0.0


def _data(seed, n=12, d=3, classes=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, classes, n)


@pytest.mark.parametrize("squared,normalize", [(True, True), (False, False)])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_semi_hard_matches_loop(squared, normalize, margin):
    x, y = _data(0)
    got = triplet_loss(jnp.asarray(x), jnp.asarray(y), margin=margin, squared=squared,
                       normalize=normalize)
    np.testing.assert_allclose(got, ref_semi_hard(x, y, margin, squared, normalize), rtol=1e-10)


@pytest.mark.parametrize("squared", [True, False])
def test_batch_hard_matches_loop(squared):
    x, y = _data(1)
    got = triplet_loss(jnp.asarray(x), jnp.asarray(y), margin=0.3, mining="batch-hard",
                       squared=squared)
    np.testing.assert_allclose(got, ref_batch_hard(x, y, 0.3, squared), rtol=1e-10)


def test_jit_grad_and_masked_equals_sliced():
    x, y = _data(2, n=10)
    keep = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1], bool)
    for mining in ("semi-hard", "batch-hard"):
        fn = jax.jit(lambda x: triplet_loss(x, jnp.asarray(y), margin=0.5, mining=mining,
                                            squared=False, where=jnp.asarray(keep)))
        sliced = triplet_loss(jnp.asarray(x[keep]), jnp.asarray(y[keep]), margin=0.5,
                              mining=mining, squared=False)
        np.testing.assert_allclose(fn(jnp.asarray(x)), sliced, rtol=1e-10)
        check_grads(fn, (jnp.asarray(x),), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
    # Duplicated points (zero distances) keep the Euclidean gradient finite.
    dup = jnp.asarray(np.concatenate([x[:3], x[:3]]))
    g = jax.grad(lambda x: triplet_loss(x, jnp.array([0, 1, 2, 0, 1, 2]), squared=False))(dup)
    assert np.isfinite(g).all()


@hypothesis.settings(max_examples=5, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), spread=st.floats(0.0, 0.05))
def test_zero_when_margin_satisfied(seed, spread):
    # Classes sit near orthogonal unit vectors: d_ap <= 4·spread², d_an >= ~2 > d_ap + 0.2.
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 9)
    x = np.eye(3)[y] + spread * rng.uniform(-1, 1, size=(9, 3))
    for mining in ("semi-hard", "batch-hard"):
        assert float(triplet_loss(jnp.asarray(x), jnp.asarray(y), mining=mining)) == 0.0


def test_single_class_gives_zero():
    assert float(triplet_loss(jnp.ones((4, 2)), jnp.zeros(4, jnp.int32))) == 0.0


def test_sharded_equals_single_device_value_and_gradient():
    # 8 shards of 3 rows: mining must see the other shards' positives and negatives.
    x, y = _data(5, n=24, d=3, classes=4)
    y[[2, 13]] = -1  # padding labels
    keep = np.ones(24, bool)
    keep[[7, 20]] = False

    def losses(x, y, m, axis_name=None):
        return jnp.stack([triplet_loss(x, y, margin=0.4, mining=mining, squared=False, where=m,
                                       axis_name=axis_name)
                          for mining in ("semi-hard", "batch-hard")])

    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    fn = jax.shard_map(lambda x, y, m, w: w @ losses(x, y, m, "data"), mesh=mesh,
                       in_specs=(P("data"), P("data"), P("data"), P()), out_specs=P())
    sharded = jax.jit(jax.value_and_grad(fn))
    args = [jax.device_put(jnp.asarray(a), NamedSharding(mesh, P("data"))) for a in (x, y, keep)]
    single = jax.value_and_grad(lambda x, w: w @ losses(x, jnp.asarray(y), jnp.asarray(keep)))
    for w in np.eye(2):
        value, grad = sharded(*args, jnp.asarray(w))
        ref_value, ref_grad = single(jnp.asarray(x), jnp.asarray(w))
        assert ref_value > 0.05  # mining found active triplets
        np.testing.assert_allclose(value, ref_value, rtol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


class TestBadInput:
    def test_mining(self):
        with pytest.raises(ValueError, match="mining must be one of"):
            triplet_loss(jnp.ones((4, 2)), jnp.zeros(4, int), mining="hard")

    def test_margin(self):
        with pytest.raises(ValueError, match="margin must be a finite number >= 0"):
            triplet_loss(jnp.ones((4, 2)), jnp.zeros(4, int), margin=-1.0)

    def test_labels_length(self):
        with pytest.raises(ValueError, match="x and labels must have the same length"):
            triplet_loss(jnp.ones((4, 2)), jnp.zeros(3, int))
