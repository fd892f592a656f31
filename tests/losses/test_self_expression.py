"""Tests for the DSC-Net self-expression loss (rows-as-samples) against NumPy and §1.9(b)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxclust.losses import (
    SelfExpressionResult,
    self_expression_loss,
    self_expressive_affinity,
    zero_diagonal,
)


def _np_loss(z, c, x=None, x_hat=None, lambda1=1.0, lambda2=1.0, norm="l2"):
    """§3.19 in the column convention of DSC-Net: Z_col = zᵀ, C_col = Cᵀ, diag(C) = 0."""
    zc = z.T
    cc = c.T.copy()
    np.fill_diagonal(cc, 0.0)
    se = ((zc - zc @ cc) ** 2).sum()
    reg = np.abs(cc).sum() if norm == "l1" else (cc**2).sum()
    rec = 0.0 if x is None else 0.5 * ((x - x_hat) ** 2).sum()
    return rec + lambda1 * reg + 0.5 * lambda2 * se, se, reg, rec


_jit = jax.jit(self_expression_loss, static_argnames=("norm",))


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_matches_numpy_column_convention(rng, norm):
    z = rng.normal(size=(9, 4))
    c = rng.normal(size=(9, 9))  # a non-zero diagonal must be ignored
    x, x_hat = rng.normal(size=(9, 6)), rng.normal(size=(9, 6))
    res = _jit(jnp.asarray(z), jnp.asarray(c), jnp.asarray(x), jnp.asarray(x_hat), lambda1=0.3, lambda2=2.0, norm=norm)
    assert isinstance(res, SelfExpressionResult)
    ref = _np_loss(z, c, x, x_hat, 0.3, 2.0, norm)
    for ours, theirs in zip(res, ref):
        np.testing.assert_allclose(float(ours), theirs, rtol=1e-12)
    without = _jit(jnp.asarray(z), jnp.asarray(c), lambda1=0.3, lambda2=2.0, norm=norm)
    assert float(without.reconstruction) == 0.0
    np.testing.assert_allclose(float(without.loss), ref[0] - ref[3], rtol=1e-12)


def test_gradients_and_zero_diagonal(rng):
    z = jnp.asarray(rng.normal(size=(5, 3)))
    c = jnp.asarray(rng.normal(size=(5, 5)))
    f = jax.jit(lambda z, c: self_expression_loss(z, c, lambda1=0.7, lambda2=1.3).loss)
    check_grads(f, (z, c), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    g1 = jax.jit(jax.grad(lambda c: self_expression_loss(z, c, lambda1=0.7, norm="l1").loss))(c)
    np.testing.assert_array_equal(np.diag(np.asarray(g1)), 0.0)  # the diagonal is never trained
    # ℓ1 subgradient: sign(C) off the diagonal plus the smooth part (finite differences, C ≠ 0).
    smooth = jax.grad(lambda c: self_expression_loss(z, c, lambda1=0.0, norm="l1").loss)(c)
    off = 1.0 - np.eye(5)
    np.testing.assert_allclose(np.asarray(g1 - smooth), 0.7 * np.sign(np.asarray(c)) * off, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(zero_diagonal(c)), np.asarray(c) * off)


def test_gradient_descent_converges_to_closed_form(rng):
    # Z fixed, p = 2: min λ1‖C‖² + (λ2/2)‖Z − CZ‖², diag C = 0, is ridge self-expression with
    # λ = 2λ1/λ2. §1.9(b) (column convention): B = (ZcᵀZc + λI)^{-1}, C_col = I − B diag(B)^{-1};
    # in rows C = C_colᵀ.
    n, lam1, lam2 = 10, 0.5, 1.0
    z = rng.normal(size=(n, 4))
    lam = 2 * lam1 / lam2
    b = np.linalg.inv(z @ z.T + lam * np.eye(n))
    c_col = np.eye(n) - b / np.diag(b)[None, :]
    expected = c_col.T
    lipschitz = lam2 * np.linalg.eigvalsh(z @ z.T).max() + 2 * lam1
    grad = jax.grad(lambda c: self_expression_loss(jnp.asarray(z), c, lambda1=lam1, lambda2=lam2).loss)

    @jax.jit
    def descend(c):
        return jax.lax.fori_loop(0, 3000, lambda _, c: c - grad(c) / lipschitz, c)

    c = np.asarray(zero_diagonal(descend(jnp.zeros((n, n)))))
    np.testing.assert_allclose(c, expected, atol=1e-8)
    w = np.asarray(self_expressive_affinity(jnp.asarray(c)))
    np.testing.assert_allclose(w, np.abs(expected) + np.abs(expected).T, atol=2e-8)


class TestBadInput:
    z = jnp.ones((4, 2))

    def test_square(self):
        with pytest.raises(ValueError, match=r"coefficients must be square with shape \[n, n\], got shape \(4, 3\)"):
            self_expression_loss(self.z, jnp.ones((4, 3)))

    def test_size(self):
        with pytest.raises(ValueError, match=r"coefficients must have shape \[n, n\] with n=4"):
            self_expression_loss(self.z, jnp.ones((3, 3)))

    def test_norm(self):
        with pytest.raises(ValueError, match=r"norm must be one of \['l1', 'l2'\], got 'fro'"):
            self_expression_loss(self.z, jnp.ones((4, 4)), norm="fro")

    def test_reconstruction_pair(self):
        with pytest.raises(ValueError, match="x and x_hat must be given together"):
            self_expression_loss(self.z, jnp.ones((4, 4)), jnp.ones((4, 2)))
        with pytest.raises(ValueError, match=r"x and x_hat must both have shape \[n, e\] with n=4"):
            self_expression_loss(self.z, jnp.ones((4, 4)), jnp.ones((4, 2)), jnp.ones((4, 3)))

    def test_types_and_weights(self):
        with pytest.raises(TypeError, match="coefficients must have a floating-point dtype"):
            zero_diagonal(jnp.ones((2, 2), jnp.int32))
        with pytest.raises(ValueError, match="lambda1 must be a finite number >= 0"):
            self_expression_loss(self.z, jnp.ones((4, 4)), lambda1=-1.0)
