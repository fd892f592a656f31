"""Tests for jaxclust.cluster.gmm and the gmm_* model functions against scikit-learn and NumPy.

Compiled functions are module-level and shared between tests: one XLA compilation per
(covariance type, shape) dominates the runtime of this file.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

from jaxclust.cluster import (
    GMMParams,
    GMMResult,
    gmm,
    gmm_aic,
    gmm_bic,
    gmm_num_parameters,
    gmm_predict,
    gmm_predict_proba,
    gmm_sample,
    gmm_score_samples,
)

TYPES = ("full", "tied", "diag", "spherical")
N, D, K = 240, 3, 4
X, Y = make_blobs(N, n_features=D, centers=K, cluster_std=[1.0, 2.0, 0.5, 1.5], random_state=0)
MEANS0 = X[np.random.default_rng(1).choice(N, K, replace=False)]
WEIGHTS0 = np.full(K, 1.0 / K)


def _precisions0(covariance_type, k=K, d=D):
    return {
        "full": np.stack([np.eye(d) * 0.5 + 0.1 * np.ones((d, d))] * k),
        "tied": np.eye(d) * 0.5,
        "diag": np.linspace(0.3, 0.8, k * d).reshape(k, d),
        "spherical": np.linspace(0.3, 0.8, k),
    }[covariance_type]


def _params0(covariance_type):
    return GMMParams(
        jnp.asarray(WEIGHTS0), jnp.asarray(MEANS0), jnp.asarray(_precisions0(covariance_type))
    )


@functools.partial(jax.jit, static_argnames=("covariance_type", "max_steps"))
def _fit_from(x, params, tol=1e-3, *, covariance_type, max_steps=100, sample_weight=None,
              labels=None, where=None):
    return gmm(x, k=params.weights.shape[0], init=params, covariance_type=covariance_type,
               tol=tol, max_steps=max_steps, sample_weight=sample_weight, labels=labels,
               where=where)


def _sklearn(covariance_type, **kw):
    return GaussianMixture(
        K, covariance_type=covariance_type, weights_init=WEIGHTS0, means_init=MEANS0,
        precisions_init=_precisions0(covariance_type), init_params="random_from_data", **kw,
    ).fit(X)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_matches_sklearn_from_same_init(covariance_type):
    # Same algorithm in float64; the only differences are summation order and the difference
    # vs. expanded forms of ‖x − μ‖² (observed ~1e-12 relative), so rtol 1e-8 leaves room for
    # other BLAS builds while failing on any algorithmic difference (those show at >1e-4).
    ours = _fit_from(jnp.asarray(X), _params0(covariance_type), covariance_type=covariance_type)
    ref = _sklearn(covariance_type)
    np.testing.assert_allclose(float(ours.log_likelihood), ref.score(X), rtol=1e-8)
    np.testing.assert_allclose(float(ours.lower_bound), ref.lower_bound_, rtol=1e-8)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.predict(X))
    assert int(ours.num_steps) == ref.n_iter_ and bool(ours.converged) == ref.converged_
    np.testing.assert_allclose(ours.weights, ref.weights_, rtol=1e-8)
    np.testing.assert_allclose(ours.means, ref.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.covariances, ref.covariances_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_cholesky, ref.precisions_cholesky_, rtol=1e-7, atol=1e-9)
    assert ours.labels.dtype == jnp.int32
    # Model functions on new points.
    x_new = jnp.asarray(X[:40] + 0.7)
    kw = dict(covariance_type=covariance_type)
    np.testing.assert_allclose(gmm_score_samples(x_new, ours, **kw), ref.score_samples(np.asarray(x_new)), rtol=1e-8)
    np.testing.assert_allclose(gmm_predict_proba(x_new, ours, **kw), ref.predict_proba(np.asarray(x_new)), atol=1e-8)
    np.testing.assert_array_equal(gmm_predict(x_new, ours, **kw), ref.predict(np.asarray(x_new)))
    np.testing.assert_allclose(float(gmm_bic(jnp.asarray(X), ours, **kw)), ref.bic(X), rtol=1e-9)
    np.testing.assert_allclose(float(gmm_aic(jnp.asarray(X), ours, **kw)), ref.aic(X), rtol=1e-9)
    assert gmm_num_parameters(K, D, **kw) == ref._n_parameters()


def test_max_steps_cap_matches_sklearn():
    ours = _fit_from(jnp.asarray(X), _params0("spherical"), covariance_type="spherical", max_steps=2)
    with pytest.warns(Warning, match="did not converge"):
        ref = _sklearn("spherical", max_iter=2)
    assert int(ours.num_steps) == 2 and not bool(ours.converged)
    np.testing.assert_allclose(ours.means, ref.means_, rtol=1e-8)
    np.testing.assert_allclose(float(ours.log_likelihood), ref.score(X), rtol=1e-8)


def test_integer_weights_equal_repeated_rows():
    reps = np.random.default_rng(3).integers(1, 4, N)
    params = _params0("diag")
    weighted = _fit_from(jnp.asarray(X), params, 0.0, covariance_type="diag", max_steps=5,
                         sample_weight=jnp.asarray(reps, float))
    repeated = _fit_from(jnp.asarray(np.repeat(X, reps, axis=0)), params, 0.0,
                         covariance_type="diag", max_steps=5)
    np.testing.assert_allclose(weighted.means, repeated.means, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances, repeated.covariances, rtol=1e-10)
    np.testing.assert_allclose(float(weighted.log_likelihood), float(repeated.log_likelihood), rtol=1e-10)


_fit_seeded = jax.jit(
    gmm, static_argnames=("k", "init", "n_init", "covariance_type", "max_steps")
)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random"])
def test_seeded_runs_reach_sklearn_quality(init):
    x, _ = make_blobs(300, n_features=2, centers=3, cluster_std=0.6, random_state=2)
    best = GaussianMixture(3, covariance_type="diag", n_init=5, random_state=0).fit(x).score(x)
    result = _fit_seeded(jnp.asarray(x), k=3, key=jax.random.key(0), init=init, n_init=2,
                         covariance_type="diag")
    assert bool(result.converged)
    np.testing.assert_allclose(np.asarray(result.weights).sum(), 1.0, rtol=1e-12)
    if init == "random":
        # Random responsibilities (scikit-learn's init_params="random") often stop at a poor
        # stationary point, for scikit-learn too: compare with its worst of a few seeds.
        best = min(
            GaussianMixture(3, covariance_type="diag", init_params="random", random_state=s)
            .fit(x).score(x)
            for s in range(4)
        )
    assert float(result.log_likelihood) >= best - 1e-6


def test_n_init_keeps_the_largest_lower_bound():
    # Same data and static options as the "random" case above (n_init=2), so one compile is shared.
    x, _ = make_blobs(300, n_features=2, centers=3, cluster_std=0.6, random_state=2)
    key = jax.random.key(0)
    best = _fit_seeded(jnp.asarray(x), k=3, key=key, init="random", n_init=2, covariance_type="diag")
    singles = [
        float(_fit_seeded(jnp.asarray(x), k=3, key=kk, init="random", n_init=1,
                          covariance_type="diag").lower_bound)
        for kk in jax.random.split(key, 2)
    ]
    assert singles[0] != singles[1]  # the restarts differ, so the choice is tested
    np.testing.assert_allclose(float(best.lower_bound), max(singles), rtol=1e-12)


def test_jit_no_retrace():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(x, key):
        return gmm(x, k=K, key=key, covariance_type="tied", max_steps=5)

    for seed in range(3):
        result = run(jnp.asarray(X), jax.random.key(seed))
    assert isinstance(result, GMMResult)
    assert np.isfinite(float(result.log_likelihood))


def _semi_supervised_reference(x, labels, weights, means, variances, steps, reg):
    """Float64 NumPy EM, diagonal covariances, labelled rows clamped to one-hot."""
    k = len(weights)
    for _ in range(steps):
        log_p = (
            np.log(weights)[None]
            - 0.5 * (np.log(2 * np.pi * variances)[None] + (x[:, None] - means[None]) ** 2 / variances[None]).sum(-1)
        )
        resp = np.exp(log_p - log_p.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        resp[labels >= 0] = np.eye(k)[labels[labels >= 0]]
        nk = resp.sum(0) + 10 * np.finfo(float).eps
        weights = nk / nk.sum()
        means = resp.T @ x / nk[:, None]
        variances = np.stack([(resp[:, j, None] * (x - means[j]) ** 2).sum(0) / nk[j] for j in range(k)]) + reg
    return weights, means, variances


def test_semi_supervised_matches_numpy_em_and_keeps_labels():
    rng = np.random.default_rng(6)
    labels = np.where(rng.uniform(size=N) < 0.2, Y, -1)
    params = _params0("diag")
    ours = _fit_from(jnp.asarray(X), params, 0.0, covariance_type="diag", max_steps=7,
                     labels=jnp.asarray(labels))
    ref = _semi_supervised_reference(X, labels, WEIGHTS0, MEANS0, 1 / _precisions0("diag"), 7, 1e-6)
    np.testing.assert_allclose(ours.weights, ref[0], rtol=1e-9)
    np.testing.assert_allclose(ours.means, ref[1], rtol=1e-9)
    np.testing.assert_allclose(ours.covariances, ref[2], rtol=1e-9)
    # Labelled samples keep their class (their responsibilities stay one-hot).
    np.testing.assert_array_equal(np.asarray(ours.labels)[labels >= 0], labels[labels >= 0])


def test_semi_supervised_fully_labelled_is_the_class_mle():
    params = _params0("full")
    ours = _fit_from(jnp.asarray(X), params, covariance_type="full", labels=jnp.asarray(Y))
    for c in range(K):
        rows = X[Y == c]
        np.testing.assert_allclose(ours.weights[c], len(rows) / N, rtol=1e-9)
        np.testing.assert_allclose(ours.means[c], rows.mean(0), rtol=1e-9)
        cov = np.cov(rows.T, bias=True) + 1e-6 * np.eye(D)
        np.testing.assert_allclose(ours.covariances[c], cov, rtol=1e-9)
    # The parameters are the MLE after the first M-step, so the objective is constant from the
    # second E-step on: the third iteration sees no change.
    assert int(ours.num_steps) == 3 and bool(ours.converged)


def test_semi_supervised_labels_help_on_a_hard_mixture():
    # Two elongated, overlapping Gaussians: unsupervised EM from k-means splits them across.
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    z = rng.normal(size=(n, 2)) * np.array([6.0, 0.5])
    x = z + np.where(y[:, None] == 1, np.array([0.0, 1.6]), 0.0)
    labels = np.where(rng.uniform(size=n) < 0.1, y, -1)
    key = jax.random.key(0)
    fit = jax.jit(lambda x, labels: gmm(x, k=2, key=key, covariance_type="full", labels=labels))
    plain = fit(jnp.asarray(x), None)
    semi = fit(jnp.asarray(x), jnp.asarray(labels))
    unl = labels < 0
    acc_plain = max(np.mean(np.asarray(plain.labels)[unl] == y[unl]), np.mean(np.asarray(plain.labels)[unl] != y[unl]))
    acc_semi = np.mean(np.asarray(semi.labels)[unl] == y[unl])
    assert acc_semi > 0.85 and acc_semi > acc_plain + 0.1


def _mesh(axis_type=AxisType.Auto):
    return jax.make_mesh((8,), ("data",), axis_types=(axis_type,))


_SPECS = GMMResult(P(), P(), P(), P(), P("data"), P(), P(), P(), P())


def test_shard_map_equals_jit_on_sharded_equals_single_device():
    x = jnp.asarray(X)  # 240 = 8 x 30 rows
    params = _params0("full")
    single = _fit_from(x, params, covariance_type="full")
    mesh = _mesh()
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    mapped = jax.jit(
        jax.shard_map(
            lambda x, p: gmm(x, k=K, init=p, covariance_type="full", axis_name="data"),
            mesh=mesh, in_specs=(P("data"), P()), out_specs=_SPECS,
        )
    )(xs, params)
    on_sharded = _fit_from(xs, params, covariance_type="full")
    explicit = _mesh(AxisType.Explicit)
    with jax.set_mesh(explicit):
        xe = jax.device_put(x, NamedSharding(explicit, P("data")))
        on_explicit = jax.jit(lambda x: gmm(x, k=K, init=params, covariance_type="full"))(xe)
    for other in (mapped, on_sharded, on_explicit):
        np.testing.assert_array_equal(np.asarray(other.labels), np.asarray(single.labels))
        np.testing.assert_allclose(float(other.log_likelihood), float(single.log_likelihood), rtol=1e-10)
        np.testing.assert_allclose(other.covariances, single.covariances, rtol=1e-9, atol=1e-12)
        assert int(other.num_steps) == int(single.num_steps)


def test_shard_map_seeded_gives_a_good_fit():
    x, _ = make_blobs(400, n_features=2, centers=3, cluster_std=0.6, random_state=2)
    mesh = _mesh()
    fn = jax.jit(
        jax.shard_map(
            lambda x, key: gmm(x, k=3, key=key, covariance_type="diag", axis_name="data"),
            mesh=mesh, in_specs=(P("data"), P()), out_specs=_SPECS,
        )
    )
    result = fn(jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data"))), jax.random.key(0))
    best = GaussianMixture(3, covariance_type="diag", n_init=3, random_state=0).fit(x).score(x)
    assert float(result.log_likelihood) >= best - 1e-2


def test_where_mask_equals_slicing_and_vmaps_over_padded_sets():
    rng = np.random.default_rng(5)
    lengths, n_max = [200, 150], N
    where = np.arange(n_max)[None, :] < np.asarray(lengths)[:, None]
    sets = np.stack([X, X[::-1] + 1.0])
    sets = np.where(where[:, :, None], sets, rng.normal(size=sets.shape) * 1e3)  # garbage padding
    params = jax.tree.map(lambda a: jnp.stack([a, a]), _params0("diag"))
    batched = jax.jit(jax.vmap(lambda x, m, p: gmm(x, k=K, init=p, covariance_type="diag", where=m)))(
        jnp.asarray(sets), jnp.asarray(where), params
    )
    for i, n in enumerate(lengths):
        alone = _fit_from(jnp.asarray(sets[i, :n]), _params0("diag"), covariance_type="diag")
        np.testing.assert_array_equal(np.asarray(batched.labels[i, :n]), np.asarray(alone.labels))
        assert (np.asarray(batched.labels[i, n:]) == -1).all()
        np.testing.assert_allclose(float(batched.log_likelihood[i]), float(alone.log_likelihood), rtol=1e-10)
        np.testing.assert_allclose(batched.means[i], alone.means, rtol=1e-9)
        assert int(batched.num_steps[i]) == int(alone.num_steps)


def test_duplicate_points_stay_finite_thanks_to_reg_covar():
    x = np.vstack([np.repeat([[50.0, 50.0, 50.0]], 30, axis=0), X[:90]])
    params = GMMParams(jnp.asarray(WEIGHTS0), jnp.asarray(np.vstack([x[:1], MEANS0[1:]])),
                       jnp.asarray(_precisions0("full")))
    result = _fit_from(jnp.asarray(x[:120]), params, covariance_type="full")
    for field in result:
        assert np.isfinite(np.asarray(field)).all()
    np.testing.assert_allclose(result.covariances[0], 1e-6 * np.eye(D), rtol=1e-6, atol=1e-12)
    ref = GaussianMixture(K, weights_init=WEIGHTS0, means_init=np.asarray(params.means),
                          precisions_init=_precisions0("full")).fit(x[:120])
    np.testing.assert_allclose(float(result.log_likelihood), ref.score(x[:120]), rtol=1e-8)


def test_failed_factorisation_is_reported_not_nan():
    # reg_covar=0 on a component of duplicates: its covariance is exactly 0, so its Cholesky fails
    # and raising reg_covar tenfold cannot help; the last good parameters come back.
    x = jnp.asarray(np.repeat(np.eye(2), 5, axis=0))
    params = GMMParams(jnp.full(2, 0.5), jnp.eye(2), jnp.stack([jnp.eye(2)] * 2))
    result = jax.jit(lambda x, p: gmm(x, k=2, init=p, reg_covar=0.0))(x, params)
    assert not bool(result.converged)
    for field in result:
        assert np.isfinite(np.asarray(field)).all()
    np.testing.assert_allclose(result.means, np.eye(2))


def test_bfloat16_is_computed_in_float32():
    result = _fit_seeded(jnp.asarray(X, jnp.bfloat16), k=K, key=jax.random.key(0), init="kmeans",
                         n_init=1, covariance_type="diag")
    assert result.means.dtype == jnp.float32 and result.labels.dtype == jnp.int32
    assert np.isfinite(float(result.log_likelihood))


def test_score_samples_gradient():
    model = _fit_from(jnp.asarray(X), _params0("full"), covariance_type="full")
    check_grads(lambda x: gmm_score_samples(x, model), (jnp.asarray(X[:5] + 0.1),), order=1,
                modes=("rev",))
    check_grads(lambda m: gmm_score_samples(jnp.asarray(X[:5]), model._replace(means=m)),
                (model.means,), order=1, modes=("rev",))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_moments_match_the_model(covariance_type):
    # The fitted sklearn model (float64) is the reference: 200k samples must reproduce its
    # weights, means and covariances (standard errors here are ~0.005 of the entries' scale).
    ref = _sklearn(covariance_type)
    model = GMMResult(jnp.asarray(ref.weights_), jnp.asarray(ref.means_),
                      jnp.asarray(ref.covariances_), jnp.asarray(ref.precisions_cholesky_),
                      None, None, None, None, None)
    draw = jax.jit(functools.partial(gmm_sample, n=200_000, covariance_type=covariance_type))
    x, labels = draw(model, jax.random.key(3))
    x, labels = np.asarray(x), np.asarray(labels)
    assert x.shape == (200_000, D) and labels.dtype == np.int32
    np.testing.assert_allclose(np.bincount(labels, minlength=K) / len(labels), ref.weights_,
                               atol=0.005)
    as_matrix = {"full": lambda c: c, "tied": lambda c: c, "diag": np.diag,
                 "spherical": lambda c: c * np.eye(D)}[covariance_type]
    per_component = [ref.covariances_] * K if covariance_type == "tied" else ref.covariances_
    covariances = [as_matrix(c) for c in per_component]
    for c in range(K):
        xc = x[labels == c]
        scale = np.sqrt(np.diag(covariances[c])).max()
        np.testing.assert_allclose(xc.mean(0), ref.means_[c], atol=0.03 * scale)
        np.testing.assert_allclose(np.cov(xc.T), covariances[c], atol=0.05 * scale**2)
    # and sklearn's own density agrees: the mean log-density of the samples is the model's
    # negative entropy, estimated the same way from sklearn's samples
    ours = ref.score_samples(x[:20_000]).mean()
    theirs = ref.score_samples(ref.sample(20_000)[0]).mean()
    assert abs(ours - theirs) < 0.05


def test_sample_bad_input():
    model = _fit_from(jnp.asarray(X), _params0("diag"), covariance_type="diag")
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n must be"):
        gmm_sample(model, key, 0, covariance_type="diag")
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        gmm_sample(model, None, 5, covariance_type="diag")
    with pytest.raises(ValueError, match="precisions_cholesky must have shape"):
        gmm_sample(model, key, 5, covariance_type="full")
    with pytest.raises(ValueError, match="covariance_type"):
        gmm_sample(model, key, 5, covariance_type="diagonal")
    with pytest.raises(TypeError, match="must have attributes"):
        gmm_sample(object(), key, 5)


class TestBadInput:
    x = jnp.ones((10, 2))
    key = jax.random.key(0)

    def test_nan(self):
        with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
            gmm(self.x.at[3, 1].set(jnp.nan), k=2, key=self.key)

    def test_k(self):
        with pytest.raises(ValueError, match="k must be <= the number of samples n=10"):
            gmm(self.x, k=11, key=self.key)
        with pytest.raises(ValueError, match="k must be >= 1"):
            gmm(self.x, k=0, key=self.key)

    def test_rank_and_dtype(self):
        with pytest.raises(ValueError, match=r"x must have rank 2 with shape \[n, d\]"):
            gmm(jnp.ones(10), k=2, key=self.key)
        with pytest.raises(TypeError, match="x must have a floating-point dtype"):
            gmm(jnp.ones((10, 2), jnp.int32), k=2, key=self.key)

    def test_options(self):
        with pytest.raises(ValueError, match="covariance_type must be one of"):
            gmm(self.x, k=2, key=self.key, covariance_type="diagonal")
        with pytest.raises(ValueError, match="init must be one of"):
            gmm(self.x, k=2, key=self.key, init="kmeans++")
        with pytest.raises(TypeError, match="init must be one of"):
            gmm(self.x, k=2, key=self.key, init=np.ones((2, 2)))
        with pytest.raises(ValueError, match="key is required"):
            gmm(self.x, k=2)
        with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
            gmm(self.x, k=2, key=self.key, tol=-1.0)
        with pytest.raises(ValueError, match="reg_covar must be a finite number >= 0"):
            gmm(self.x, k=2, key=self.key, reg_covar=-1e-6)

    def test_labels(self):
        with pytest.raises(ValueError, match=r"labels must be in \[-1, k\) = \[-1, 2\)"):
            gmm(self.x, k=2, key=self.key, labels=jnp.full(10, 2))
        with pytest.raises(TypeError, match="labels must have an integer dtype"):
            gmm(self.x, k=2, key=self.key, labels=jnp.zeros(10))
        with pytest.raises(ValueError, match="x and labels must have the same length"):
            gmm(self.x, k=2, key=self.key, labels=jnp.zeros(9, jnp.int32))

    def test_where_and_weights(self):
        with pytest.raises(ValueError, match="where and x must have the same length"):
            gmm(self.x, k=2, key=self.key, where=jnp.ones(9, bool))
        with pytest.raises(ValueError, match="sample_weight must be non-negative"):
            gmm(self.x, k=2, key=self.key, sample_weight=-jnp.ones(10))

    def test_params(self):
        good = GMMParams(jnp.full(2, 0.5), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2))
        with pytest.raises(ValueError, match=r"init.precisions must have shape \(2, 2\) for covariance_type='diag'"):
            gmm(self.x, k=2, init=good, covariance_type="diag")
        with pytest.raises(ValueError, match=r"init.means must have shape \[k, d\]"):
            gmm(self.x, k=2, init=good._replace(means=jnp.zeros((3, 2))))
        with pytest.raises(ValueError, match="init.weights must be non-negative and sum to 1"):
            gmm(self.x, k=2, init=good._replace(weights=jnp.ones(2)))
        with pytest.raises(ValueError, match="symmetric positive-definite"):
            gmm(self.x, k=2, init=good._replace(precisions=-good.precisions))
        with pytest.raises(ValueError, match="n_init must be 1 when init is a GMMParams"):
            gmm(self.x, k=2, init=good, n_init=2)

    def test_model_functions(self):
        model = _fit_from(jnp.asarray(X), _params0("diag"), covariance_type="diag", max_steps=1)
        with pytest.raises(ValueError, match=r"model.precisions_cholesky must have shape \(4, 3, 3\)"):
            gmm_score_samples(jnp.asarray(X), model)  # fitted as diag, scored as full
        with pytest.raises(ValueError, match=r"model.means must have shape \[k, d\] = \(4, 2\)"):
            gmm_predict(jnp.asarray(X[:, :2]), model, covariance_type="diag")
        with pytest.raises(TypeError, match="model must have attributes weights"):
            gmm_predict_proba(jnp.asarray(X), object(), covariance_type="diag")


def test_row_blocked_densities_equal_unblocked(monkeypatch):
    import jaxclust.cluster._gmm as gmm_module

    model = _fit_from(jnp.asarray(X), _params0("full"), covariance_type="full", max_steps=1)
    x = jnp.asarray(X[:37])
    whole = gmm_score_samples(x, model)
    monkeypatch.setattr(gmm_module, "_BLOCK_BUDGET", 5 * K * D)  # blocks of 5 rows, ragged end
    np.testing.assert_allclose(gmm_score_samples(x, model), whole, rtol=1e-13)
