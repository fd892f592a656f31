"""Tests for DEC / IDEC (jaxclust.losses._dec) against a float64 NumPy transcription of the paper."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import (
    dec_loss,
    dec_soft_assignment,
    dec_target,
    idec_loss,
    reconstruction_loss,
)
from jaxclust.metrics import accuracy


def _np_q(z, mu, alpha):
    """DEC Eq. 1: Student-t kernel normalised over clusters."""
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    num = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return num / num.sum(1, keepdims=True)


def _np_p(q, f=None):
    """DEC Eq. 3: p_ij ∝ q_ij² / f_j, f_j = Σ_i q_ij."""
    f = q.sum(0) if f is None else f
    w = q**2 / f
    return w / w.sum(1, keepdims=True)


def _np_kl(p, q):
    return (p * np.log(p / q)).sum(1)


def _data(rng, n=12, k=3, d=4):
    return rng.normal(size=(n, d)), rng.normal(size=(k, d))


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_matches_numpy_transcription(rng, alpha):
    z, mu = _data(rng)
    q = dec_soft_assignment(jnp.asarray(z), jnp.asarray(mu), alpha=alpha)
    q_ref = _np_q(z, mu, alpha)
    np.testing.assert_allclose(q, q_ref, rtol=1e-10)
    p_ref = _np_p(q_ref)
    np.testing.assert_allclose(dec_target(q), p_ref, rtol=1e-10)
    f = rng.uniform(1.0, 3.0, 3)
    np.testing.assert_allclose(dec_target(q, frequency=jnp.asarray(f)), _np_p(q_ref, f), rtol=1e-10)
    np.testing.assert_allclose(dec_loss(q, jnp.asarray(p_ref)), _np_kl(p_ref, q_ref), rtol=1e-10)


def test_gradients_match_paper_analytic_formula(rng):
    """DEC's closed-form ∂L/∂z_i and ∂L/∂μ_j (paper, Eq. 4-5) against jax.grad, p held fixed."""
    alpha = 1.5
    z, mu = _data(rng, n=10, k=3, d=2)
    p = _np_p(_np_q(z, mu, alpha))
    loss = lambda z, mu: jnp.sum(dec_loss(dec_soft_assignment(z, mu, alpha=alpha), jnp.asarray(p)))
    gz, gmu = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(z), jnp.asarray(mu))
    q = _np_q(z, mu, alpha)
    diff = z[:, None, :] - mu[None, :, :]
    kern = 1.0 / (1.0 + (diff**2).sum(-1) / alpha)
    coef = ((alpha + 1.0) / alpha) * kern * (p - q)
    np.testing.assert_allclose(gz, (coef[:, :, None] * diff).sum(1), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gmu, -(coef[:, :, None] * diff).sum(0), rtol=1e-8, atol=1e-12)


def test_finite_difference_gradients_and_jit(rng):
    z, mu = _data(rng, n=6, k=3, d=2)
    p = jnp.asarray(_np_p(_np_q(z, mu, 1.0)))

    def f(z, mu, alpha):
        return jnp.sum(dec_loss(dec_soft_assignment(z, mu, alpha=alpha), p))

    check_grads(jax.jit(f), (jnp.asarray(z), jnp.asarray(mu), 1.3), order=1,
                              modes=("rev",), atol=1e-6, rtol=1e-6)
    x, xh = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    check_grads(jax.jit(lambda xh: jnp.sum(reconstruction_loss(jnp.asarray(x), xh))),
                              (jnp.asarray(xh),), order=1, modes=("rev",))


def test_target_where_equals_sliced_and_permutation(rng):
    z, mu = _data(rng, n=10)
    q = dec_soft_assignment(jnp.asarray(z), jnp.asarray(mu))
    where = jnp.asarray(rng.uniform(size=10) < 0.6)
    masked = jax.jit(lambda q, w: dec_target(q, where=w))(q, where)
    np.testing.assert_allclose(masked[where], dec_target(q[where]), rtol=1e-12)
    loss = dec_loss(q, masked, where=where)
    np.testing.assert_allclose(loss[where], dec_loss(q[where], masked[where]), rtol=1e-12)
    assert np.all(np.asarray(loss)[~np.asarray(where)] == 0)
    perm = np.array([2, 0, 1])
    q_perm = dec_soft_assignment(jnp.asarray(z), jnp.asarray(mu[perm]))
    np.testing.assert_allclose(q_perm, q[:, perm], rtol=1e-12)
    np.testing.assert_allclose(dec_target(q_perm), dec_target(q)[:, perm], rtol=1e-12)


