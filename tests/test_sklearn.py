"""Tests for jaxclust.sklearn: scikit-learn's estimator checks, and parity with the functional core
and with scikit-learn.

Every check of ``sklearn.utils.estimator_checks`` runs for both estimators, except the ones in
``_SKIPPED_CHECKS`` (run as strict xfails, so a check that starts passing is noticed):

- ``check_sample_weight_equivalence_on_dense_data`` (KMeans, MiniBatchKMeans): fitting ``n`` rows
  with integer weights and fitting the rows repeated draw different seedings (and batches) from
  the same key, because the draws are over rows. scikit-learn marks the same check as an expected
  failure for its own KMeans and MiniBatchKMeans. The weighting itself is exact: see
  ``test_integer_weights_equal_repeated_rows`` (from a fixed init).

scikit-learn itself skips ``check_array_api_input`` unless ``SCIPY_ARRAY_API=1`` is set (the
estimators take NumPy input only, so that check does not apply).

The estimator-check instances use ``init="random", n_init=1`` and a small ``max_iter``: the checks
test the API, and every distinct data shape in them costs one XLA compilation, which dominates the
runtime of this file; k-means++ and the defaults are covered by the parity tests below.
"""

import functools
import pickle
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.cluster
import sklearn.mixture
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import jaxclust.sklearn
from jaxclust import cluster
from jaxclust.sklearn import NMF, GaussianMixture, KMeans, MiniBatchKMeans, SpectralClustering

_SKIPPED_CHECKS = {
    "KMeans": {
        "check_sample_weight_equivalence_on_dense_data": (
            "k-means++/random seeding draws over rows, so n weighted rows and the repeated rows "
            "get different seeds from one key (scikit-learn xfails this check for its KMeans too)."
        ),
    },
    "MiniBatchKMeans": {
        "check_sample_weight_equivalence_on_dense_data": (
            "seeding and batches are drawn over rows, so n weighted rows and the repeated rows get "
            "different draws from one key (scikit-learn xfails this check for MiniBatchKMeans too)."
        ),
    },
    "GaussianMixture": {},  # every check passes
    "SpectralClustering": {},
    "NMF": {},  # every check passes
}

_CHECKED = [
    KMeans(init="random", n_init=1, max_iter=20),
    MiniBatchKMeans(init="random", n_init=1, max_iter=5),
    GaussianMixture(init_params="random", max_iter=20),
    SpectralClustering(n_clusters=3, n_init=1, affinity="nearest_neighbors", n_neighbors=5),
    NMF(n_components=2, max_iter=2000, tol=1e-9),  # init=None: NNDSVD-A, as scikit-learn
]


@parametrize_with_checks(
    _CHECKED,
    expected_failed_checks=lambda est: _SKIPPED_CHECKS[type(est).__name__],
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # Tiny check data sets often hold fewer distinct points than n_clusters.
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------------------------------
# Shared data: few shapes, so that few programs are compiled.

N, D, K = 240, 4, 5
X, _ = make_blobs(N, n_features=D, centers=K, cluster_std=1.5, random_state=0)
W = np.random.default_rng(1).uniform(0.2, 3.0, N)
INIT = X[np.random.default_rng(2).choice(N, K, replace=False)]


# References are compiled as the estimators compile small problems (fast to compile).
_jit = functools.partial(jax.jit, compiler_options=jaxclust.sklearn._quick_compile_options())


def _brute_sq_distances(x, c):
    return ((np.asarray(x, np.float64)[:, None] - np.asarray(c, np.float64)[None]) ** 2).sum(-1)


# ---------------------------------------------------------------------------------------------
# KMeans


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_matches_sklearn_from_same_init(weighted):
    w = W if weighted else None
    ours = KMeans(K, init=INIT).fit(X, sample_weight=w)
    ref = sklearn.cluster.KMeans(K, init=INIT, n_init=1, algorithm="lloyd").fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-6)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-7, atol=1e-7)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.labels_.dtype == np.int32 and ours.cluster_centers_.dtype == np.float64


