"""Tests for the synthetic generators in jaxclust.data.

JAX compiles each random kernel once per shape, and that dominates the run time here, so the tests
reuse a few shapes (module-scoped fixtures) rather than sweeping sizes.
"""

import math

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from jaxclust.data import Dataset, make_blobs, make_circles, make_moons, make_subspaces
from jaxclust.data._synthetic import _long_tail_sizes

# ------------------------------------------------------------------ long-tailed sizes


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 50),
    extra=st.integers(0, 3000),
    r=st.floats(1.0, 1e4, allow_nan=False, allow_infinity=False),
)
def test_long_tail_sizes_laws(k, extra, r):
    n = k + extra
    sizes = _long_tail_sizes(n, k, r)
    assert len(sizes) == k and sum(sizes) == n and min(sizes) >= 1
    assert all(isinstance(s, int) for s in sizes)
    assert list(sizes) == sorted(sizes, reverse=True)


@pytest.mark.parametrize("n, k, r", [(5000, 10, 100.0), (10000, 100, 10.0), (1000, 3, 2.5)])
def test_long_tail_sizes_follow_the_exponential_profile(n, k, r):
    sizes = np.asarray(_long_tail_sizes(n, k, r))
    target = r ** (-np.arange(k) / (k - 1))
    target = n * target / target.sum()  # n_j ∝ r^(-j/(k-1)), the CIFAR-LT / P²OT profile
    # Largest-remainder rounding: every size is within one point of its real-valued target.
    assert np.all(np.abs(sizes - target) < 1)
    ratio = sizes[0] / sizes[-1]
    assert (target[0] - 1) / (target[-1] + 1) <= ratio <= (target[0] + 1) / (target[-1] - 1)


def test_long_tail_sizes_clamp_tiny_clusters_to_one():
    sizes = _long_tail_sizes(20, 10, 1000.0)
    assert sum(sizes) == 20 and min(sizes) == 1


def test_balanced_when_ratio_is_one_or_single_cluster():
    assert _long_tail_sizes(10, 3, 1.0) == (4, 3, 3)
    assert _long_tail_sizes(10, 1, 50.0) == (10,)


# ------------------------------------------------------------------ blobs
#
# Compilation dominates the run time, and eager JAX caches each operation by shape, so the eager
# fixtures use the shapes of the doctests (they then compile once for both) and vary only keys
# and scalar hyperparameters. Separate tests run each generator under jax.jit.

N, K, D = 1000, 5, 2  # as in the make_blobs doctest


def _blobs(seed, cluster_std=0.1):
    return make_blobs(
        key=jax.random.key(seed), n=N, k=K, d=D, cluster_std=cluster_std, imbalance_ratio=10.0
    )


@pytest.fixture(scope="module")
def blobs():
    return _blobs(0)


def test_blobs_shapes_dtypes_and_sizes(blobs):
    assert isinstance(blobs, Dataset) and blobs.name == "blobs"
    assert blobs.x.shape == (N, D) and blobs.x.dtype == jnp.float32
    assert blobs.y.shape == (N,) and blobs.y.dtype == jnp.int32
    counts = np.bincount(np.asarray(blobs.y), minlength=K)
    assert counts.sum() == N and tuple(counts.tolist()) == _long_tail_sizes(N, K, 10.0)
    assert counts[0] / counts[-1] == pytest.approx(10.0, rel=0.05)
    assert np.any(np.diff(np.asarray(blobs.y)) < 0)  # shuffled, not sorted by label


