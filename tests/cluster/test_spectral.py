"""Tests for jaxclust.cluster.spectral_clustering and its affinities against scikit-learn/SciPy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.csgraph
from jax.experimental import sparse
from jax.test_util import check_grads
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.manifold import spectral_embedding
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.neighbors import kneighbors_graph

from jaxclust.cluster import SpectralResult, knn_affinity, rbf_affinity, spectral_clustering
from jaxclust.data import make_circles, make_moons

N = 240
_STATIC = ("k", "affinity", "eigen_solver", "embedding", "n_init", "eigen_max_steps")
# One compiled function per configuration, shared by the tests below.
_fit = jax.jit(spectral_clustering, static_argnames=_STATIC)


def _datasets():
    blobs, blob_y = make_blobs(N, n_features=3, centers=3, cluster_std=0.6, random_state=1)
    moons = make_moons(key=jax.random.key(0), n=N, noise=0.05, dtype=jnp.float64)
    circles = make_circles(key=jax.random.key(1), n=N, noise=0.05, factor=0.5, dtype=jnp.float64)
    return {
        "blobs": (blobs, blob_y),
        "moons": (np.asarray(moons.x), np.asarray(moons.y)),
        "circles": (np.asarray(circles.x), np.asarray(circles.y)),
    }


DATA = _datasets()


def _ari(a, b):
    return adjusted_rand_score(np.asarray(a), np.asarray(b))


def _sklearn(x, k, affinity, **kw):
    return SpectralClustering(k, affinity=affinity, random_state=0, **kw).fit(x).labels_


def _bottom_laplacian_eigenvalues(a, k):
    """Independent oracle: SciPy's normalised Laplacian (it ignores A's diagonal) and eigvalsh."""
    lap = scipy.sparse.csgraph.laplacian(np.asarray(a, np.float64), normed=True)
    return np.linalg.eigvalsh(lap)[:k]


def test_blobs_match_sklearn():
    # The RBF affinity on blobs is checked in test_rw_embedding_matches_sklearn_spectral_embedding.
    x, y = DATA["blobs"]
    result = _fit(jnp.asarray(x), k=3, key=jax.random.key(0), affinity="nearest_neighbors", n_init=4)
    assert isinstance(result, SpectralResult)
    assert result.labels.dtype == jnp.int32 and result.labels.shape == (N,)
    assert result.embedding.shape == (N, 3) and result.eigenvalues.shape == (3,)
    assert _ari(result.labels, _sklearn(x, 3, "nearest_neighbors")) >= 0.99
    assert _ari(result.labels, y) >= 0.99
    assert bool(result.converged) and int(result.num_steps) == 0
    # NJW embedding rows have unit norm.
    np.testing.assert_allclose(np.linalg.norm(np.asarray(result.embedding), axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(
        np.asarray(result.eigenvalues), _bottom_laplacian_eigenvalues(_sym_knn_graph(x, 10), 3),
        atol=1e-10,
    )


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_nonconvex_shapes_behave_like_sklearn(name):
    x, y = DATA[name]
    knn_labels = _fit(jnp.asarray(x), k=2, key=jax.random.key(0), affinity="nearest_neighbors", n_init=4).labels
    sk_knn = _sklearn(x, 2, "nearest_neighbors")
    # The kNN graph separates both shapes, as it does for scikit-learn.
    assert _ari(knn_labels, y) >= 0.99 and _ari(sk_knn, y) >= 0.99
    # The RBF kernel at gamma=1 is too wide to separate them, for both libraries alike.
    rbf_labels = _fit(jnp.asarray(x), k=2, key=jax.random.key(0), affinity="rbf", n_init=4).labels
    sk_rbf = _sklearn(x, 2, "rbf")
    assert _ari(rbf_labels, sk_rbf) >= 0.9
    assert abs(_ari(rbf_labels, y) - _ari(sk_rbf, y)) <= 0.1


def _sym_knn_graph(x, n_neighbors):
    m = kneighbors_graph(x, n_neighbors, include_self=True).toarray()
    return 0.5 * (m + m.T)


def test_affinities_match_sklearn():
    x, _ = DATA["blobs"]
    np.testing.assert_allclose(
        np.asarray(rbf_affinity(jnp.asarray(x), gamma=0.3)), rbf_kernel(x, gamma=0.3), rtol=1e-12
    )
    graph = jax.jit(knn_affinity, static_argnames=("n_neighbors", "include_self", "block_size"))
    a = graph(jnp.asarray(x), n_neighbors=7, block_size=50)
    assert isinstance(a, sparse.BCOO)
    np.testing.assert_array_equal(np.asarray(a.todense()), _sym_knn_graph(x, 7))
    no_self = graph(jnp.asarray(x), n_neighbors=7, include_self=False)
    m = kneighbors_graph(x, 7, include_self=False).toarray()
    np.testing.assert_array_equal(np.asarray(no_self.todense()), 0.5 * (m + m.T))


def test_rbf_affinity_gradient():
    x = jnp.asarray(DATA["blobs"][0][:5])
    check_grads(jax.jit(lambda x: rbf_affinity(x, gamma=0.7)), (x,), order=1, modes=("rev",))


def test_precomputed_matches_sklearn_and_sparse_equals_dense():
    x, y = DATA["blobs"]
    a = _sym_knn_graph(x, 8)
    dense = _fit(jnp.asarray(a), k=3, key=jax.random.key(0), affinity="precomputed", n_init=4)
    sk = _sklearn(a, 3, "precomputed")
    assert _ari(dense.labels, sk) >= 0.99 and _ari(dense.labels, y) >= 0.99
    bcoo = sparse.BCOO.fromdense(jnp.asarray(a))
    via_sparse = _fit(bcoo, k=3, key=jax.random.key(0), affinity="precomputed", n_init=4)
    np.testing.assert_allclose(
        np.asarray(via_sparse.eigenvalues), np.asarray(dense.eigenvalues), atol=1e-10
    )
    assert _ari(via_sparse.labels, dense.labels) == 1.0
    # An isolated point (zero row) gets a zero embedding row, not NaN.
    a[0], a[:, 0] = 0.0, 0.0
    isolated = _fit(jnp.asarray(a), k=3, key=jax.random.key(0), affinity="precomputed", n_init=4)
    assert np.isfinite(np.asarray(isolated.embedding)).all()
    assert np.isfinite(np.asarray(isolated.eigenvalues)).all()


def test_rw_embedding_matches_sklearn_spectral_embedding():
    x, _ = DATA["blobs"]
    result = _fit(jnp.asarray(x), k=3, key=jax.random.key(0), embedding="rw", n_init=4)
    ref = spectral_embedding(
        rbf_kernel(x, gamma=1.0), n_components=3, drop_first=False, eigen_solver="lobpcg",
        random_state=0, eigen_tol=1e-12,
    )
    # Near-repeated eigenvalues (well-separated blobs) make the basis arbitrary: compare spans.
    np.testing.assert_allclose(_projector(result.embedding), _projector(ref), atol=1e-6)
    assert _ari(result.labels, _sklearn(x, 3, "rbf")) >= 0.99


def _projector(u):
    q, _ = np.linalg.qr(np.asarray(u))
    return q @ q.T


def test_lobpcg_agrees_with_dense():
    x, y = DATA["moons"]
    run = functools.partial(_fit, jnp.asarray(x), k=2, affinity="nearest_neighbors", n_init=4)
    dense = run(key=jax.random.key(0), eigen_solver="dense")
    lobpcg = run(key=jax.random.key(0), eigen_solver="lobpcg", eigen_tol=jnp.asarray(1e-6))
    assert bool(lobpcg.converged) and int(lobpcg.num_steps) > 0
    np.testing.assert_allclose(
        np.asarray(lobpcg.eigenvalues), np.asarray(dense.eigenvalues), atol=1e-8
    )
    assert _ari(lobpcg.labels, dense.labels) == 1.0 and _ari(lobpcg.labels, y) >= 0.99
    # Same invariant subspace. Row norms of U do not depend on the basis of its span, so the
    # row-normalised embeddings span the same space iff the eigenvectors do: compare projectors.
    np.testing.assert_allclose(_projector(lobpcg.embedding), _projector(dense.embedding), atol=1e-6)
    # The converged flag tests the residuals against eigen_tol (same compiled function).
    strict = run(key=jax.random.key(0), eigen_solver="lobpcg", eigen_tol=jnp.asarray(0.0))
    assert not bool(strict.converged)


def test_jit_no_retrace_and_deterministic():
    x, _ = DATA["blobs"]
    run = functools.partial(_fit, affinity="nearest_neighbors", n_init=4)
    first = run(jnp.asarray(x), k=3, key=jax.random.key(0))
    size = _fit._cache_size()
    again = run(jnp.asarray(x), k=3, key=jax.random.key(0))
    other = run(jnp.asarray(x[::-1].copy()), k=3, key=jax.random.key(5))
    assert _fit._cache_size() == size  # new keys and data of the same shape do not retrace
    np.testing.assert_array_equal(np.asarray(first.labels), np.asarray(again.labels))
    assert _ari(first.labels, np.asarray(other.labels)[::-1]) >= 0.99


class TestBadInput:
    x = jnp.asarray(DATA["blobs"][0])

    def test_k(self):
        with pytest.raises(ValueError, match="k must be <= the number of samples"):
            spectral_clustering(self.x, k=N + 1, key=jax.random.key(0))
        with pytest.raises(TypeError, match="k must be a Python int"):
            spectral_clustering(self.x, k=2.5, key=jax.random.key(0))

    def test_options(self):
        with pytest.raises(ValueError, match="affinity must be one of"):
            spectral_clustering(self.x, k=2, key=jax.random.key(0), affinity="cosine")
        with pytest.raises(ValueError, match="eigen_solver must be one of"):
            spectral_clustering(self.x, k=2, key=jax.random.key(0), eigen_solver="arpack")
        with pytest.raises(ValueError, match="embedding must be one of"):
            spectral_clustering(self.x, k=2, key=jax.random.key(0), embedding="spectral")
        with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
            spectral_clustering(self.x, k=2, key=jax.random.key(0), gamma=-1.0)
        with pytest.raises(ValueError, match="n_neighbors must be <= the number of samples"):
            spectral_clustering(
                self.x, k=2, key=jax.random.key(0), affinity="nearest_neighbors", n_neighbors=N + 1
            )
        with pytest.raises(ValueError, match="key is required"):
            spectral_clustering(self.x, k=2, key=None)

    def test_lobpcg_too_small(self):
        with pytest.raises(ValueError, match="eigen_solver='lobpcg' needs 5·k < n"):
            spectral_clustering(self.x[:12], k=3, key=jax.random.key(0), eigen_solver="lobpcg")

    def test_data(self):
        with pytest.raises(ValueError, match="x must have rank 2"):
            spectral_clustering(self.x[0], k=2, key=jax.random.key(0))
        with pytest.raises(TypeError, match="floating-point dtype"):
            spectral_clustering(jnp.ones((5, 2), int), k=2, key=jax.random.key(0))
        with pytest.raises(ValueError, match="NaN or Inf"):
            spectral_clustering(self.x.at[0, 0].set(jnp.inf), k=2, key=jax.random.key(0))

    def test_precomputed(self):
        with pytest.raises(ValueError, match="square affinity matrix"):
            spectral_clustering(self.x, k=2, key=jax.random.key(0), affinity="precomputed")
        with pytest.raises(ValueError, match="must be non-negative"):
            spectral_clustering(-jnp.eye(4), k=2, key=jax.random.key(0), affinity="precomputed")

    def test_knn_affinity(self):
        with pytest.raises(ValueError, match="n_neighbors must be <= 239"):
            knn_affinity(self.x, n_neighbors=N, include_self=False)


def _padded(x, num_pad, seed=0):
    """``x`` with ``num_pad`` far-away rows inserted at random positions, and the validity mask."""
    rng = np.random.default_rng(seed)
    n = len(x) + num_pad
    where = np.ones(n, bool)
    where[rng.choice(n, num_pad, replace=False)] = False
    padded = rng.normal(scale=50.0, size=(n, x.shape[1]))
    padded[where] = x
    return jnp.asarray(padded), jnp.asarray(where)


@pytest.mark.parametrize("affinity", ["rbf", "nearest_neighbors", "precomputed", "sparse"])
def test_where_equals_clustering_the_valid_rows(affinity):
    """Padding rows are cut out of the graph: the valid rows get the unpadded clustering."""
    x, y = DATA["blobs"]
    xp, where = _padded(x, 60)
    kw = dict(k=3, key=jax.random.key(0), n_init=4, eigen_solver="dense")
    if affinity in ("precomputed", "sparse"):
        a, ap = rbf_affinity(jnp.asarray(x), gamma=0.5), rbf_affinity(xp, gamma=0.5)
        if affinity == "sparse":
            a, ap = sparse.BCOO.fromdense(a), sparse.BCOO.fromdense(ap)
        plain = _fit(a, affinity="precomputed", **kw)
        masked = _fit(ap, affinity="precomputed", where=where, **kw)
    else:
        plain = _fit(jnp.asarray(x), affinity=affinity, gamma=0.5, **kw)
        masked = _fit(xp, affinity=affinity, gamma=0.5, where=where, **kw)
    labels = np.asarray(masked.labels)
    assert (labels[~np.asarray(where)] == -1).all()
    assert _ari(labels[np.asarray(where)], plain.labels) == 1.0
    assert _ari(plain.labels, y) >= 0.99
    # the valid graph's spectrum: padding adds only isolated nodes (eigenvalue 1 of L)
    np.testing.assert_allclose(masked.eigenvalues, plain.eigenvalues, atol=1e-6)
    assert np.all(np.asarray(masked.embedding)[~np.asarray(where)] == 0)
    np.testing.assert_allclose(masked.inertia, plain.inertia, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("solver", ["dense", "lobpcg"])
def test_where_keeps_negative_eigenvalues_of_a_small_valid_graph(solver):
    """Three valid points, k=3: the valid graph's spectrum is 1, −½, −½; padding must not win."""
    x = jnp.asarray(np.random.default_rng(3).normal(size=(40, 2)))
    where = jnp.arange(40) < 3
    kw = dict(k=3, key=jax.random.key(0), n_init=2, affinity="rbf", gamma=1e-3)
    masked = _fit(x, where=where, eigen_solver=solver, eigen_tol=jnp.asarray(1e-7), **kw)
    alone = _fit(x[:3], eigen_solver="dense", **kw)
    assert sorted(np.asarray(masked.labels[:3]).tolist()) == [0, 1, 2]
    assert bool(masked.converged)
    np.testing.assert_allclose(masked.eigenvalues, alone.eigenvalues, atol=1e-6)
    np.testing.assert_allclose(np.sort(np.asarray(alone.eigenvalues)), [0.0, 1.5, 1.5], atol=1e-2)