@pytest.mark.parametrize("init, n_init", [("k-means++", "auto"), ("random", "auto"), ("random", 2)])
def test_kmeans_equals_functional_kmeans_with_key_from_random_state(init, n_init):
    est = KMeans(K, init=init, n_init=n_init, random_state=7).fit(X)
    resolved = {"auto": 10 if init == "random" else 1}.get(n_init, n_init)
    fn = _jit(functools.partial(cluster.kmeans, k=K, init=init, n_init=resolved))
    ref = fn(jnp.asarray(X), key=jax.random.key(7))
    np.testing.assert_array_equal(est.labels_, np.asarray(ref.labels))
    np.testing.assert_allclose(est.inertia_, float(ref.inertia), rtol=1e-12)
    np.testing.assert_allclose(est.cluster_centers_, np.asarray(ref.centroids), rtol=1e-12)
    assert est.n_iter_ == int(ref.num_steps)


def test_kmeans_random_state_forms():
    # An int is the JAX seed; a RandomState (or None: the global one) draws the seed from itself.
    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    from_state = KMeans(K, random_state=np.random.RandomState(3)).fit(X)
    from_int = KMeans(K, random_state=int(seed)).fit(X)
    np.testing.assert_array_equal(from_state.labels_, from_int.labels_)
    np.testing.assert_allclose(from_state.inertia_, from_int.inertia_, rtol=0)