def test_sharded_target_equals_single_device(rng):
    q = dec_soft_assignment(jnp.asarray(rng.normal(size=(16, 3))), jnp.asarray(rng.normal(size=(4, 3))))
    where = jnp.asarray(rng.uniform(size=16) < 0.7)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    mapped = jax.jit(jax.shard_map(
        lambda q, w: dec_target(q, where=w, axis_name="data"), mesh=mesh,
        in_specs=(P("data"), P("data")), out_specs=P("data"),
    ))(q, where)
    np.testing.assert_allclose(mapped, dec_target(q, where=where), rtol=1e-12)


def test_idec_is_reconstruction_plus_gamma_kl(rng):
    z, mu = _data(rng)
    x, xh = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    q = _np_q(z, mu, 1.0)
    p = _np_p(q)
    out = idec_loss(jnp.asarray(x), jnp.asarray(xh), jnp.asarray(q), jnp.asarray(p), gamma=0.1)
    np.testing.assert_allclose(out, ((x - xh) ** 2).mean(1) + 0.1 * _np_kl(p, q), rtol=1e-10)


def test_underflowing_q_gives_finite_loss_and_gradient():
    z = jnp.array([[0.0, 0.0], [1e3, 0.0]], jnp.float32)
    mu = jnp.array([[0.0, 0.0], [1e3, 1.0]], jnp.float32)
    p = jnp.array([[0.0, 1.0], [1.0, 0.0]], jnp.float32)
    loss, g = jax.value_and_grad(lambda mu: jnp.sum(dec_loss(dec_soft_assignment(z, mu, alpha=1e-3), p)))(mu)
    assert np.isfinite(float(loss)) and np.isfinite(np.asarray(g)).all()


def test_dec_refines_perturbed_centroids_on_blobs():
    """Optimising only the centres with DEC (targets refreshed every 10 steps) raises ACC."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [6, 0], [0, 6], [6, 6]], float)
    y = np.repeat(np.arange(4), 100)
    z = jnp.asarray(centers[y] + rng.normal(size=(400, 2)))
    mu0 = jnp.asarray(centers + np.array([[2.5, 1.0], [-2.5, 2.0], [2.0, -2.5], [-1.0, -2.5]]))
    opt = optax.adam(0.05)

    def acc(mu):
        labels = jnp.argmax(dec_soft_assignment(z, mu), axis=1)
        return float(accuracy(jnp.asarray(y), labels, num_classes=4, num_clusters=4))

    @jax.jit
    def train(mu):
        def outer(carry, _):
            p = dec_target(dec_soft_assignment(z, carry[0]))

            def inner(carry, _):
                mu, state = carry
                g = jax.grad(lambda m: dec_loss(dec_soft_assignment(z, m), p).mean())(mu)
                upd, state = opt.update(g, state, mu)
                return (optax.apply_updates(mu, upd), state), None

            return jax.lax.scan(inner, carry, length=10)[0], None

        return jax.lax.scan(outer, (mu, opt.init(mu)), length=20)[0][0]

    before, after = acc(mu0), acc(train(mu0))
    assert before < 0.93
    assert after > 0.98 and after > before


class TestBadInput:
    def test_rank_and_dims(self):
        with pytest.raises(ValueError, match=r"z must have rank 2 with shape \[n, d\]"):
            dec_soft_assignment(jnp.ones(3), jnp.ones((2, 3)))
        with pytest.raises(ValueError, match=r"centroids must have shape \[k, d\] with d=3"):
            dec_soft_assignment(jnp.ones((4, 3)), jnp.ones((2, 2)))

    def test_dtype(self):
        with pytest.raises(TypeError, match="z must have a floating-point dtype"):
            dec_soft_assignment(jnp.ones((4, 3), int), jnp.ones((2, 3)))

    def test_alpha(self):
        with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
            dec_soft_assignment(jnp.ones((4, 3)), jnp.ones((2, 3)), alpha=0.0)

    def test_shapes_and_mask(self):
        with pytest.raises(ValueError, match="q and p must have the same shape"):
            dec_loss(jnp.ones((4, 3)), jnp.ones((4, 2)))
        with pytest.raises(ValueError, match=r"frequency must have shape \[k\] = \(3,\)"):
            dec_target(jnp.ones((4, 3)), frequency=jnp.ones(2))
        with pytest.raises(TypeError, match="where must be a boolean mask"):
            dec_target(jnp.ones((4, 3)), where=jnp.ones(4))
        with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
            idec_loss(jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), gamma=-1.0)
