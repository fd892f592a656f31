"""Tests for the I-Con builder: KL(p‖q) per anchor, its constructors, and the SimCLR/SupCon cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from scipy.special import softmax

from jaxclust.losses import (
    icon_comembership,
    icon_cosine,
    icon_gaussian,
    icon_knn,
    icon_labels,
    icon_loss,
    icon_pairs,
    icon_student_t,
    nt_xent,
    supcon,
)


def _rows(w):
    """Row-normalise non-negative weights with a zero diagonal."""
    w = w * (1 - np.eye(len(w)))
    return w / w.sum(1, keepdims=True)


def test_icon_loss_matches_numpy_kl_and_grad():
    rng = np.random.default_rng(0)
    p = rng.random((5, 5)) * (rng.random((5, 5)) < 0.6)
    p[:, 0] += 0.1  # every row has some mass
    p = p / p.sum(1, keepdims=True)
    q_logits = rng.normal(size=(5, 5))
    q = softmax(q_logits, axis=1)
    nz = p > 0
    expected = np.where(nz, p * np.log(np.where(nz, p, 1) / q), 0).sum(1)
    with np.errstate(divide="ignore"):
        log_p = jnp.asarray(np.log(p))
    fn = jax.jit(lambda lq: icon_loss(log_p, lq))
    np.testing.assert_allclose(fn(jnp.asarray(q_logits)), expected, rtol=1e-10)
    check_grads(lambda lq: jnp.sum(fn(lq)), (jnp.asarray(q_logits),), order=1, modes=["rev"],
                atol=1e-6, rtol=1e-6)
    masked = icon_loss(log_p, jnp.asarray(q_logits), where=jnp.arange(5) < 3)
    np.testing.assert_allclose(masked, np.where(np.arange(5) < 3, expected, 0), rtol=1e-10)


def test_simclr_instance_equals_nt_xent():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    log_q = icon_cosine(jnp.asarray(np.concatenate([z1, z2])), temperature=0.3)
    kl = icon_loss(icon_pairs(7), log_q)
    np.testing.assert_allclose(0.5 * (kl[:7] + kl[7:]),
                               nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature=0.3),
                               rtol=1e-10)


def test_supcon_instance_equals_l_out_minus_log_positives():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(6, 2, 3)), np.array([0, 1, 0, 2, 1, 0])
    items, labels = z.reshape(12, 3), np.repeat(y, 2)
    kl = icon_loss(icon_labels(jnp.asarray(labels)), icon_cosine(jnp.asarray(items),
                                                                  temperature=0.1))
    out = supcon(jnp.asarray(z), jnp.asarray(y), temperature=0.1)
    num_pos = (labels[:, None] == labels[None]).sum(1) - 1
    np.testing.assert_allclose(kl, out.per_anchor.reshape(-1) - np.log(num_pos), rtol=1e-10)


def test_constructors_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 2))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    sigma = rng.uniform(0.5, 2.0, 6)
    np.testing.assert_allclose(jnp.exp(icon_gaussian(jnp.asarray(x), sigma=jnp.asarray(sigma))),
                               _rows(np.exp(-d / (2 * sigma[:, None] ** 2))), rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_allclose(jnp.exp(icon_student_t(jnp.asarray(x), dof=3.0)),
                               _rows((1 + d / 3.0) ** -2.0), rtol=1e-10, atol=1e-15)
    knn = np.zeros((6, 6))
    for i in range(6):
        knn[i, np.argsort(np.where(np.eye(6)[i] > 0, np.inf, d[i]))[:2]] = 0.5
    np.testing.assert_allclose(jnp.exp(icon_knn(jnp.asarray(x), k=2)), knn, atol=1e-15)
    phi = softmax(rng.normal(size=(6, 3)), axis=1)
    como = (phi / phi.sum(0)) @ phi.T
    np.testing.assert_allclose(jnp.exp(icon_comembership(jnp.log(jnp.asarray(phi)))), _rows(como),
                               rtol=1e-10, atol=1e-15)
    zn = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(jnp.exp(icon_cosine(jnp.asarray(x), temperature=0.2)),
                               _rows(np.exp(zn @ zn.T / 0.2)), rtol=1e-10, atol=1e-15)


def test_hard_comembership_and_empty_rows():
    labels = jnp.array([0, 0, 1, 2])
    log_phi = jnp.log(jax.nn.one_hot(labels, 3))
    p = jnp.exp(icon_comembership(log_phi))
    np.testing.assert_allclose(p, jnp.exp(icon_labels(labels)), atol=1e-15)
    # Singleton rows have no supervision: loss 0, gradient finite.
    g = jax.grad(lambda z: jnp.sum(icon_loss(icon_labels(labels), icon_cosine(z))))(
        jnp.asarray(np.random.default_rng(4).normal(size=(4, 2))))
    assert np.isfinite(g).all()


def test_sharded_constructors_equal_single_device_rows_and_gradients():
    # 16 samples over 8 shards (2 each): every row must see the other shards' samples.
    rng = np.random.default_rng(5)
    x, z, logits = rng.normal(size=(16, 2)), rng.normal(size=(16, 3)), rng.normal(size=(16, 3))
    sigma = rng.uniform(0.5, 2.0, 16)
    y = rng.integers(0, 3, 16)
    keep = np.ones(16, bool)
    keep[[3, 10]] = False

    def build(x, z, logits, sigma, y, m, axis_name=None):
        log_phi = jax.nn.log_softmax(logits, axis=1)
        return (icon_gaussian(x, sigma=sigma, axis_name=axis_name),
                icon_student_t(z, dof=3.0, axis_name=axis_name),
                icon_cosine(z, temperature=0.3, axis_name=axis_name),
                icon_knn(x, k=3, axis_name=axis_name),
                icon_labels(y, where=m, axis_name=axis_name),
                icon_comembership(log_phi, where=m, axis_name=axis_name))

    def losses(x, z, logits, sigma, y, m, axis_name=None):
        gauss, student, cosine, knn, labels, como = build(x, z, logits, sigma, y, m, axis_name)
        per = jnp.stack([icon_loss(gauss, student), icon_loss(knn, cosine),
                         icon_loss(labels, como, where=m)])  # [3, n]
        if axis_name is None:
            return jnp.mean(per, axis=1)
        return jax.lax.psum(jnp.sum(per, axis=1), axis_name) / jax.lax.psum(per.shape[1],
                                                                            axis_name)

    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    args = tuple(map(jnp.asarray, (x, z, logits, sigma, y, keep)))
    sharded_args = [jax.device_put(a, NamedSharding(mesh, P("data"))) for a in args]
    specs = (P("data"),) * 6
    rows = jax.jit(jax.shard_map(lambda *a: build(*a, "data"), mesh=mesh, in_specs=specs,
                                 out_specs=(P("data"),) * 6))(*sharded_args)
    for got, want in zip(rows, build(*args)):
        assert got.shape == want.shape == (16, 16)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

    def total(fn):  # (sum of the three mean losses, the three means)
        def both(*a):
            means = fn(*a)
            return jnp.sum(means), means

        return both

    sharded = jax.shard_map(total(lambda *a: losses(*a, "data")), mesh=mesh, in_specs=specs,
                            out_specs=(P(), P()))
    (_, value), grads = jax.jit(jax.value_and_grad(sharded, argnums=(0, 1, 2, 3),
                                                   has_aux=True))(*sharded_args)
    (_, ref_value), ref_grads = jax.value_and_grad(total(losses), argnums=(0, 1, 2, 3),
                                                   has_aux=True)(*args)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


def test_sharded_pairs_give_the_single_device_simclr_losses():
    # Each shard stacks its own [z1; z2] (one pair per shard); the per-item KLs are NT-Xent's.
    rng = np.random.default_rng(6)
    z1, z2 = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))

    def local(a, b):
        stack = jnp.concatenate([a, b])
        log_p = icon_pairs(a.shape[0], axis_name="data")
        return log_p, icon_loss(log_p, icon_cosine(stack, temperature=0.5, axis_name="data"))

    shard = NamedSharding(mesh, P("data"))
    log_p, per_item = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")),
                                            out_specs=(P("data"), P("data"))))(
        jax.device_put(jnp.asarray(z1), shard), jax.device_put(jnp.asarray(z2), shard))
    np.testing.assert_array_equal(np.exp(log_p), np.kron(np.eye(8), 1 - np.eye(2)))
    single = icon_loss(icon_pairs(8), icon_cosine(jnp.asarray(np.concatenate([z1, z2])),
                                                  temperature=0.5))
    # Single device orders the items view-major; the shards give [z1[s], z2[s]] for each s.
    np.testing.assert_allclose(per_item, np.asarray(single).reshape(2, 8).T.reshape(-1),
                               rtol=1e-10)


class TestBadInput:
    def test_shapes(self):
        with pytest.raises(ValueError, match="log_p and log_q must have the same shape"):
            icon_loss(jnp.zeros((3, 3)), jnp.zeros((3, 4)))

    def test_knn_k(self):
        with pytest.raises(ValueError, match="k must be < the number of samples"):
            icon_knn(jnp.ones((3, 2)), k=3)

    def test_sigma(self):
        with pytest.raises(ValueError, match="sigma must be a scalar or have shape"):
            icon_gaussian(jnp.ones((3, 2)), sigma=jnp.ones(2))