def test_fit_predict_equals_labels_and_predict():
    mbk = MiniBatchKMeans(K, batch_size=64, max_iter=3, random_state=0)
    for est in (KMeans(K, random_state=0), mbk):
        labels = clone(est).fit_predict(X)
        fitted = clone(est).fit(X)
        np.testing.assert_array_equal(labels, fitted.labels_)
        np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_transform_is_euclidean_distance(offset):
    x = X + offset
    est = KMeans(K, init=INIT + offset).fit(x)
    dist = est.transform(x)
    assert dist.shape == (N, K) and dist.dtype == np.float64
    expected = np.sqrt(_brute_sq_distances(x, est.cluster_centers_))
    # Centring on the mean centre keeps the expansion ‖x‖² − 2⟨x, μ⟩ + ‖μ‖² accurate at 1e4.
    np.testing.assert_allclose(dist, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(est.fit_transform(x), dist, rtol=1e-12)
    np.testing.assert_array_equal(dist.argmin(1), est.labels_)


def test_score_is_negative_inertia():
    est = KMeans(K, init=INIT).fit(X, sample_weight=W)
    np.testing.assert_allclose(est.score(X, sample_weight=W), -est.inertia_, rtol=1e-10)
    x_new = X[:50] + 0.3
    expected = -_brute_sq_distances(x_new, est.cluster_centers_).min(1).sum()
    np.testing.assert_allclose(est.score(x_new), expected, rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    reps = np.random.default_rng(4).integers(1, 4, N)
    weighted = KMeans(K, init=INIT).fit(X, sample_weight=reps.astype(float))
    repeated = KMeans(K, init=INIT).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-10)


def test_float32_stays_float32_and_ints_become_float64():
    est = KMeans(K, init=INIT.astype(np.float32)).fit(X.astype(np.float32))
    assert est.cluster_centers_.dtype == np.float32
    assert est.transform(X.astype(np.float32)).dtype == np.float32
    ref = KMeans(K, init=INIT).fit(X)
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_allclose(est.inertia_, ref.inertia_, rtol=1e-5)
    ints = KMeans(2, init=[[0, 0], [10, 10]]).fit([[0, 0], [1, 1], [10, 10], [11, 11]])
    assert ints.cluster_centers_.dtype == np.float64
    np.testing.assert_allclose(ints.cluster_centers_, [[0.5, 0.5], [10.5, 10.5]])


def test_float64_without_x64_is_computed_in_float32_and_returned_as_float64():
    ref = KMeans(K, init=INIT).fit(X)
    with jax.enable_x64(False):
        est = KMeans(K, init=INIT).fit(X)
        dist = est.transform(X)
    assert est.cluster_centers_.dtype == np.float64 and dist.dtype == np.float64
    assert not np.array_equal(est.cluster_centers_, ref.cluster_centers_)  # float32 rounding
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_allclose(est.cluster_centers_, ref.cluster_centers_, rtol=1e-5)
    np.testing.assert_allclose(dist, ref.transform(X), rtol=1e-4, atol=1e-4)


def test_n_init_auto_and_array_init():
    # "auto" is 10 seedings for init="random" (see the functional parity test), else 1; an array
    # with n_init > 1 warns and runs once, as in scikit-learn.
    assert KMeans(K, init="random", random_state=0).fit(X)._n_init == 10
    assert KMeans(K, random_state=0).fit(X)._n_init == 1
    ref = KMeans(K, init=INIT).fit(X)
    with pytest.warns(RuntimeWarning, match="only one init in KMeans instead of n_init=3"):
        est = KMeans(K, init=INIT, n_init=3).fit(X)
    assert est._n_init == 1
    np.testing.assert_array_equal(est.labels_, ref.labels_)


def test_duplicate_points_warn_like_sklearn():
    x = np.repeat(np.eye(3), 4, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(3\) found smaller"):
        KMeans(5, random_state=0).fit(x)


def test_repeated_fits_reuse_compilations():
    est = KMeans(K, init=INIT, tol=1e-4).fit(X)
    size = jaxclust.sklearn._kmeans_fit.quick._cache_size()
    clone(est).set_params(tol=1e-2).fit(X[::-1] * 2.0)  # new data, new tol, same shapes
    KMeans(K, init=INIT * 0.5).fit(X)
    assert jaxclust.sklearn._kmeans_fit.quick._cache_size() == size


def test_large_problems_use_optimising_compile_with_same_results(monkeypatch):
    quick = KMeans(K, init=INIT).fit(X)
    monkeypatch.setattr(jaxclust.sklearn, "SMALL_PROBLEM_SIZE", 0)
    size = jaxclust.sklearn._kmeans_fit.default._cache_size()
    default = KMeans(K, init=INIT).fit(X)
    assert jaxclust.sklearn._kmeans_fit.default._cache_size() == size + 1
    np.testing.assert_array_equal(default.labels_, quick.labels_)
    np.testing.assert_allclose(default.cluster_centers_, quick.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(default.transform(X), quick.transform(X), rtol=1e-12)


def test_get_set_params_and_clone_round_trip():
    params = dict(n_clusters=3, init=INIT[:3], n_init=1, max_iter=7, tol=1e-3, random_state=5)
    est = KMeans(**params)
    got = est.get_params()
    assert set(got) == set(params) and got["init"] is params["init"]
    assert est.set_params(n_clusters=4, init="random") is est
    assert est.get_params()["n_clusters"] == 4 and est.get_params()["init"] == "random"
    mbk = MiniBatchKMeans(K, batch_size=64, max_iter=3, max_no_improvement=None, random_state=0)
    mbk.fit(X)
    copy = clone(mbk)
    assert copy.get_params() == mbk.get_params()
    assert not hasattr(copy, "cluster_centers_")
    restored = pickle.loads(pickle.dumps(mbk))
    np.testing.assert_array_equal(restored.predict(X), mbk.predict(X))


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(D)])
    est = KMeans(K, init=INIT).fit(frame)
    assert list(est.feature_names_in_) == list(frame.columns)
    assert list(est.get_feature_names_out()) == [f"kmeans{i}" for i in range(K)]
    np.testing.assert_array_equal(est.predict(frame), est.labels_)


class TestBadInput:
    def test_nan(self):
        x = X.copy()
        x[3, 1] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            KMeans(K).fit(x)
        fitted = KMeans(K, init=INIT).fit(X)
        with pytest.raises(ValueError, match="Input X contains NaN"):
            fitted.predict(x)

    @pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
    def test_too_many_clusters(self, cls):
        with pytest.raises(ValueError, match=r"n_samples=4 should be >= n_clusters=5"):
            cls(5).fit(X[:4])

    def test_n_clusters_not_positive(self):
        with pytest.raises(ValueError, match="n_clusters == 0, must be >= 1"):
            KMeans(0).fit(X)
        with pytest.raises(TypeError, match="n_clusters must be an instance of int"):
            KMeans(2.5).fit(X)

    def test_init_shape(self):
        with pytest.raises(ValueError, match=r"The shape of the initial centers \(5, 3\)"):
            KMeans(K, init=INIT[:, :3]).fit(X)

    def test_unknown_init(self):
        with pytest.raises(ValueError, match="The 'init' parameter of KMeans must be"):
            KMeans(K, init="kmeans||").fit(X)

    def test_feature_mismatch_and_unfitted(self):
        with pytest.raises(NotFittedError):
            KMeans(K).predict(X)
        fitted = KMeans(K, init=INIT).fit(X)
        with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 4"):
            fitted.transform(X[:, :3])

    def test_negative_weights(self):
        with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
            KMeans(K).fit(X, sample_weight=-W)

    def test_sparse(self):
        sparse = pytest.importorskip("scipy.sparse")
        with pytest.raises(TypeError, match="Sparse data was passed"):
            KMeans(K).fit(sparse.csr_matrix(X))


# ---------------------------------------------------------------------------------------------
# MiniBatchKMeans


@pytest.mark.parametrize("init", ["k-means++", INIT])
def test_minibatch_equals_functional_minibatch_kmeans(init):
    est = MiniBatchKMeans(K, init=init, batch_size=64, max_iter=3, random_state=11).fit(X)
    fn = _jit(
        functools.partial(
            cluster.minibatch_kmeans,
            k=K,
            init=init if isinstance(init, str) else jnp.asarray(init),
            batch_size=64,
            max_steps=3 * N // 64,  # max_iter epochs of N rows in batches of 64
            init_size=3 * 64,
        )
    )
    ref = fn(jnp.asarray(X), key=jax.random.key(11))
    np.testing.assert_array_equal(est.labels_, np.asarray(ref.labels))
    np.testing.assert_allclose(est.cluster_centers_, np.asarray(ref.centroids), rtol=1e-12)
    np.testing.assert_allclose(est.inertia_, float(ref.inertia), rtol=1e-12)
    assert est.n_steps_ == int(ref.num_steps)
    assert est.n_iter_ == -(-est.n_steps_ * 64 // N)
    np.testing.assert_allclose(est.counts_, np.bincount(est.labels_, minlength=K))


def test_minibatch_n_init_starts_from_the_best_seeding():
    est = MiniBatchKMeans(K, init="random", batch_size=64, max_iter=3, random_state=2).fit(X)
    assert est._n_init == 3  # "auto" for init="random", as in scikit-learn
    run_key, seeds_key = jax.random.split(jax.random.key(2))
    seed = _jit(functools.partial(cluster.minibatch_init, k=K, init="random", init_size=3 * 64))
    keys = jax.random.split(seeds_key, 3)
    candidates = [np.asarray(seed(jnp.asarray(X), key=key).centroids) for key in keys]
    best = min(candidates, key=lambda c: _brute_sq_distances(X, c).min(1).sum())
    ref = _jit(
        functools.partial(cluster.minibatch_kmeans, k=K, batch_size=64, max_steps=3 * N // 64)
    )(jnp.asarray(X), key=run_key, init=jnp.asarray(best))
    np.testing.assert_array_equal(est.labels_, np.asarray(ref.labels))
    np.testing.assert_allclose(est.cluster_centers_, np.asarray(ref.centroids), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_partial_fit_stream_matches_sklearn(weighted):
    # reassignment_ratio=0 removes the only random part of an update (METHODS.md §1.2).
    batches = np.array_split(np.random.default_rng(5).permutation(N), 4)
    ours = MiniBatchKMeans(K, init=INIT, reassignment_ratio=0.0)
    ref = sklearn.cluster.MiniBatchKMeans(K, init=INIT, n_init=1, reassignment_ratio=0.0)
    for step, rows in enumerate(batches):
        w = W[rows] if weighted else None
        ours.partial_fit(X[rows], sample_weight=w)
        ref.partial_fit(X[rows], sample_weight=w)
        np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-6)
        np.testing.assert_allclose(ours.counts_, ref._counts, rtol=1e-6)
        np.testing.assert_array_equal(ours.labels_, ref.labels_)
        np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-6)
        assert ours.n_steps_ == ref.n_steps_ == step + 1
    np.testing.assert_allclose(ours.counts_.sum(), W.sum() if weighted else N, rtol=1e-10)


def test_partial_fit_after_fit_continues_from_fitted_counts():
    est = MiniBatchKMeans(K, init=INIT, batch_size=64, max_iter=3, reassignment_ratio=0.0).fit(X)
    centres, counts, steps = est.cluster_centers_.copy(), est.counts_.copy(), est.n_steps_
    batch = X[:60] + 0.5
    est.partial_fit(batch)
    # One update: μ_k ← (n_k μ_k + Σ_{c_b=k} x_b) / (n_k + s_k), labels from the old centres.
    labels = _brute_sq_distances(batch, centres).argmin(1)
    s = np.bincount(labels, minlength=K).astype(float)
    sums = np.zeros_like(centres)
    np.add.at(sums, labels, batch)
    moved = (counts[:, None] * centres + sums) / (counts + s)[:, None]
    expected = np.where((s > 0)[:, None], moved, centres)
    np.testing.assert_allclose(est.cluster_centers_, expected, rtol=1e-10)
    np.testing.assert_allclose(est.counts_, counts + s, rtol=1e-12)
    assert est.n_steps_ == steps + 1


def test_partial_fit_equals_functional_stream_with_reassignment():
    # Step t uses fold_in(key, t); the first step splits it into (update key, seeding key). With
    # 8 centres on 5 blobs some counts stay low, so reassignment (the random part) does move them.
    batches, k = np.array_split(X, 4), 8
    est = MiniBatchKMeans(k, random_state=1, reassignment_ratio=0.5)
    for b in batches:
        est.partial_fit(b)
    key = jax.random.key(1)
    update_key, seed_key = jax.random.split(jax.random.fold_in(key, 0))
    state = cluster.minibatch_init(jnp.asarray(batches[0]), k=k, key=seed_key)
    update = _jit(functools.partial(cluster.minibatch_update, reassignment_ratio=0.5))
    for t, b in enumerate(batches):
        step_key = update_key if t == 0 else jax.random.fold_in(key, t)
        state = update(state, jnp.asarray(b), key=step_key)
    np.testing.assert_allclose(est.cluster_centers_, np.asarray(state.centroids), rtol=1e-12)
    np.testing.assert_allclose(est.counts_, np.asarray(state.counts), rtol=1e-12)
    assert est.n_steps_ == int(state.step) == 4


def test_partial_fit_rejects_feature_change():
    est = MiniBatchKMeans(K, init=INIT).partial_fit(X[:60])
    with pytest.raises(ValueError, match="X has 3 features, but MiniBatchKMeans is expecting 4"):
        est.partial_fit(X[:60, :3])


# ---------------------------------------------------------------------------------------------
# GaussianMixture


def _gm_inits(covariance_type):
    precisions = {
        "full": np.stack([np.eye(D) * 0.3] * K),
        "tied": np.eye(D) * 0.3,
        "diag": np.full((K, D), 0.3),
        "spherical": np.full(K, 0.3),
    }[covariance_type]
    return dict(weights_init=np.full(K, 1.0 / K), means_init=INIT, precisions_init=precisions)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gaussian_mixture_matches_sklearn_from_same_init(covariance_type):
    kw = dict(covariance_type=covariance_type, **_gm_inits(covariance_type))
    ours = GaussianMixture(K, **kw).fit(X)
    ref = sklearn.mixture.GaussianMixture(K, **kw).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-8, atol=1e-10)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-10)
    x_new = X[:50] + 0.3
    np.testing.assert_allclose(ours.score_samples(x_new), ref.score_samples(x_new), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(x_new), ref.predict_proba(x_new), atol=1e-9)
    np.testing.assert_array_equal(ours.predict(x_new), ref.predict(x_new))
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(X), ref.aic(X), rtol=1e-10)
    np.testing.assert_array_equal(GaussianMixture(K, **kw).fit_predict(X), ref.predict(X))


