"""Tests for jaxclust.cluster.agglomerative against SciPy's linkage / fcluster and scikit-learn."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from jaxclust.cluster import AgglomerativeResult, agglomerative

LINKAGES = ["ward", "average", "complete", "single"]


@functools.lru_cache(maxsize=None)
def _jitted(method):
    # num_clusters traced: one compilation per linkage serves every cut.
    return jax.jit(functools.partial(agglomerative, linkage=method))


def _same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


@pytest.mark.parametrize("method", LINKAGES)
def test_matches_scipy_linkage_and_fcluster(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    z = linkage(x, method)
    fn = _jitted(method)
    full = fn(jnp.asarray(x), jnp.int32(1))
    # Whole tree: same ids, heights and sizes, row by row.
    np.testing.assert_allclose(np.asarray(full.linkage), z, rtol=1e-9, atol=1e-12)
    assert int(full.num_merges) == 29 and int(full.num_clusters) == 1
    for k in (2, 5, 11, 30):
        cut = fn(jnp.asarray(x), jnp.int32(k))
        ref = fcluster(z, k, "maxclust")
        assert _same_partition(cut.labels, ref)
        assert adjusted_rand_score(ref, np.asarray(cut.labels)) == pytest.approx(1.0)
        assert int(cut.num_clusters) == k and int(cut.num_merges) == 30 - k
        assert sorted(set(np.asarray(cut.labels).tolist())) == list(range(k))
        # Rows past the merges performed are padding.
        np.testing.assert_array_equal(np.asarray(cut.linkage[30 - k :]), np.tile([-1, -1, 0, 0], (k - 1, 1)))
        np.testing.assert_allclose(np.asarray(cut.linkage[: 30 - k]), z[: 30 - k], rtol=1e-9)


def test_matches_sklearn_ward_float32():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    ours = agglomerative(jnp.asarray(x), 6)
    ref = AgglomerativeClustering(n_clusters=6, linkage="ward").fit(x.astype(np.float64))
    assert _same_partition(ours.labels, ref.labels_)
    z = linkage(x.astype(np.float64), "ward")
    full = agglomerative(jnp.asarray(x), 1)
    assert full.linkage.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(full.linkage[:, 2]), z[:, 2], rtol=1e-4)


def test_labels_ordered_by_first_point_and_int32():
    x = jnp.asarray([[0.0], [10.0], [0.1], [10.2], [20.0]])
    result = agglomerative(x, 3)
    assert isinstance(result, AgglomerativeResult)
    assert result.labels.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(result.labels), [0, 1, 0, 1, 2])


def test_where_equals_slicing_and_vmaps_over_padded_sets():
    rng = np.random.default_rng(2)
    t, d = 24, 3
    lengths = np.array([24, 17, 5, 1])
    ks = np.array([4, 6, 5, 1])
    sets = rng.normal(size=(4, t, d))
    where = np.arange(t)[None, :] < lengths[:, None]
    # Masked rows hold garbage that must not matter.
    sets = np.where(where[:, :, None], sets, 1e3)
    batched = jax.jit(jax.vmap(lambda x, k, m: agglomerative(x, k, where=m)))(
        jnp.asarray(sets), jnp.asarray(ks, jnp.int32), jnp.asarray(where)
    )
    for i, (n, k) in enumerate(zip(lengths, ks)):
        alone = agglomerative(jnp.asarray(sets[i, :n]), int(min(k, n)))
        np.testing.assert_array_equal(np.asarray(batched.labels[i, :n]), np.asarray(alone.labels))
        assert (np.asarray(batched.labels[i, n:]) == -1).all()
        assert int(batched.num_clusters[i]) == min(k, n)
        np.testing.assert_allclose(
            np.asarray(batched.linkage[i, : n - 1]), np.asarray(alone.linkage), rtol=1e-12
        )
        if n > 1:
            ref = fcluster(linkage(sets[i, :n], "ward"), k, "maxclust")
            assert _same_partition(alone.labels, ref)


def test_scattered_mask_and_small_sets():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 2))
    where = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1], bool)
    masked = agglomerative(jnp.asarray(x), 3, where=jnp.asarray(where))
    alone = agglomerative(jnp.asarray(x[where]), 3)
    np.testing.assert_array_equal(np.asarray(masked.labels)[where], np.asarray(alone.labels))
    np.testing.assert_array_equal(np.asarray(masked.linkage), np.asarray(
        jnp.concatenate([alone.linkage, jnp.tile(jnp.asarray([-1.0, -1, 0, 0]), (3, 1))])))
    # Fewer valid points than clusters: every point is its own cluster; none: all -1.
    few = agglomerative(jnp.asarray(x), 5, where=jnp.arange(12) < 2)
    assert int(few.num_clusters) == 2 and int(few.num_merges) == 0
    none = agglomerative(jnp.asarray(x), 2, where=jnp.zeros(12, bool))
    assert int(none.num_clusters) == 0 and (np.asarray(none.labels) == -1).all()


def test_max_merges_bound():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(16, 2)))
    exact = agglomerative(x, 8)
    bounded = agglomerative(x, jnp.int32(8), max_merges=8)
    np.testing.assert_array_equal(np.asarray(exact.labels), np.asarray(bounded.labels))
    short = agglomerative(x, jnp.int32(8), max_merges=3)  # stops early with more clusters
    assert int(short.num_clusters) == 13


class TestBadInput:
    def test_integer_x(self):
        with pytest.raises(TypeError, match="x must have a floating-point dtype"):
            agglomerative(jnp.ones((4, 2), jnp.int32), 2)

    def test_rank(self):
        with pytest.raises(ValueError, match=r"x must have rank 2 with shape \[t, d\]"):
            agglomerative(jnp.ones(4), 2)

    def test_nan(self):
        with pytest.raises(ValueError, match="x contains 1 NaN"):
            agglomerative(jnp.asarray([[0.0], [jnp.nan]]), 1)

    @pytest.mark.parametrize("k", [0, 5])
    def test_num_clusters_range(self, k):
        with pytest.raises(ValueError, match="num_clusters must be"):
            agglomerative(jnp.ones((4, 2)), k)

    def test_num_clusters_type(self):
        with pytest.raises(TypeError, match="num_clusters must be an int"):
            agglomerative(jnp.ones((4, 2)), 2.0)

    def test_linkage(self):
        with pytest.raises(ValueError, match="linkage must be one of"):
            agglomerative(jnp.ones((4, 2)), 2, linkage="centroid")

    def test_where(self):
        with pytest.raises(TypeError, match="where must be a boolean mask"):
            agglomerative(jnp.ones((4, 2)), 2, where=jnp.ones(4))
        with pytest.raises(ValueError, match="where and x must have the same length"):
            agglomerative(jnp.ones((4, 2)), 2, where=jnp.ones(3, bool))
