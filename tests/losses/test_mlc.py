"""Tests for jaxclust.losses.mlc_loss against a float64 NumPy transcription of MLC (§2.8, §3.11)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import logsumexp

from jaxclust.losses import MLCResult, mlc_loss


def _np_membership(c, eps, num_half_steps=5):
    """§2.8: A = |CCᵀ|, log-domain half-updates row, column, ... from zero potentials; Π = n P."""
    a = np.abs(c @ c.T)
    n = len(a)
    f = np.zeros(n)
    g = np.zeros(n)
    for step in range(num_half_steps):
        if step % 2 == 0:
            f = -eps * np.log(n) - eps * logsumexp((g[None, :] + a) / eps, axis=1)
        else:
            g = -eps * np.log(n) - eps * logsumexp((f[:, None] + a) / eps, axis=0)
    return n * np.exp((f[:, None] + g[None, :] + a) / eps)


def _np_mlc(z, c, gamma=1.0, gamma_pi=0.05, e=0.1, eps=0.175):
    """§3.11: L = −R(Z) + γ Σ_j (t_j/2N) ln det(I + d/(t_j e) Zᵀdiag(Π_:j)Z) + (γ_Π/2)‖Π‖², t_j = ΣΠ_:j + 1e-8."""
    n, d = z.shape
    pi = _np_membership(c, eps)
    rate = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * e) * z.T @ z)[1]
    rc = 0.0
    for j in range(n):
        t = pi[:, j].sum() + 1e-8
        rc += t / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (t * e) * (z * pi[:, j : j + 1]).T @ z)[1]
    return -rate + gamma * rc + 0.5 * gamma_pi * (pi**2).sum(), rate, rc, pi


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _features(rng, n=12, d=5, p=4):
    return _unit(rng.normal(size=(n, d))), _unit(rng.normal(size=(n, p)))


_jit_mlc = jax.jit(lambda z, c, g, gp: mlc_loss(z, c, gamma=g, gamma_pi=gp))


def test_matches_numpy(rng):
    z, c = _features(rng)
    for gamma, gamma_pi in ((1.0, 0.05), (0.5, 0.3)):
        res = _jit_mlc(jnp.asarray(z), jnp.asarray(c), gamma, gamma_pi)
        assert isinstance(res, MLCResult)
        loss, rate, rc, pi = _np_mlc(z, c, gamma, gamma_pi)
        # The reference's +1e-8 on t_j ≈ 1 changes R_c at the 1e-9 level.
        np.testing.assert_allclose(np.asarray(res.membership), pi, rtol=1e-10)
        np.testing.assert_allclose(float(res.rate), rate, rtol=1e-12)
        np.testing.assert_allclose(float(res.class_rate), rc, rtol=1e-7)
        np.testing.assert_allclose(float(res.loss), loss, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(res.membership).sum(1), 1.0, rtol=1e-12)  # last update: rows


def test_warmup_chunking_and_n_less_than_d(rng):
    z, c = _features(rng)
    run = jax.jit(mlc_loss, static_argnames=("warmup", "chunk_size"))
    full = run(jnp.asarray(z), jnp.asarray(c))
    warm = run(jnp.asarray(z), jnp.asarray(c), warmup=True)
    np.testing.assert_allclose(float(warm.loss), -float(full.rate), rtol=1e-14)
    chunked = run(jnp.asarray(z), jnp.asarray(c), chunk_size=5)
    np.testing.assert_allclose(float(chunked.loss), float(full.loss), rtol=1e-12)
    z2, c2 = _features(rng, n=4, d=7, p=3)  # n < d: the N×N (Sylvester) path
    np.testing.assert_allclose(float(run(jnp.asarray(z2), jnp.asarray(c2)).loss), _np_mlc(z2, c2)[0], rtol=1e-7)


def test_gradients_match_finite_differences(rng):
    z, c = _features(rng, n=6, d=3, p=3)
    # detach_col=True makes the C-gradient a deliberate approximation; differentiate exactly here.
    f = jax.jit(lambda z, c: mlc_loss(z, c, detach_col=False, epsilon=0.5).loss)
    check_grads(f, (jnp.asarray(z), jnp.asarray(c)), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    gz, gc = jax.jit(jax.grad(lambda z, c: mlc_loss(z, c).loss, argnums=(0, 1)))(jnp.asarray(z), jnp.asarray(c))
    assert np.isfinite(np.asarray(gz)).all() and np.isfinite(np.asarray(gc)).all()
    assert np.abs(np.asarray(gc)).max() > 0  # gradients reach the cluster head through Π


def test_separated_clusters_have_block_membership(rng):
    # Two clusters of near-parallel cluster features: Π concentrates within blocks, and each
    # soft cluster (a column of Π) codes more cheaply than the whole set.
    base = np.eye(4)[:2]
    c = _unit(np.repeat(base, 6, axis=0) + 0.05 * rng.normal(size=(12, 4)))
    res = mlc_loss(jnp.asarray(c), jnp.asarray(c), epsilon=0.1)
    pi = np.asarray(res.membership)
    assert pi[:6, :6].sum() / pi[:6].sum() > 0.95 and pi[6:, 6:].sum() / pi[6:].sum() > 0.95
    assert float(res.rate) > float(res.class_rate) > 0


class TestBadInput:
    z = jnp.ones((6, 3)) / jnp.sqrt(3.0)

    def test_leading(self):
        with pytest.raises(ValueError, match="z and c must have the same length: z has 6, c has 5"):
            mlc_loss(self.z, jnp.ones((5, 3)))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"c must have rank 2 with shape \[n, p\]"):
            mlc_loss(self.z, jnp.ones(6))

    def test_dtype(self):
        with pytest.raises(TypeError, match="c must have a floating-point dtype"):
            mlc_loss(self.z, jnp.ones((6, 3), jnp.int32))

    def test_hyperparameters(self):
        with pytest.raises(ValueError, match="gamma_pi must be a finite number >= 0"):
            mlc_loss(self.z, self.z, gamma_pi=-1.0)
        with pytest.raises(ValueError, match="eps_sq must be a finite number > 0"):
            mlc_loss(self.z, self.z, eps_sq=0.0)
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
            mlc_loss(self.z, self.z, epsilon=0.0)
        with pytest.raises(TypeError, match="warmup must be a Python bool"):
            mlc_loss(self.z, self.z, warmup=jnp.array(True))
