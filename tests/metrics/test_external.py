"""Tests for the external metrics of jaxclust.metrics against scikit-learn and brute force."""

import itertools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn import metrics as skm

from jaxclust.metrics import (
    accuracy,
    ami,
    ari,
    many_to_one_accuracy,
    match_clusters_to_classes,
    nmi,
    novel_class_accuracy,
    purity,
)

AVERAGE_METHODS = ["arithmetic", "geometric", "min", "max"]
METRICS = {
    "accuracy": accuracy,
    "many_to_one_accuracy": many_to_one_accuracy,
    "purity": purity,
    "nmi": nmi,
    "ami": ami,
    "ari": ari,
}
# Everything is float64 here; scikit-learn computes in float64 too.
TOL = 1e-6


# ------------------------------------------------------------------------------------------------
# References.


def _table(t, p):
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((ti.max(initial=-1) + 1, pi.max(initial=-1) + 1), np.int64)
    np.add.at(table, (ti, pi), 1)
    return table


def _brute_force_matched(table):
    """max over injective maps clusters -> classes, by enumerating permutations of a padded W."""
    r, c = table.shape
    size = max(r, c)
    padded = np.zeros((size, size), np.int64)
    padded[:r, :c] = table
    perms = itertools.permutations(range(size))
    return max(sum(padded[perm[j], j] for j in range(size)) for perm in perms)


def _brute_force_acc(t, p):
    return _brute_force_matched(_table(t, p)) / len(t)


def _numpy_purity(t, p):
    t, p = np.asarray(t), np.asarray(p)
    hits = 0
    for cluster in np.unique(p):
        _, counts = np.unique(t[p == cluster], return_counts=True)
        hits += counts.max()
    return hits / len(t)


def _all_singletons(labels):
    return np.unique(labels).size == len(labels)


def _sk_ami(t, p, average_method):
    """scikit-learn's AMI, except where it divides rounding noise by rounding noise.

    With one labeling all singletons, I = E[I] exactly; for average_method="min" the denominator
    M - E[I] vanishes too, and scikit-learn returns (noise)/(noise), e.g. 1.106 for n = 30. Ours
    returns scikit-learn's 0/0 convention, 1.0.
    """
    if (
        average_method == "min"
        and (_all_singletons(t) or _all_singletons(p))
        and np.unique(t).size > 1
        and np.unique(p).size > 1
    ):
        return 1.0
    return skm.adjusted_mutual_info_score(t, p, average_method=average_method)


@st.composite
def labelings(draw, max_n=30, max_k=6):
    """Two labelings with arbitrary integer values (negative, sparse), up to max_k of each."""
    n = draw(st.integers(1, max_n))
    values = st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=max_k, unique=True)
    values_t, values_p = draw(values), draw(values)
    t = draw(st.lists(st.sampled_from(values_t), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from(values_p), min_size=n, max_size=n))
    return np.array(t, np.int64), np.array(p, np.int64)


def _degenerate_cases():
    rng = np.random.default_rng(3)
    return {
        "one_cluster_both": ([0] * 7, [3] * 7),
        "one_class": ([5] * 8, [0, 1, 2, 0, 1, 2, 0, 1]),
        "one_cluster": ([0, 1, 2, 0, 1, 2, 0, 1], [9] * 8),
        "singletons_both": (list(range(6)), list(rng.permutation(6))),
        "singletons_pred": ([0, 0, 1, 1, 2, 2, 2], list(range(7))),
        "singletons_true": (list(range(6)), [4, 4, 4, 7, 7, 1]),
        "singletons_vs_one": (list(range(6)), [1] * 6),
        "sparse_labels": ([3, 7, 100, 3, 7, 100, 3], [-5, -5, 2**35, 0, 0, 2**35, -5]),
        "more_clusters": ([0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 2, 3, 4, 5, 0, 1]),
        "more_classes": ([0, 1, 2, 3, 4, 5, 0, 1], [0, 0, 0, 1, 1, 1, 2, 2]),
        "identical": ([2, 2, 0, 0, 1, 1, 1], [2, 2, 0, 0, 1, 1, 1]),
        "permuted": ([2, 2, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2, 2]),
        "single_sample": ([4], [8]),
        "two_samples": ([0, 1], [0, 0]),
        "independent": ([0, 0, 1, 1], [0, 1, 0, 1]),
    }


