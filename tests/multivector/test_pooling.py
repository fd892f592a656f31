"""Tests for jaxclust.multivector.token_pool against SciPy Ward + fcluster and NumPy means."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from jaxclust.multivector import PooledTokens, token_pool


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference(tokens, valid, factor, rounding="floor", protected=0):
    """PyLate-style pooling transcribed in NumPy: Ward on unit vectors, maxclust cut, means."""
    rows = np.arange(len(tokens))
    keep = rows[(rows < protected) & valid]
    pool = rows[(rows >= protected) & valid]
    n = len(pool)
    n_c = max(1, n // factor) if rounding == "floor" else max(1, -(-n // factor))
    if n > 1:
        labels = fcluster(linkage(_unit(tokens[pool]), "ward"), n_c, "maxclust")
    else:
        labels = np.ones(n, int)
    means = [tokens[pool[labels == c]].mean(0) for c in np.unique(labels)]
    return tokens[keep], means, labels


def _compare(out, tokens, valid, factor, rounding="floor", protected=0):
    kept, means, labels = _reference(tokens, valid, factor, rounding, protected)
    mask = np.asarray(out.mask)
    got = np.asarray(out.tokens)[mask]
    assert mask.sum() == len(kept) + len(means)
    np.testing.assert_allclose(got[: len(kept)], kept, rtol=1e-12)
    # Same set of cluster means (SciPy numbers clusters differently).
    ours = got[len(kept):]
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(ours), order(np.asarray(means)), rtol=1e-10, atol=1e-12)
    # Same partition of the pooled tokens.
    lab = np.asarray(out.labels)[(np.arange(len(tokens)) >= protected) & valid]
    assert np.array_equal(lab[:, None] == lab[None, :], labels[:, None] == labels[None, :])


@pytest.mark.parametrize("factor,rounding,protected", [(2, "floor", 0), (3, "ceil", 1), (4, "floor", 1)])
def test_ward_matches_scipy(factor, rounding, protected):
    rng = np.random.default_rng(factor)
    t, d = 30, 6
    tokens = _unit(rng.normal(size=(t, d)))
    valid = np.arange(t) < 23
    out = token_pool(jnp.asarray(tokens), jnp.asarray(valid), pool_factor=factor,
                     rounding=rounding, num_protected=protected)
    assert isinstance(out, PooledTokens)
    _compare(out, tokens, valid, factor, rounding, protected)


def test_vmap_over_padded_documents_equals_each_alone():
    rng = np.random.default_rng(7)
    docs = _unit(rng.normal(size=(3, 20, 4)))
    lengths = np.array([20, 11, 2])
    masks = np.arange(20)[None, :] < lengths[:, None]
    pool = jax.jit(jax.vmap(lambda x, m: token_pool(x, m, pool_factor=2)))
    out = pool(jnp.asarray(docs), jnp.asarray(masks))
    for i in range(3):
        one = PooledTokens(*(a[i] for a in out))
        _compare(one, docs[i], masks[i], 2)
        assert int(one.mask.sum()) == max(1, lengths[i] // 2)


def test_pool_factor_one_and_renormalize():
    rng = np.random.default_rng(8)
    x = _unit(rng.normal(size=(9, 3)))
    same = token_pool(jnp.asarray(x), pool_factor=1)
    np.testing.assert_allclose(np.asarray(same.tokens), x, rtol=1e-12)
    normed = token_pool(jnp.asarray(x), pool_factor=3, renormalize=True)
    norms = np.linalg.norm(np.asarray(normed.tokens)[np.asarray(normed.mask)], axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-12)


def test_kmeans_method():
    rng = np.random.default_rng(9)
    centres = _unit(rng.normal(size=(4, 8)))
    x = _unit(np.repeat(centres, 6, axis=0) + 0.05 * rng.normal(size=(24, 8)))
    valid = np.arange(24) < 22
    run = jax.jit(lambda x, m, k: token_pool(x, m, pool_factor=5, method="kmeans", key=k))
    out = run(jnp.asarray(x), jnp.asarray(valid), jax.random.key(0))
    again = run(jnp.asarray(x), jnp.asarray(valid), jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(out.labels), np.asarray(again.labels))
    labels = np.asarray(out.labels)
    assert (labels[~valid] == -1).all() and labels[valid].max() < 22 // 5
    mask = np.asarray(out.mask)
    assert mask.sum() == len(np.unique(labels[valid])) <= 4
    for c in np.unique(labels[valid]):
        np.testing.assert_allclose(np.asarray(out.tokens)[c], x[labels == c].mean(0), rtol=1e-10)


class TestBadInput:
    def test_method(self):
        with pytest.raises(ValueError, match="method must be one of"):
            token_pool(jnp.ones((4, 2)), method="sequential")

    def test_kmeans_needs_key(self):
        with pytest.raises(ValueError, match="key is required"):
            token_pool(jnp.ones((4, 2)), method="kmeans")

    def test_pool_factor(self):
        with pytest.raises(ValueError, match="pool_factor must be >= 1"):
            token_pool(jnp.ones((4, 2)), pool_factor=0)

    def test_mask(self):
        with pytest.raises(ValueError, match="mask and tokens must have the same length"):
            token_pool(jnp.ones((4, 2)), jnp.ones(3, bool))

    def test_protected(self):
        with pytest.raises(ValueError, match="num_protected must be <="):
            token_pool(jnp.ones((4, 2)), num_protected=5)

    def test_rounding(self):
        with pytest.raises(ValueError, match="rounding must be one of"):
            token_pool(jnp.ones((4, 2)), rounding="round")
