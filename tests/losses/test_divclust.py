"""Tests for DivClust diversity, threshold controller and consensus (jaxclust.losses._divclust)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import (
    co_association,
    consensus_clustering,
    divclust_init,
    divclust_loss,
    divclust_similarity,
    divclust_update,
)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_sim(a):
    """sim(g, h) = (1/C) Σ_c max_c' ⟨â^g_c, â^h_c'⟩ with columns L2-normalised over samples."""
    h = a.shape[0]
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    out = np.zeros((h, h))
    for g in range(h):
        for j in range(h):
            out[g, j] = (an[g].T @ an[j]).max(1).mean()
    return out


def test_similarity_and_loss_match_numpy(rng):
    a = _softmax(rng.normal(size=(3, 20, 4)) * 2)
    sim = jax.jit(divclust_similarity)(jnp.asarray(a))
    ref = _np_sim(a)
    np.testing.assert_allclose(sim, ref, rtol=1e-10)
    d = float(np.median(ref[~np.eye(3, dtype=bool)]))
    expected = sum(max(ref[g, j] - d, 0) for g in range(3) for j in range(3) if g != j)
    np.testing.assert_allclose(divclust_loss(jnp.asarray(a), d), expected, rtol=1e-10)
    assert float(divclust_loss(jnp.asarray(a), 1.0)) == 0.0
    assert float(divclust_loss(jnp.asarray(a[:1]), 0.0)) == 0.0  # one head: no pairs


def test_gradients_where_and_sharding(rng):
    a = jnp.asarray(_softmax(rng.normal(size=(2, 16, 3)) * 2))
    check_grads(jax.jit(lambda a: divclust_loss(a, 0.3)), (a,), order=1, modes=("rev",))
    where = jnp.asarray(rng.uniform(size=16) < 0.6)
    masked = divclust_similarity(a, where=where)
    np.testing.assert_allclose(masked, divclust_similarity(a[:, where]), rtol=1e-12)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    mapped = jax.jit(jax.shard_map(
        lambda a, w: divclust_loss(a, 0.3, where=w, axis_name="data"), mesh=mesh,
        in_specs=(P(None, "data"), P("data")), out_specs=P(),
    ))(a, where)
    np.testing.assert_allclose(mapped, divclust_loss(a, 0.3, where=where), rtol=1e-12)
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit):
        a_e = jax.device_put(a, NamedSharding(explicit, P(None, "data")))
        w_e = jax.device_put(where, NamedSharding(explicit, P("data")))
        on_explicit = jax.jit(lambda a, w: divclust_loss(a, 0.3, where=w))(a_e, w_e)
    np.testing.assert_allclose(on_explicit, mapped, rtol=1e-12)


def test_threshold_controller():
    same = jnp.array([[0, 0, 0, 1, 1, 1, 2, 2, 2]] * 2)  # NMI = 1
    diff = jnp.array([[0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 2, 0, 1, 2, 0, 1, 2]])  # NMI = 0
    update = jax.jit(divclust_update, static_argnames=("num_clusters", "update_every"))
    state = divclust_init(2, memory_size=9, threshold=0.5)
    for i in range(4):  # not due yet: threshold unchanged, memory filled
        state = update(state, same, num_clusters=3, nmi_target=0.5, update_every=5)
        assert float(state.threshold) == 0.5
    state = update(state, same, num_clusters=3, nmi_target=0.5, update_every=5)
    np.testing.assert_allclose(state.threshold, 0.5 * 0.99, rtol=1e-12)
    np.testing.assert_allclose(state.mean_nmi, 1.0, rtol=1e-12)
    for _ in range(5):  # memory now holds only the uncorrelated labelings: NMI = 0 < target
        state = update(state, diff, num_clusters=3, nmi_target=0.5, update_every=5)
    np.testing.assert_allclose(state.mean_nmi, 0.0, atol=1e-12)
    np.testing.assert_allclose(state.threshold, 0.5 * 0.99 * 1.01, rtol=1e-12)
    # d is clipped at 1: with nmi_target = 1 it never moves below 1, so the loss stays 0.
    state = divclust_init(2, memory_size=9)
    state = divclust_update(state, same, num_clusters=3, nmi_target=1.0, update_every=1)
    assert float(state.threshold) == 1.0


def test_ring_buffer_and_mask():
    state = divclust_init(1, memory_size=5)
    labels = jnp.array([[0, 1, 2]])
    state = divclust_update(state, labels, num_clusters=3, nmi_target=0.5)
    state = divclust_update(state, labels, num_clusters=3, nmi_target=0.5,
                            where=jnp.array([True, False, True]))
    np.testing.assert_array_equal(state.memory, [[2, 1, 2, 0, -1]])
    assert int(state.position) == 1


def test_co_association_and_consensus(rng):
    labels = rng.integers(0, 3, size=(4, 7))
    a = np.asarray(co_association(jnp.asarray(labels)))
    ref = np.mean(labels[:, :, None] == labels[:, None, :], axis=0)
    np.testing.assert_allclose(a, ref, rtol=1e-12)
    # Noisy relabelled copies of a ground truth: the consensus recovers it.
    y = np.repeat(np.arange(3), 20)
    views = []
    for h in range(5):
        noisy = y.copy()
        flip = rng.uniform(size=60) < 0.15
        noisy[flip] = rng.integers(0, 3, flip.sum())
        views.append(rng.permutation(3)[noisy])
    out = consensus_clustering(jnp.asarray(np.stack(views)), k=3, num_clusters=3, key=jax.random.key(0),
                               n_init=1)
    assert sklearn.metrics.adjusted_rand_score(y, np.asarray(out)) > 0.9


class TestBadInput:
    def test_rank(self):
        with pytest.raises(ValueError, match=r"assignments must have rank 3 with shape \[h, n, k\]"):
            divclust_loss(jnp.ones((4, 3)), 0.5)

    def test_threshold(self):
        with pytest.raises(ValueError, match=r"threshold must be a finite number >= 0 and <= 1"):
            divclust_loss(jnp.ones((2, 4, 3)), 1.5)

    def test_update_shapes(self):
        with pytest.raises(ValueError, match=r"labels must have shape \[h, n\] with h=2"):
            divclust_update(divclust_init(2), jnp.zeros((3, 4), int), num_clusters=2, nmi_target=0.5)
        with pytest.raises(TypeError, match="labels must have an integer dtype"):
            co_association(jnp.zeros((2, 4)))