DEGENERATE = _degenerate_cases()


def _check_against_references(t, p):
    tj, pj = jnp.asarray(t), jnp.asarray(p)
    for method in AVERAGE_METHODS:
        ref = skm.normalized_mutual_info_score(t, p, average_method=method)
        np.testing.assert_allclose(float(nmi(tj, pj, average_method=method)), ref, atol=TOL)
        np.testing.assert_allclose(
            float(ami(tj, pj, average_method=method)), _sk_ami(t, p, method), atol=TOL
        )
    np.testing.assert_allclose(float(ari(tj, pj)), skm.adjusted_rand_score(t, p), atol=TOL)
    np.testing.assert_allclose(float(accuracy(tj, pj)), _brute_force_acc(t, p), atol=1e-12)
    np.testing.assert_allclose(float(purity(tj, pj)), _numpy_purity(t, p), atol=1e-12)
    np.testing.assert_allclose(float(many_to_one_accuracy(tj, pj)), _numpy_purity(t, p), atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Reference checks.


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(labelings())
def test_matches_references_hypothesis(pair):
    _check_against_references(*pair)


@pytest.mark.parametrize("seed", range(4))
def test_matches_references_seeded(seed):
    rng = np.random.default_rng(seed)
    n = [20, 57, 100, 300][seed]
    t = rng.integers(0, 1 + seed + 2, n) * 3 - 4
    p = rng.integers(0, 6 - seed, n) + 10 * seed
    _check_against_references(t, p)


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_cases(name):
    t, p = (np.array(v, np.int64) for v in DEGENERATE[name])
    _check_against_references(t, p)


@pytest.mark.parametrize("method", AVERAGE_METHODS)
def test_ami_large_against_sklearn(method):
    # Exercises the vectorised E[I] on unequal, large margins.
    rng = np.random.default_rng(7)
    t = rng.choice(12, size=3000, p=np.arange(1, 13) / 78)
    p = np.where(rng.random(3000) < 0.5, t % 5, rng.integers(0, 9, 3000))
    ours = float(ami(jnp.asarray(t), jnp.asarray(p), average_method=method))
    ref = skm.adjusted_mutual_info_score(t, p, average_method=method)
    np.testing.assert_allclose(ours, ref, atol=TOL)


def test_conventions_match_sklearn_exactly():
    one, split = jnp.zeros(6, jnp.int32), jnp.arange(6) % 3
    for fn in (nmi, ami, ari):
        assert float(fn(one, one)) == 1.0
    assert float(nmi(one, split)) == 0.0 and float(ami(split, one)) == 0.0
    singletons = jnp.arange(6)
    for method in AVERAGE_METHODS:
        assert float(ami(singletons, singletons[::-1], average_method=method)) == 1.0
        assert float(nmi(singletons, singletons[::-1], average_method=method)) == 1.0
    assert float(ari(singletons, singletons[::-1])) == 1.0
    assert float(ari(jnp.array([3]), jnp.array([4]))) == 1.0


@pytest.mark.parametrize("metric", [nmi, ami, ari, accuracy, purity, many_to_one_accuracy])
def test_empty_input_is_an_error(metric):
    empty = jnp.zeros((0,), jnp.int32)
    with pytest.raises(ValueError, match="labels_true and labels_pred must be non-empty"):
        metric(empty, empty)


def test_fully_masked_input_never_gives_nan():
    y = jnp.array([0, 1, 1])
    none = jnp.zeros(3, bool)
    for metric in (accuracy, purity, many_to_one_accuracy):
        value = jax.jit(lambda a, b, m: metric(a, b, num_classes=2, num_clusters=2, where=m))(y, y, none)
        assert float(value) == 0.0


def test_accuracy_more_clusters_than_classes_counts_unmatched_as_errors():
    t = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert float(accuracy(t, p)) == 0.5
    assert float(many_to_one_accuracy(t, p)) == 1.0


def test_result_dtype_and_shape():
    t, p = jnp.array([0, 1, 1, 0]), jnp.array([1, 1, 0, 0])
    for name, fn in METRICS.items():
        out = fn(t, p)
        assert out.shape == (), name
        assert out.dtype == jnp.float64, name


def test_float32_without_x64():
    rng = np.random.default_rng(11)
    t, p = rng.integers(0, 7, 5000), rng.integers(0, 5, 5000)
    p = np.where(rng.random(5000) < 0.3, t % 5, p)
    with jax.enable_x64(False):
        tj, pj = jnp.asarray(t, jnp.int32), jnp.asarray(p, jnp.int32)
        out = {name: fn(tj, pj, num_classes=7, num_clusters=5) for name, fn in METRICS.items()}
        assert all(v.dtype == jnp.float32 for v in out.values())
    np.testing.assert_allclose(float(out["nmi"]), skm.normalized_mutual_info_score(t, p), atol=1e-6)
    np.testing.assert_allclose(float(out["ami"]), skm.adjusted_mutual_info_score(t, p), atol=1e-6)
    np.testing.assert_allclose(float(out["ari"]), skm.adjusted_rand_score(t, p), atol=1e-6)
    np.testing.assert_allclose(float(out["accuracy"]), _brute_force_acc(t, p), atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Matching.


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), shape=st.sampled_from([(1, 4), (3, 3), (5, 2)]))
def test_match_clusters_to_classes(seed, shape):
    r, c = shape
    rng = np.random.default_rng(seed)
    t, p = rng.integers(0, r, 25), rng.integers(0, c, 25)
    mapping = np.asarray(
        match_clusters_to_classes(jnp.asarray(t), jnp.asarray(p), num_classes=r, num_clusters=c)
    )
    assert mapping.shape == (c,) and mapping.dtype == np.int32
    matched = mapping[mapping >= 0]
    assert len(set(matched.tolist())) == len(matched) == min(r, c)  # one-to-one
    assert matched.max(initial=0) < r
    mapped = np.where(mapping[p] >= 0, mapping[p], -1)
    # The matching attains the brute-force optimum (here the labels are 0..k-1 already).
    table = np.zeros((r, c), np.int64)
    np.add.at(table, (t, p), 1)
    best = _brute_force_matched(table)
    assert np.sum(mapped == t) == best
    acc = accuracy(jnp.asarray(t), jnp.asarray(p), num_classes=r, num_clusters=c)
    assert float(acc) == best / 25