def test_gaussian_mixture_equals_functional_gmm_with_key_from_random_state():
    est = GaussianMixture(K, covariance_type="diag", n_init=2, random_state=3).fit(X)
    fn = _jit(functools.partial(cluster.gmm, k=K, covariance_type="diag", n_init=2))
    ref = fn(jnp.asarray(X), key=jax.random.key(3))
    np.testing.assert_allclose(est.means_, np.asarray(ref.means), rtol=1e-12)
    np.testing.assert_allclose(est.lower_bound_, float(ref.lower_bound), rtol=1e-12)
    assert est.n_iter_ == int(ref.num_steps)
    np.testing.assert_array_equal(est.predict(X), np.asarray(ref.labels))


def test_gaussian_mixture_partial_init_and_zero_iterations():
    est = GaussianMixture(K, covariance_type="diag", means_init=INIT, max_iter=0, random_state=0)
    est.fit(X)  # max_iter=0 keeps the initial parameters and does not warn
    np.testing.assert_allclose(est.means_, INIT, rtol=1e-12)
    np.testing.assert_allclose(est.weights_.sum(), 1.0, rtol=1e-12)
    assert est.n_iter_ == 0 and np.isfinite(est.precisions_).all()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(K, covariance_type="diag", means_init=INIT, max_iter=1, random_state=0).fit(X)