def test_blobs_well_separated_each_point_nearest_its_class_mean(blobs):
    x, y = np.asarray(blobs.x, np.float64), np.asarray(blobs.y)
    means = np.stack([x[y == j].mean(0) for j in range(K)])
    dist = ((x[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(dist.argmin(1), y)
    # Centres lie in the default box, and the within-class spread is cluster_std per coordinate.
    assert np.all(np.abs(means) < 10 + 0.05)
    residual = x - means[y]
    assert residual.std() == pytest.approx(0.1, rel=0.05)


def test_blobs_deterministic_given_key(blobs):
    again = _blobs(0)
    np.testing.assert_array_equal(again.x, blobs.x)
    np.testing.assert_array_equal(again.y, blobs.y)
    other = _blobs(1)
    assert not np.array_equal(other.x, blobs.x)
    assert not np.array_equal(other.y, blobs.y)


def test_blobs_jit_with_traced_std_does_not_retrace():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def generate(key, cluster_std):
        return make_blobs(key=key, n=8, k=2, d=3, cluster_std=cluster_std)

    first = generate(jax.random.key(0), 0.0)
    assert isinstance(first, Dataset) and first.name == "blobs" and first.x.shape == (8, 3)
    second = generate(jax.random.key(0), 0.5)  # a traced std: the same compiled program
    np.testing.assert_array_equal(first.y, second.y)
    x0, x1, y = np.asarray(first.x), np.asarray(second.x), np.asarray(first.y)
    for j in range(2):  # no spread: every point of a cluster sits on its centre
        assert np.ptp(x0[y == j], axis=0).max() == 0
    assert np.abs(x1 - x0).max() > 0  # the same centres plus 0.5 * noise
    generate(jax.random.key(1), 1.0)


def test_blobs_vmap_legacy_keys_bfloat16_and_uniform_centres():
    @jax.jit
    @jax.vmap
    def centres(key):  # one point per cluster and no spread: x holds the k centres
        return make_blobs(key=key, n=500, k=500, d=1, cluster_std=0.0, dtype=jnp.bfloat16)

    many = centres(jax.random.split(jax.random.PRNGKey(5), 4))  # legacy uint32[2] keys
    assert many.x.shape == (4, 500, 1) and many.y.shape == (4, 500) and many.name == "blobs"
    assert many.x.dtype == jnp.bfloat16 and many.y.dtype == jnp.int32
    x = np.asarray(many.x, np.float64)
    assert not np.array_equal(x[0], x[1])
    x = x.ravel()  # 2000 draws of U(-10, 10), rounded to bfloat16
    assert np.all((x >= -10) & (x <= 10))
    assert x.mean() == pytest.approx(0.0, abs=0.5)
    assert x.var() == pytest.approx(400 / 12, rel=0.1)
    np.testing.assert_allclose(np.histogram(x, bins=4, range=(-10, 10))[0] / 2000, 0.25, atol=0.04)


def test_dataset_is_a_pytree_with_static_name(blobs):
    assert len(jax.tree.leaves(blobs)) == 2
    assert jax.tree.map(np.shape, blobs) == Dataset(x=(N, D), y=(N,), name="blobs")
    mesh = jax.make_mesh((8,), ("data",))
    sharded = jax.device_put(blobs, jax.NamedSharding(mesh, jax.P("data")))
    assert sharded.name == "blobs" and len(sharded.x.sharding.device_set) == 8
    np.testing.assert_array_equal(sharded.x, blobs.x)


# ------------------------------------------------------------------ subspaces

def _subspaces(seed, noise=0.0):
    # As in the doctest. 301 points over 3 classes: sizes 101, 100, 100.
    return make_subspaces(key=jax.random.key(seed), n=301, k=3, d=12, rank=3, noise=noise)


@pytest.fixture(scope="module")
def subspaces():
    return _subspaces(0)


def test_subspaces_each_class_spans_a_rank_r_subspace(subspaces):
    assert subspaces.name == "subspaces"
    assert subspaces.x.shape == (301, 12) and subspaces.x.dtype == jnp.float32
    assert subspaces.y.dtype == jnp.int32
    x, y = np.asarray(subspaces.x, np.float64), np.asarray(subspaces.y)
    assert sorted(np.bincount(y).tolist()) == [100, 100, 101]
    assert np.any(np.diff(y) < 0)
    for j in range(3):
        s = np.linalg.svd(x[y == j], compute_uv=False)
        assert s[2] / s[0] > 0.1  # three genuine directions ...
        assert s[3] / s[0] < 1e-5  # ... and nothing else, up to float32 rounding
    # k * rank = 9 <= d = 12: the three subspaces are independent, their union spans 9 dims.
    s = np.linalg.svd(x, compute_uv=False)
    assert s[8] / s[0] > 1e-2 and s[9] / s[0] < 1e-5
    # Coefficients are standard normal on an orthonormal basis: E ||x||^2 = rank.
    assert np.mean(np.sum(x**2, axis=1)) == pytest.approx(3.0, rel=0.15)


def test_subspaces_noise_is_isotropic_gaussian_and_deterministic(subspaces):
    noisy = _subspaces(0, noise=0.01)
    np.testing.assert_array_equal(noisy.y, subspaces.y)  # same key: same draw, same shuffle
    e = (np.asarray(noisy.x, np.float64) - np.asarray(subspaces.x, np.float64)) / 0.01
    assert e.mean() == pytest.approx(0.0, abs=0.05) and e.std() == pytest.approx(1.0, rel=0.05)
    other = _subspaces(1)
    assert not np.array_equal(other.y, subspaces.y)


def test_subspaces_jit_full_rank():
    generate = jax.jit(make_subspaces, static_argnames=("n", "k", "d", "rank"))
    ds = generate(key=jax.random.key(1), n=8, k=2, d=3, rank=3, noise=0.0)
    assert ds.x.shape == (8, 3) and ds.name == "subspaces"
    assert np.bincount(np.asarray(ds.y)).tolist() == [4, 4]
    assert np.linalg.matrix_rank(np.asarray(ds.x)[np.asarray(ds.y) == 0]) == 3


# ------------------------------------------------------------------ moons and circles

M = 101  # as in the doctests; odd: class 0 gets 50 points, class 1 gets 51, as in scikit-learn


def _assert_same_points(a, b, atol=1e-6):
    """Equal as sets of points (the generators shuffle); the spacing is far above atol."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    assert dist.min(0).max() < atol and dist.min(1).max() < atol


@pytest.fixture(scope="module")
def moons():
    return make_moons(key=jax.random.key(0), n=M)


@pytest.fixture(scope="module")
def circles():
    return make_circles(key=jax.random.key(0), n=M, factor=0.3)


def test_moons_half_circle_equations_and_balance(moons):
    assert moons.name == "moons" and moons.x.shape == (M, 2)
    assert moons.x.dtype == jnp.float32 and moons.y.dtype == jnp.int32
    x, y = np.asarray(moons.x, np.float64), np.asarray(moons.y)
    assert np.bincount(y).tolist() == [M // 2, M - M // 2]
    assert np.any(np.diff(y) < 0)
    upper, lower = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert np.all(upper[:, 1] >= -1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_moons_match_sklearn_geometry(moons):
    sk = pytest.importorskip("sklearn.datasets")
    ref_x, ref_y = sk.make_moons(n_samples=M, shuffle=False, noise=None)
    for c in (0, 1):
        _assert_same_points(np.asarray(moons.x)[np.asarray(moons.y) == c], ref_x[ref_y == c])


def test_circles_radii_angles_and_balance(circles):
    assert circles.name == "circles" and circles.x.shape == (M, 2)
    x, y = np.asarray(circles.x, np.float64), np.asarray(circles.y)
    assert np.bincount(y).tolist() == [M // 2, M - M // 2]
    assert np.any(np.diff(y) < 0)
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, atol=1e-6)
    for c in (0, 1):  # evenly spaced angles 2 pi i / n_c, endpoint excluded
        angles = np.sort(np.mod(np.arctan2(x[y == c, 1], x[y == c, 0]) + 1e-6, 2 * np.pi)) - 1e-6
        n_c = int((y == c).sum())
        np.testing.assert_allclose(angles, 2 * np.pi * np.arange(n_c) / n_c, atol=1e-5)


def test_circles_match_sklearn_geometry(circles):
    sk = pytest.importorskip("sklearn.datasets")
    ref_x, ref_y = sk.make_circles(n_samples=M, shuffle=False, noise=None, factor=0.3)
    for c in (0, 1):
        _assert_same_points(np.asarray(circles.x)[np.asarray(circles.y) == c], ref_x[ref_y == c])


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_moons_and_circles_noise_and_determinism(name, moons, circles):
    make, clean = {"moons": (make_moons, moons), "circles": (make_circles, circles)}[name]
    kwargs = {"factor": 0.3} if name == "circles" else {}
    noisy = make(key=jax.random.key(0), n=M, noise=0.1, **kwargs)
    np.testing.assert_array_equal(noisy.y, clean.y)  # same key: same shuffle
    e = (np.asarray(noisy.x, np.float64) - np.asarray(clean.x, np.float64)) / 0.1
    assert abs(e.mean()) < 0.15 and e.std() == pytest.approx(1.0, rel=0.1)
    other = make(key=jax.random.key(1), n=M, **kwargs)
    assert not np.array_equal(other.y, clean.y)
    _assert_same_points(other.x, clean.x)


def test_circles_jit_traced_factor(circles):
    generate = jax.jit(make_circles, static_argnames=("n",))
    ds = generate(key=jax.random.key(0), n=M, factor=0.3)
    np.testing.assert_array_equal(ds.y, circles.y)
    np.testing.assert_allclose(ds.x, circles.x, atol=1e-6)  # jit == eager up to fusion
    wide = generate(key=jax.random.key(0), n=M, factor=0.6)  # traced factor: no recompilation
    x, y = np.asarray(wide.x, np.float64), np.asarray(wide.y)
    np.testing.assert_array_equal(y, circles.y)
    np.testing.assert_allclose(np.hypot(x[y == 1, 0], x[y == 1, 1]), 0.6, atol=1e-6)
    np.testing.assert_array_equal(x[y == 0], np.asarray(circles.x)[y == 0])


def test_moons_jit_float64_matches_sklearn_to_rounding():
    generate = jax.jit(make_moons, static_argnames=("n", "dtype"))
    ds = generate(key=jax.random.key(0), n=M, dtype=jnp.float64)
    assert ds.x.dtype == jnp.float64
    sk = pytest.importorskip("sklearn.datasets")
    ref_x, _ = sk.make_moons(n_samples=M, shuffle=False)
    _assert_same_points(ds.x, ref_x, atol=1e-12)


# ------------------------------------------------------------------ argument errors

KEY = jax.random.key(0)
VALID = {
    make_blobs: {"key": KEY, "n": 10, "k": 2, "d": 2},
    make_subspaces: {"key": KEY, "n": 10, "k": 2, "d": 3, "rank": 2},
    make_moons: {"key": KEY, "n": 10},
    make_circles: {"key": KEY, "n": 10},
}


@pytest.mark.parametrize(
    "make, changes, error, fragment",
    [
        (make_blobs, {"k": 0}, ValueError, "k must be >= 1, got 0"),
        (make_blobs, {"k": 11}, ValueError, "k must be <= the number of samples n=10, got k=11"),
        (make_blobs, {"n": 0}, ValueError, "n must be >= 1, got 0"),
        (make_blobs, {"n": 2.5}, TypeError, "n must be a Python int"),
        (make_blobs, {"d": 0}, ValueError, "d must be >= 1, got 0"),
        (
            make_blobs,
            {"imbalance_ratio": 0.5},
            ValueError,
            "imbalance_ratio must be a finite number >= 1, got 0.5",
        ),
        (make_blobs, {"imbalance_ratio": math.inf}, ValueError, "a finite number >= 1, got inf"),
        (
            make_blobs,
            {"imbalance_ratio": jnp.asarray(2.0)},
            TypeError,
            "imbalance_ratio must be a Python number",
        ),
        (make_blobs, {"cluster_std": -1.0}, ValueError, "cluster_std must be a finite number >= 0"),
        (
            make_blobs,
            {"center_box": (1.0, 0.0)},
            ValueError,
            r"center_box must be a finite pair with low <= high, got \(1.0, 0.0\)",
        ),
        (make_blobs, {"center_box": (1.0,)}, ValueError, r"center_box must be a pair \(low, hi"),
        (make_blobs, {"key": None}, TypeError, "key must be a JAX PRNG key such as jax.random"),
        (
            make_blobs,
            {"key": jnp.zeros(3, jnp.int32)},
            TypeError,
            r"key must be a JAX PRNG key .* got dtype int32 and shape \(3,\)",
        ),
        (
            make_blobs,
            {"key": jax.random.split(KEY, 2)},
            ValueError,
            r"key must be a single PRNG key of shape \(\), got shape \(2,\)",
        ),
        (make_blobs, {"dtype": jnp.int32}, TypeError, "dtype must be a floating-point .* int32"),
        (make_subspaces, {"rank": 4}, ValueError, "rank must be <= the ambient dimension d=3"),
        (make_subspaces, {"rank": 0}, ValueError, "rank must be >= 1, got 0"),
        (make_subspaces, {"k": 11}, ValueError, "k must be <= the number of samples n=10"),
        (make_subspaces, {"noise": -0.1}, ValueError, "noise must be a finite number >= 0"),
        (make_moons, {"n": 1}, ValueError, "n must be >= 2, got 1"),
        (make_moons, {"noise": -1.0}, ValueError, "noise must be a finite number >= 0"),
        (make_circles, {"n": 1}, ValueError, "n must be >= 2, got 1"),
        (make_circles, {"factor": 1.0}, ValueError, "factor must satisfy 0 < factor < 1, got 1.0"),
        (make_circles, {"factor": 0.0}, ValueError, "factor must satisfy 0 < factor < 1, got 0.0"),
        (make_circles, {"noise": jnp.full(2, 0.1)}, ValueError, "noise must be a scalar, got"),
    ],
)
def test_bad_arguments(make, changes, error, fragment):
    with pytest.raises(error, match=fragment):
        make(**{**VALID[make], **changes})


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        make_moons(KEY, 10)
