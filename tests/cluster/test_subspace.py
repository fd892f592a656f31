"""Tests for jaxclust.cluster.self_expression and subspace_clustering (METHODS.md §1.9)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxclust.cluster import SubspaceResult, kmeans, self_expression, subspace_clustering
from jaxclust.data import make_subspaces
from jaxclust.metrics import accuracy

_expr = jax.jit(self_expression, static_argnames=("diagonal",))


def _numpy_exact(x, lam):
    """Brute force, columns as samples: column j solves min ‖z_j − Z_{−j} c‖² + λ‖c‖² by lstsq."""
    z = np.asarray(x, np.float64).T
    d, n = z.shape
    c = np.zeros((n, n))
    for j in range(n):
        others = np.delete(np.arange(n), j)
        a = np.vstack([z[:, others], np.sqrt(lam) * np.eye(n - 1)])
        b = np.concatenate([z[:, j], np.zeros(n - 1)])
        c[others, j] = np.linalg.lstsq(a, b, rcond=None)[0]
    return c


def _numpy_posthoc(x, lam):
    """Ridge C = (ZᵀZ + λI)^{-1} ZᵀZ by a direct solve, then the diagonal zeroed."""
    z = np.asarray(x, np.float64).T
    gram = z.T @ z
    c = np.linalg.solve(gram + lam * np.eye(len(gram)), gram)
    np.fill_diagonal(c, 0.0)
    return c


@pytest.mark.parametrize("shape", [(12, 20), (30, 6)])  # n <= d (Cholesky), n > d (Woodbury)
def test_coefficients_match_numpy(shape):
    x = np.random.default_rng(0).normal(size=shape)
    c, lam = _expr(jnp.asarray(x), regularization=0.05)
    np.testing.assert_allclose(float(lam), 0.05 * np.mean(np.sum(x**2, axis=1)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(c), _numpy_exact(x, float(lam)), atol=1e-9)
    post, _ = _expr(jnp.asarray(x), regularization=0.05, diagonal="posthoc")
    np.testing.assert_allclose(np.asarray(post), _numpy_posthoc(x, float(lam)), atol=1e-9)


def test_scale_invariance_and_gradient():
    x = np.random.default_rng(1).normal(size=(8, 5))
    c1, _ = _expr(jnp.asarray(x), regularization=0.1)
    c2, _ = _expr(jnp.asarray(3.0 * x), regularization=0.1)
    np.testing.assert_allclose(np.asarray(c1), np.asarray(c2), atol=1e-12)
    check_grads(
        lambda x: _expr(x, regularization=0.1)[0], (jnp.asarray(x),), order=1, modes=("rev",)
    )


_kmeans = jax.jit(kmeans, static_argnames=("k", "n_init"))
_cluster = jax.jit(subspace_clustering, static_argnames=("k", "top_r", "diagonal", "n_init"))


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_union_of_subspaces_is_recovered_where_kmeans_fails(noise):
    ds = make_subspaces(key=jax.random.key(0), n=160, k=4, d=16, rank=3, noise=noise,
                        dtype=jnp.float64)
    result = _cluster(ds.x, k=4, key=jax.random.key(1), n_init=4)
    assert isinstance(result, SubspaceResult)
    acc = float(accuracy(ds.y, result.labels))
    km = float(accuracy(ds.y, _kmeans(ds.x, k=4, key=jax.random.key(2), n_init=4).labels))
    assert acc >= 0.95 and km <= 0.7, (acc, km)
    if noise == 0.0:
        assert acc == 1.0  # METHODS.md §1.9: ACC = 1 on independent noise-free subspaces
    w = np.asarray(result.affinity)
    c = np.abs(np.asarray(result.coefficients))
    np.testing.assert_allclose(w, c + c.T, rtol=1e-12)
    assert (np.diagonal(np.asarray(result.coefficients)) == 0).all()


def test_top_r_keeps_largest_entries_per_column():
    ds = make_subspaces(key=jax.random.key(0), n=160, k=4, d=16, rank=3, noise=0.05,
                        dtype=jnp.float64)
    full = np.asarray(_expr(ds.x, regularization=1e-2)[0])
    result = _cluster(ds.x, k=4, key=jax.random.key(1), top_r=6, n_init=4)
    kept = np.asarray(result.coefficients)
    for j in range(0, 160, 17):
        top = np.argsort(-np.abs(full[:, j]), kind="stable")[:6]
        np.testing.assert_allclose(kept[top, j], full[top, j], atol=1e-10)
        assert np.count_nonzero(kept[:, j]) == 6
    assert float(accuracy(ds.y, result.labels)) >= 0.95


class TestBadInput:
    x = jnp.ones((10, 4))

    def test_options(self):
        with pytest.raises(ValueError, match="regularization must be a finite number >= 0"):
            self_expression(self.x, regularization=-1.0)
        with pytest.raises(ValueError, match="diagonal must be one of"):
            self_expression(self.x, diagonal="none")
        with pytest.raises(ValueError, match="top_r must be <= the number of samples"):
            subspace_clustering(self.x, k=2, key=jax.random.key(0), top_r=11)
        with pytest.raises(ValueError, match="k must be <= the number of samples"):
            subspace_clustering(self.x, k=11, key=jax.random.key(0))
        with pytest.raises(ValueError, match="key is required"):
            subspace_clustering(self.x, k=2, key=None)

    def test_data(self):
        with pytest.raises(ValueError, match="x must have rank 2"):
            self_expression(self.x[0])
        with pytest.raises(TypeError, match="floating-point dtype"):
            subspace_clustering(jnp.ones((10, 4), int), k=2, key=jax.random.key(0))
        with pytest.raises(ValueError, match="NaN or Inf"):
            self_expression(self.x.at[0, 0].set(jnp.nan))