def test_where_vmaps_over_padded_sets():
    x, y = DATA["blobs"]
    sets = [_padded(x, 60, seed=s) for s in (1, 2)]
    xs, ws = jnp.stack([s[0] for s in sets]), jnp.stack([s[1] for s in sets])
    fit = jax.jit(jax.vmap(lambda a, w: spectral_clustering(
        a, k=3, key=jax.random.key(0), affinity="nearest_neighbors", n_init=2, where=w)))
    out = fit(xs, ws)
    for labels, w in zip(np.asarray(out.labels), np.asarray(ws)):
        assert (labels[~w] == -1).all() and _ari(labels[w], y) >= 0.99


@pytest.mark.parametrize("axis_type", ["Auto", "Explicit"])
@pytest.mark.parametrize("affinity", ["nearest_neighbors", "rbf"])
def test_jit_on_sharded_samples_equals_single_device(axis_type, affinity):
    """Rows sharded over 8 devices: XLA partitions the pipeline (Explicit axes run it as Auto)."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    x, _ = DATA["moons"]
    mesh = jax.make_mesh((8,), ("data",), axis_types=(getattr(jax.sharding.AxisType, axis_type),))
    xs = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
    run = jax.jit(lambda x: spectral_clustering(
        x, k=2, key=jax.random.key(0), affinity=affinity, gamma=20.0, n_init=2,
        eigen_solver="lobpcg", eigen_tol=1e-6))
    single = run(jnp.asarray(x))
    with jax.set_mesh(mesh):
        sharded = run(xs)
    assert bool(sharded.converged) and bool(single.converged)
    if axis_type == "Explicit":  # per-sample outputs keep the input's sharding type
        assert jax.typeof(sharded.labels).sharding.spec == P("data")
    assert _ari(sharded.labels, single.labels) == 1.0
    np.testing.assert_allclose(sharded.eigenvalues, single.eigenvalues, atol=1e-8)


def test_where_bad_input():
    x = jnp.asarray(DATA["blobs"][0])
    with pytest.raises(ValueError, match="where"):
        spectral_clustering(x, k=2, key=jax.random.key(0), where=jnp.ones(5, bool))
    with pytest.raises(TypeError, match="where"):
        spectral_clustering(x, k=2, key=jax.random.key(0), where=jnp.ones(N))
    with pytest.raises(ValueError, match="k must be <= the number of valid samples"):
        spectral_clustering(x, k=3, key=jax.random.key(0), where=jnp.arange(N) < 2)
    with pytest.raises(ValueError, match="where"):
        knn_affinity(x, where=jnp.ones(3, bool))
