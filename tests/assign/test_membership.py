"""Tests for jaxclust.assign.doubly_stochastic_membership against a float64 NumPy transcription."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.assign import doubly_stochastic_membership


def _reference(affinity, epsilon, num_half_steps):
    """METHODS.md §2.8 in the scaling domain, float64: u, v from ones, row update first."""
    n = len(affinity)
    kernel = np.exp(affinity / epsilon)
    u, v = np.ones(n), np.ones(n)
    for step in range(num_half_steps):
        if step % 2 == 0:
            u = (1.0 / n) / (kernel @ v)
        else:
            v = (1.0 / n) / (kernel.T @ u)
    return n * u[:, None] * kernel * v[None, :]


def _affinity(rng, n=20, p=8):
    c = rng.normal(size=(n, p))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return np.abs(c @ c.T)


@pytest.mark.parametrize("epsilon, num_half_steps", [(0.175, 5), (0.12, 5), (0.15, 4), (0.5, 1)])
def test_matches_numpy_reference(rng, epsilon, num_half_steps):
    a = _affinity(rng)
    ours = doubly_stochastic_membership(jnp.asarray(a), epsilon=epsilon, num_half_steps=num_half_steps)
    np.testing.assert_allclose(np.asarray(ours), _reference(a, epsilon, num_half_steps), rtol=1e-10)


def test_doubly_stochastic_and_symmetric(rng):
    a = _affinity(rng)
    pi = np.asarray(doubly_stochastic_membership(jnp.asarray(a)))
    np.testing.assert_allclose(pi.sum(1), 1.0, rtol=1e-12)  # the last half-step is a row update
    np.testing.assert_allclose(pi.sum(0), 1.0, atol=0.2)  # approximately after 5 half-steps
    assert (pi >= 0).all()
    converged = np.asarray(doubly_stochastic_membership(jnp.asarray(a), num_half_steps=301))
    np.testing.assert_allclose(converged.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(converged.sum(0), 1.0, rtol=1e-9)
    np.testing.assert_allclose(converged, converged.T, rtol=1e-8, atol=1e-12)


def test_float32_and_bfloat16_inputs(rng):
    a = _affinity(rng)
    for dtype in (jnp.float32, jnp.bfloat16):
        pi = doubly_stochastic_membership(jnp.asarray(a, dtype), epsilon=0.01)
        assert pi.dtype == jnp.float32
        assert np.isfinite(np.asarray(pi)).all()
        np.testing.assert_allclose(np.asarray(pi).sum(1), 1.0, rtol=1e-5)


def test_gradients(rng):
    a = jnp.asarray(_affinity(rng, n=6, p=3))
    w = jnp.asarray(rng.normal(size=(6, 6)))

    def loss(a, detach_col):
        return jnp.sum(w * doubly_stochastic_membership(a, epsilon=0.3, detach_col=detach_col))

    full = jax.jit(lambda a: loss(a, False))
    jax.test_util.check_grads(full, (a,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    detached = jax.jit(jax.grad(lambda a: loss(a, True)))(a)
    assert np.isfinite(np.asarray(detached)).all()
    assert not np.allclose(np.asarray(detached), np.asarray(jax.grad(full)(a)))


def test_jit_no_retrace(rng):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(a, eps):
        return doubly_stochastic_membership(a, epsilon=eps)

    for i in range(3):
        pi = run(jnp.asarray(_affinity(np.random.default_rng(i), n=8)), 0.1 + 0.05 * i)
    np.testing.assert_allclose(np.asarray(pi).sum(1), 1.0, rtol=1e-12)


class TestBadInput:
    def test_not_square(self):
        with pytest.raises(ValueError, match=r"affinity must be square with shape \[n, n\], got shape \(3, 4\)"):
            doubly_stochastic_membership(jnp.ones((3, 4)))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"affinity must have rank 2 with shape \[n, n\]"):
            doubly_stochastic_membership(jnp.ones(3))

    def test_dtype(self):
        with pytest.raises(TypeError, match="affinity must have a floating-point dtype"):
            doubly_stochastic_membership(jnp.ones((3, 3), jnp.int32))

    def test_nan(self):
        with pytest.raises(ValueError, match="affinity contains 1 NaN or Inf"):
            doubly_stochastic_membership(jnp.ones((3, 3)).at[0, 1].set(jnp.nan))

    def test_epsilon(self):
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got 0.0"):
            doubly_stochastic_membership(jnp.ones((3, 3)), epsilon=0.0)

    def test_num_half_steps(self):
        with pytest.raises(ValueError, match="num_half_steps must be >= 1, got 0"):
            doubly_stochastic_membership(jnp.ones((3, 3)), num_half_steps=0)