def test_match_clusters_to_classes_requires_nums():
    y = jnp.array([0, 1])
    with pytest.raises(TypeError, match="num_classes must be a Python int"):
        match_clusters_to_classes(y, y, num_classes=None, num_clusters=2)


# ------------------------------------------------------------------------------------------------
# Invariances, transformations and sharding.


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(labelings(), st.integers(0, 2**16))
def test_label_permutation_invariance(pair, seed):
    t, p = pair
    rng = np.random.default_rng(seed)

    def relabel(labels):
        values = np.unique(labels)
        new = rng.permutation(values.size) * 7 - 3
        return new[np.searchsorted(values, labels)]

    for name, fn in METRICS.items():
        a = float(fn(jnp.asarray(t), jnp.asarray(p)))
        b = float(fn(jnp.asarray(relabel(t)), jnp.asarray(relabel(p))))
        np.testing.assert_allclose(a, b, atol=1e-12, err_msg=name)
    # Swapping the roles of the two labelings leaves the symmetric scores unchanged.
    tj, pj = jnp.asarray(t), jnp.asarray(p)
    for fn in (nmi, ami, ari):
        np.testing.assert_allclose(float(fn(tj, pj)), float(fn(pj, tj)), atol=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_jit_with_nums_no_retrace(name):
    fn = METRICS[name]
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def metric(t, p):
        return fn(t, p, num_classes=4, num_clusters=5)

    rng = np.random.default_rng(0)
    for _ in range(3):
        t, p = rng.integers(0, 4, 40), rng.integers(0, 5, 40)
        tj, pj = jnp.asarray(t), jnp.asarray(p)
        np.testing.assert_allclose(float(metric(tj, pj)), float(fn(tj, pj)), atol=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_where_and_padding_equal_slicing(name):
    fn = METRICS[name]
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 4, 60), rng.integers(0, 5, 60)
    where = rng.random(60) < 0.7
    sliced = float(fn(jnp.asarray(t[where]), jnp.asarray(p[where])))
    # Mask, with labels remapped on the host ...
    masked = float(fn(jnp.asarray(t), jnp.asarray(p), where=jnp.asarray(where)))
    # ... and -1 padding with static sizes, under jit.
    padded = jax.jit(lambda a, b: fn(a, b, num_classes=4, num_clusters=5))(
        jnp.asarray(np.where(where, t, -1)), jnp.asarray(p)
    )
    np.testing.assert_allclose(masked, sliced, atol=1e-12)
    np.testing.assert_allclose(float(padded), sliced, atol=1e-12)
    # Padding on the other side, and a mask with static sizes.
    static = dict(num_classes=4, num_clusters=5)
    padded_pred = fn(jnp.asarray(t), jnp.asarray(np.where(where, p, 99)), **static)
    masked_static = fn(jnp.asarray(t), jnp.asarray(p), where=jnp.asarray(where), **static)
    np.testing.assert_allclose(float(padded_pred), sliced, atol=1e-12)
    np.testing.assert_allclose(float(masked_static), sliced, atol=1e-12)


def test_partially_given_nums():
    t = np.array([0, 0, 1, 1, 2, -1])
    p = np.array([10, 10, 20, 20, 30, 40])
    ref = skm.adjusted_rand_score(t[:5], p[:5])
    # labels_true padded and static, labels_pred remapped on the host (the padded sample is
    # excluded before remapping, so 40 does not become an empty cluster).
    ours = ari(jnp.asarray(t), jnp.asarray(p), num_classes=3)
    np.testing.assert_allclose(float(ours), ref, atol=TOL)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_vmap(name):
    fn = METRICS[name]
    rng = np.random.default_rng(2)
    t, p = rng.integers(0, 3, (3, 30)), rng.integers(0, 4, (3, 30))
    batched = jax.vmap(lambda a, b: fn(a, b, num_classes=3, num_clusters=4))
    out = batched(jnp.asarray(t), jnp.asarray(p))
    for i in range(3):
        ref = fn(jnp.asarray(t[i]), jnp.asarray(p[i]))
        np.testing.assert_allclose(float(out[i]), float(ref), atol=1e-12)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
@pytest.mark.parametrize("name", sorted(METRICS) + ["match_clusters_to_classes"])
def test_shard_map_equals_jit_on_sharded_equals_single_device(name, axis_type):
    fn = METRICS.get(name, match_clusters_to_classes)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    rng = np.random.default_rng(3)
    t, p = rng.integers(-1, 4, 64), rng.integers(0, 5, 64)
    kw = dict(num_classes=4, num_clusters=5)
    single = fn(jnp.asarray(t), jnp.asarray(p), **kw)
    sharding = NamedSharding(mesh, P("data"))
    ts, ps = jax.device_put(jnp.asarray(t), sharding), jax.device_put(jnp.asarray(p), sharding)
    shard_mapped = jax.jit(
        jax.shard_map(
            lambda a, b: fn(a, b, axis_name="data", **kw),
            mesh=mesh,
            in_specs=P("data"),
            out_specs=P(),
        )
    )(ts, ps)
    sharded_jit = jax.jit(lambda a, b: fn(a, b, **kw))(ts, ps)
    np.testing.assert_allclose(np.asarray(shard_mapped), np.asarray(single), atol=1e-12)
    np.testing.assert_allclose(np.asarray(sharded_jit), np.asarray(single), atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Bad inputs.


@pytest.mark.parametrize("name", sorted(METRICS))
def test_bad_inputs(name):
    fn = METRICS[name]
    y = jnp.array([0, 1, 1])
    with pytest.raises(TypeError, match="labels_true must have an integer dtype"):
        fn(jnp.array([0.0, 1.0, 1.0]), y)
    with pytest.raises(TypeError, match="labels_pred must have an integer dtype"):
        fn(y, jnp.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="labels_true must have rank 1"):
        fn(y[None, :], y)
    with pytest.raises(ValueError, match="labels_true and labels_pred must have the same length"):
        fn(y, jnp.array([0, 1]))
    with pytest.raises(TypeError, match="where must be a boolean"):
        fn(y, y, where=y)
    with pytest.raises(ValueError, match="num_clusters must be >= 1"):
        fn(y, y, num_clusters=0)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_traced_labels_need_nums(name):
    fn = METRICS[name]
    y = jnp.array([0, 1, 1])
    both = r"labels_true and labels_pred .* pass num_classes=<int> and num_clusters=<int>"
    with pytest.raises(ValueError, match=both):
        jax.jit(fn)(y, y)
    with pytest.raises(ValueError, match=r"labels_pred .* pass num_clusters=<int>"):
        jax.jit(lambda a, b: fn(a, b, num_classes=2))(y, y)


@pytest.mark.parametrize("fn", [nmi, ami])
def test_bad_average_method(fn):
    y = jnp.array([0, 1, 1])
    with pytest.raises(ValueError, match="average_method must be one of"):
        fn(y, y, average_method="harmonic")


def _brute_force_split_accuracy(y, y_hat, num_known, k):
    """Best one-to-one map over all permutations, then accuracy on all / known / novel samples."""
    best = max(itertools.permutations(range(k)), key=lambda perm: np.sum(np.array(perm)[y_hat] == y))
    hit = np.array(best)[y_hat] == y
    known = y < num_known
    return hit.mean(), hit[known].mean(), hit[~known].mean()


@pytest.mark.parametrize("seed", range(4))
def test_novel_class_accuracy_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    k, num_known = 5, 2
    y = rng.integers(0, k, 60)
    y_hat = np.where(rng.random(60) < 0.6, (y + 2) % k, rng.integers(0, k, 60))
    got = novel_class_accuracy(y, y_hat, num_known=num_known, num_classes=k, num_clusters=k)
    want = _brute_force_split_accuracy(y, y_hat, num_known, k)
    np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-12)
    np.testing.assert_allclose(float(got.all), float(accuracy(y, y_hat)), rtol=1e-12)
    jitted = jax.jit(lambda a, b: novel_class_accuracy(a, b, num_known=num_known, num_classes=k,
                                                       num_clusters=k))(y, y_hat)
    np.testing.assert_allclose([float(v) for v in jitted], want, rtol=1e-12)


def test_novel_class_accuracy_bad_input_and_empty_subsets():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="num_known must be in"):
        novel_class_accuracy(y, y, num_known=3, num_classes=2, num_clusters=2)
    acc = novel_class_accuracy(y, y, num_known=2, num_classes=2, num_clusters=2)
    assert float(acc.all) == 1.0 and float(acc.known) == 1.0 and float(acc.novel) == 0.0


def test_hungarian_metrics_on_sharded_labels_eagerly():
    # Regression: an eager call on a sharded array used to fail lowering the host callback.
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    y = np.arange(64) % 4
    shifted = jax.device_put(jnp.asarray((y + 1) % 4, jnp.int32), NamedSharding(mesh, P("data")))
    assert float(accuracy(y, shifted, num_classes=4, num_clusters=4)) == 1.0
    acc = novel_class_accuracy(y, shifted, num_known=2, num_classes=4, num_clusters=4)
    assert float(acc.known) == 1.0 and float(acc.novel) == 1.0