class TestGaussianMixtureBadInput:
    def test_too_many_components(self):
        with pytest.raises(ValueError, match="n_components = 5, n_samples = 4"):
            GaussianMixture(5).fit(X[:4])

    def test_options(self):
        with pytest.raises(ValueError, match="The 'covariance_type' parameter of GaussianMixture"):
            GaussianMixture(K, covariance_type="diagonal").fit(X)
        with pytest.raises(ValueError, match="The 'init_params' parameter of GaussianMixture"):
            GaussianMixture(K, init_params="random_from_data").fit(X)

    def test_initial_parameters(self):
        with pytest.raises(ValueError, match=r"'weights_init' should have the shape of \(5,\)"):
            GaussianMixture(K, weights_init=np.ones(3) / 3).fit(X)
        with pytest.raises(ValueError, match="should be non-negative and normalized"):
            GaussianMixture(K, weights_init=np.ones(K)).fit(X)
        with pytest.raises(ValueError, match="'full precision' should be symmetric, positive-definite"):
            GaussianMixture(K, precisions_init=-np.stack([np.eye(D)] * K)).fit(X)

    def test_unfitted_and_feature_mismatch(self):
        with pytest.raises(NotFittedError):
            GaussianMixture(K).predict(X)
        fitted = GaussianMixture(K, covariance_type="diag", **_gm_inits("diag")).fit(X)
        with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 4"):
            fitted.score_samples(X[:, :3])


