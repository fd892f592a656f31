"""Tests for jaxclust.losses.matryoshka: the wrapped loss equals the explicit sum over prefixes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.losses import matryoshka, nt_xent, supcon


def test_equals_explicit_weighted_sum():
    rng = np.random.default_rng(0)
    z1, z2 = jnp.asarray(rng.normal(size=(5, 8))), jnp.asarray(rng.normal(size=(5, 8)))
    dims, weights = (2, 4, 8), (0.5, 1.0, 2.0)
    wrapped = matryoshka(nt_xent, dims, weights, argnums=(0, 1))
    expected = sum(c * nt_xent(z1[:, :m], z2[:, :m], temperature=0.2)
                   for m, c in zip(dims, weights))
    np.testing.assert_allclose(wrapped(z1, z2, temperature=0.2), expected, rtol=1e-12)
    jitted = jax.jit(lambda a, b: jnp.mean(wrapped(a, b, temperature=0.2)))
    np.testing.assert_allclose(jitted(z1, z2), jnp.mean(expected), rtol=1e-12)
    g = jax.grad(lambda a: jnp.mean(wrapped(a, z2)))(z1)
    assert np.isfinite(g).all() and np.abs(g[:, 4:]).sum() > 0


def test_default_weights_and_untouched_arguments():
    z = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2, 6)))
    y = jnp.array([0, 1, 0, 1])
    wrapped = matryoshka(lambda z, y: supcon(z, y).loss, (3, 6))
    expected = supcon(z[..., :3], y).loss + supcon(z, y).loss
    np.testing.assert_allclose(wrapped(z, y), expected, rtol=1e-12)


class TestBadInput:
    @pytest.mark.parametrize("dims", [(), (4, 2), (0, 2)])
    def test_dims(self, dims):
        with pytest.raises(ValueError, match="dims must be non-empty, positive and strictly"):
            matryoshka(nt_xent, dims)

    def test_weights(self):
        with pytest.raises(ValueError, match="weights must have one entry per dim"):
            matryoshka(nt_xent, (2, 4), (1.0,))

    def test_too_wide(self):
        with pytest.raises(ValueError, match="dims must be <= the feature dimension"):
            matryoshka(nt_xent, (2, 16), argnums=(0, 1))(jnp.ones((3, 8)), jnp.ones((3, 8)))

    def test_not_callable(self):
        with pytest.raises(TypeError, match="loss_fn must be callable"):
            matryoshka(3, (2,))
