"""Tests for jaxclust.metrics.silhouette_samples and silhouette_score against scikit-learn."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import cdist
from sklearn import metrics as skm

from jaxclust.metrics import silhouette_samples, silhouette_score

METRICS = ["euclidean", "cosine"]
TOL = 1e-6


def _blobs(n=50, d=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 2.0 * rng.normal(size=(k, d))[labels]
    return x, labels


def _check(x, labels, metric, exact=False, **kw):
    """Compares with scikit-learn; ``exact`` feeds it distances from differences (cdist)."""
    ours = np.asarray(silhouette_samples(jnp.asarray(x), jnp.asarray(labels), metric=metric, **kw))
    if exact:
        ref = skm.silhouette_samples(cdist(x, x, metric=metric), labels, metric="precomputed")
    else:
        ref = skm.silhouette_samples(x, labels, metric=metric)
    np.testing.assert_allclose(ours, ref, atol=TOL)
    score = float(silhouette_score(jnp.asarray(x), jnp.asarray(labels), metric=metric, **kw))
    np.testing.assert_allclose(score, ref.mean(), atol=TOL)
    if not exact:
        np.testing.assert_allclose(score, skm.silhouette_score(x, labels, metric=metric), atol=TOL)
    return ours


@pytest.mark.parametrize("metric", METRICS)
def test_chunked_equals_unchunked_equals_sklearn(metric):
    x, labels = _blobs()
    chunked = _check(x, labels, metric, chunk_size=7)  # 50 is not a multiple of 7
    unchunked = _check(x, labels, metric, chunk_size=1000)
    np.testing.assert_allclose(chunked, unchunked, atol=1e-12)


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**16),
    values=st.lists(st.integers(-1000, 1000), min_size=2, max_size=4, unique=True),
    metric=st.sampled_from(METRICS),
)
def test_matches_sklearn_hypothesis(seed, values, metric):
    rng = np.random.default_rng(seed)
    n = 24
    labels = np.asarray(values)[rng.integers(0, len(values), n)]
    hypothesis.assume(np.unique(labels).size >= 2)
    x = rng.normal(size=(n, 3)) * rng.uniform(0.1, 10.0)
    _check(x, labels, metric, chunk_size=5)


def _degenerate_cases():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 2))
    coincident = x.copy()
    coincident[6] = coincident[0]  # the same point in two clusters: a = b = 0 for both
    coincident[1] = coincident[0]
    return {
        "singleton_cluster": (x, np.array([0] * 6 + [1] * 5 + [2])),
        "coincident_points": (coincident, np.array([0] * 6 + [1] * 3 + [2] * 3)),
        "sparse_labels": (x, np.array([3, 7, 100] * 4)),
        "negative_labels": (x, np.array([-3, -1, 2**40] * 4)),
        "two_labels": (x, np.array([0] * 11 + [1])),
        "n_minus_one_labels": (x, np.array(list(range(11)) + [0])),
        "zero_rows_for_cosine": (
            np.where(np.arange(12)[:, None] < 2, 0.0, x),
            np.array([0, 1, 2] * 4),
        ),
    }


DEGENERATE = _degenerate_cases()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_cases(name, metric):
    x, labels = DEGENERATE[name]
    ours = _check(x, labels, metric, chunk_size=5)
    if name == "singleton_cluster":
        assert ours[-1] == 0.0


def test_large_offset_is_centred():
    # ‖x‖² ~ 2e8 against d² ~ 1e-4: the uncentred expansion (scikit-learn's) loses ~4 digits,
    # so the reference is built from exact differences.
    x = np.random.default_rng(5).normal(size=(12, 2)) * 1e-2 + 1e4
    _check(x, np.array([0, 1, 2] * 4), "euclidean", exact=True, chunk_size=5)


def test_float32_input():
    x, labels = _blobs(seed=3)
    ours = silhouette_samples(jnp.asarray(x, jnp.float32), jnp.asarray(labels))
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(ours, skm.silhouette_samples(x, labels), atol=1e-5)


def test_label_permutation_invariance():
    x, labels = _blobs(seed=1)
    perm = np.array([2, 0, 3, 1])
    a = silhouette_samples(jnp.asarray(x), jnp.asarray(labels))
    b = silhouette_samples(jnp.asarray(x), jnp.asarray(perm[labels] * 5 - 7))
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_jit_with_num_clusters_no_retrace():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def score(x, labels):
        return silhouette_score(x, labels, num_clusters=4, chunk_size=16)

    for seed in range(3):
        x, labels = _blobs(seed=seed)
        ours = float(score(jnp.asarray(x), jnp.asarray(labels)))
        np.testing.assert_allclose(ours, skm.silhouette_score(x, labels), atol=TOL)


def test_padding_equals_slicing():
    x, labels = _blobs(seed=2)
    keep = np.random.default_rng(0).random(50) < 0.7
    padded = np.where(keep, labels, -1)
    fn = jax.jit(
        lambda x, y: (
            silhouette_samples(x, y, num_clusters=4, chunk_size=8),
            silhouette_score(x, y, num_clusters=4, chunk_size=8),
        )
    )
    samples, score = fn(jnp.asarray(x), jnp.asarray(padded))
    ref = skm.silhouette_samples(x[keep], labels[keep])
    np.testing.assert_allclose(np.asarray(samples)[keep], ref, atol=TOL)
    np.testing.assert_array_equal(np.asarray(samples)[~keep], 0.0)
    np.testing.assert_allclose(float(score), ref.mean(), atol=TOL)


@pytest.mark.parametrize("metric", METRICS)
def test_gradient_matches_finite_differences(metric):
    x, labels = _blobs(n=12, d=2, k=3, seed=4)
    check_grads(
        lambda x: silhouette_score(x, jnp.asarray(labels), num_clusters=3, metric=metric),
        (jnp.asarray(x),),
        order=1,
        modes=["rev"],
        atol=1e-5,
        rtol=1e-5,
    )


def test_memory_is_bounded_by_chunk():
    # The compiled program's scratch memory grows like chunk_size * n, never like n * n.
    n, chunk = 8192, 128
    x = jax.ShapeDtypeStruct((n, 8), jnp.float32)
    labels = jax.ShapeDtypeStruct((n,), jnp.int32)
    compiled = (
        jax.jit(lambda x, y: silhouette_score(x, y, num_clusters=10, chunk_size=chunk))
        .lower(x, labels)
        .compile()
    )
    analysis = compiled.memory_analysis()
    if analysis is None:
        pytest.skip("memory_analysis is not available on this backend")
    assert analysis.temp_size_in_bytes < n * n * 4 / 8


def test_bad_inputs():
    x, labels = _blobs(n=10)
    xj, lj = jnp.asarray(x), jnp.asarray(labels)
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        silhouette_samples(lj[:, None], lj)
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        silhouette_samples(xj, xj[:, 0])
    with pytest.raises(ValueError, match="x must have rank 2"):
        silhouette_samples(xj[:, 0], lj)
    with pytest.raises(ValueError, match="labels must have rank 1"):
        silhouette_score(xj, lj[:, None])
    with pytest.raises(ValueError, match="x and labels must have the same length"):
        silhouette_samples(xj, lj[:9])
    with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
        silhouette_samples(xj.at[3, 1].set(jnp.nan), lj)
    with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
        silhouette_score(xj.at[0, 0].set(jnp.inf), lj)
    with pytest.raises(ValueError, match="metric must be one of"):
        silhouette_samples(xj, lj, metric="manhattan")
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        silhouette_samples(xj, lj, chunk_size=0)
    with pytest.raises(ValueError, match="labels has 1 distinct value"):
        silhouette_score(xj, jnp.zeros(10, jnp.int32))
    with pytest.raises(ValueError, match="labels has 10 distinct value"):
        silhouette_score(xj, jnp.arange(10))
    with pytest.raises(ValueError, match="labels has 1 distinct value"):
        silhouette_score(xj, jnp.array([0] * 9 + [-1]), num_clusters=2)
    with pytest.raises(ValueError, match=r"labels .* pass num_clusters=<int>"):
        jax.jit(silhouette_score)(xj, lj)