# ---------------------------------------------------------------------------------------------
# SpectralClustering.


@pytest.mark.parametrize("affinity", ["nearest_neighbors", "rbf"])
def test_spectral_clustering_matches_sklearn(affinity):
    from sklearn.cluster import SpectralClustering as SkSpectral
    from sklearn.metrics import adjusted_rand_score

    x, y = make_blobs(150, n_features=3, centers=3, cluster_std=0.5, random_state=2)
    params = dict(affinity=affinity, gamma=0.5, n_neighbors=10, random_state=0)
    ours = SpectralClustering(3, **params).fit(x).labels_
    theirs = SkSpectral(3, **params).fit(x).labels_
    assert ours.dtype == np.int64 and ours.shape == (150,)
    assert adjusted_rand_score(theirs, ours) >= 0.99
    assert adjusted_rand_score(y, ours) >= 0.99


def test_spectral_clustering_precomputed_and_bad_input():
    from sklearn.metrics.pairwise import rbf_kernel

    x, y = make_blobs(60, n_features=2, centers=2, cluster_std=0.3, random_state=3)
    labels = SpectralClustering(2, affinity="precomputed", random_state=0).fit_predict(
        rbf_kernel(x, gamma=1.0))
    assert len(set(zip(labels.tolist(), y.tolist()))) == 2
    with pytest.raises(ValueError, match="affinity"):
        SpectralClustering(2, affinity="cosine").fit(x)
    with pytest.raises(ValueError, match="square"):
        SpectralClustering(2, affinity="precomputed").fit(x)
    with pytest.raises(ValueError, match="n_clusters"):
        SpectralClustering(61).fit(x)


# ---------------------------------------------------------------------------------------------
# NMF


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
def test_nmf_matches_sklearn_mu_from_the_same_start(beta_loss):
    from sklearn.decomposition import NMF as SkNMF

    x = load_digits().data[:300] / 16.0
    rng = np.random.default_rng(0)
    w0, h0 = rng.uniform(0.1, 1.0, (300, 5)), rng.uniform(0.1, 1.0, (5, 64))
    kw = dict(n_components=5, init="custom", beta_loss=beta_loss, max_iter=60, tol=0.0)
    ours, ref = NMF(**kw), SkNMF(solver="mu", **kw)
    w, w_ref = ours.fit_transform(x, W=w0, H=h0), ref.fit_transform(x, W=w0, H=h0)
    np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-7 * w_ref.max())
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-4,
                               atol=1e-7 * ref.components_.max())
    np.testing.assert_allclose(ours.reconstruction_err_, ref.reconstruction_err_, rtol=1e-6)
    assert ours.n_iter_ == ref.n_iter_ == 60
    # transform: W for new rows with the components fixed, from scikit-learn's constant start
    new = load_digits().data[300:400] / 16.0
    np.testing.assert_allclose(ours.transform(new), ref.transform(new), rtol=1e-4,
                               atol=1e-6 * ref.transform(new).max())
    np.testing.assert_allclose(ours.inverse_transform(w), w @ ours.components_)
    assert ours.get_feature_names_out().tolist() == [f"nmf{i}" for i in range(5)]


def test_nmf_dtypes_random_start_and_negative_input():
    x = (load_digits().data[:200] / 16.0).astype(np.float32)
    w = NMF(n_components=4, random_state=0, max_iter=100, tol=0.0).fit_transform(x)
    assert w.dtype == np.float32 and w.shape == (200, 4) and (w >= 0).all()
    with pytest.raises(ValueError, match="Negative values in data passed to NMF"):
        NMF(n_components=2).fit(-x)
    with pytest.raises(ValueError, match="'init' parameter of NMF"):
        NMF(n_components=2, init="nndsvdar").fit(x)
    random_start = NMF(n_components=4, init="random", random_state=0, max_iter=50, tol=0.0)
    w_random = random_start.fit_transform(x)
    assert w_random.dtype == np.float32 and not np.allclose(w_random, w)
