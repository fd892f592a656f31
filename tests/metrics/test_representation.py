"""Tests for the representation diagnostics (§4.8) against float64 NumPy transcriptions."""

import itertools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.metrics import (
    NeuralCollapseResult,
    alignment,
    fisher_ratio,
    linear_cka,
    linear_cka_unbiased,
    linear_hsic_unbiased,
    neural_collapse,
    rankme,
    relative_representation,
    uniformity,
    von_neumann_entropy,
)


def _np_rankme(z, eps=1e-7):
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + eps
    return np.exp(-(p * np.log(p)).sum())


def _np_nc(h, y, k, w, b):
    """Papyan et al. (2020) as written in METHODS.md §4.8, all classes present."""
    n, d = h.shape
    mu = np.stack([h[y == c].mean(0) for c in range(k)])
    mg = h.mean(0)
    sw = sum(np.outer(h[i] - mu[y[i]], h[i] - mu[y[i]]) for i in range(n)) / n
    m = mu - mg
    sb = m.T @ m / k
    nc1 = np.trace(sw @ np.linalg.pinv(sb, rcond=1e-8, hermitian=True)) / k
    norms = np.linalg.norm(m, axis=1)
    equinorm = norms.std() / norms.mean()
    cos = [m[a] @ m[c] / (norms[a] * norms[c]) for a in range(k) for c in range(k) if a != c]
    equiang = np.mean(np.abs(np.array(cos) + 1 / (k - 1)))
    nc3 = ((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2).sum()
    dec = (h @ w.T + b).argmax(1)
    ncc = ((h[:, None] - mu[None]) ** 2).sum(-1).argmin(1)
    nc4 = (dec != ncc).mean()
    var = np.array([((h[y == c] - mu[c]) ** 2).sum(1).mean() for c in range(k)])
    cdnv = np.mean([(var[a] + var[c]) / (2 * ((mu[a] - mu[c]) ** 2).sum()) for a in range(k) for c in range(k) if a != c])
    return nc1, equinorm, equiang, np.std(cos), nc3, nc4, cdnv


def _np_hsic_ustat(k, l):
    """Unbiased HSIC as the U-statistic over distinct 4-tuples (Song et al. 2012, Thm. 3)."""
    n = len(k)
    total = 0.0
    for idx in itertools.permutations(range(n), 4):
        for t, u, v, w in itertools.permutations(idx):
            total += k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
    return total / 24 / (n * (n - 1) * (n - 2) * (n - 3))


def _np_cka_hsic_form(x, y):
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    return np.trace(k @ h @ l @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l @ h @ l @ h))


def _np_fisher(x, y, k, ridge):
    d = x.shape[1]
    mu = x.mean(0)
    sw = np.zeros((d, d))
    sb = np.zeros((d, d))
    for c in range(k):
        xc = x[y == c]
        if len(xc) == 0:
            continue
        mc = xc.mean(0)
        sw += (xc - mc).T @ (xc - mc)
        sb += len(xc) * np.outer(mc - mu, mc - mu)
    return np.trace(np.linalg.solve(sw + ridge * np.trace(sw) / d * np.eye(d), sb))


def test_rankme_matches_numpy_and_rank_r(rng):
    z = rng.normal(size=(30, 8)) * np.arange(1, 9)
    np.testing.assert_allclose(float(rankme(jnp.asarray(z))), _np_rankme(z), rtol=1e-12)
    u = np.linalg.qr(rng.normal(size=(40, 40)))[0]
    v = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    for r in (1, 3, 7):
        flat = u[:, :r] @ v[:r] * 5.0  # r equal singular values
        # Each of the 10 - r zero singular values adds −ε ln ε ≈ 1.6e-6 to the entropy.
        np.testing.assert_allclose(float(rankme(jnp.asarray(flat))), r, rtol=1e-4)
        skewed = u[:, :r] @ np.diag(rng.uniform(0.5, 2, r)) @ v[:r]
        assert r - 1 < float(rankme(jnp.asarray(skewed))) <= r + 1e-4


_jit_nc = jax.jit(lambda h, y, w, b, k: neural_collapse(h, y, w, b, num_classes=k), static_argnums=4)


def test_neural_collapse_matches_numpy(rng):
    k, d = 4, 6
    y = np.repeat(np.arange(k), 8)
    h = rng.normal(size=(k, d))[y] * 2 + rng.normal(size=(32, d))
    w, b = rng.normal(size=(k, d)), rng.normal(size=k)
    res = _jit_nc(jnp.asarray(h), jnp.asarray(y), jnp.asarray(w), jnp.asarray(b), k)
    assert isinstance(res, NeuralCollapseResult)
    ref = _np_nc(h, y, k, w, b)
    ours = (res.nc1, res.nc2_equinorm, res.nc2_equiangular, res.nc2_cosine_std, res.nc3, res.nc4, res.cdnv)
    for name, a, r in zip(("nc1", "equinorm", "equiang", "cos_std", "nc3", "nc4", "cdnv"), ours, ref):
        np.testing.assert_allclose(float(a), r, rtol=1e-9, err_msg=name)
    # Ignored rows (-1) and an absent class: same as dropping them and using k - 1 classes.
    y2 = np.where(y == 3, -1, y)
    masked = _jit_nc(jnp.asarray(h), jnp.asarray(y2), None, None, k)
    sub = _jit_nc(jnp.asarray(h[y != 3]), jnp.asarray(y[y != 3]), None, None, 3)
    assert masked.nc3 is None and masked.nc4 is None
    for field in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_cosine_std", "cdnv"):
        np.testing.assert_allclose(float(getattr(masked, field)), float(getattr(sub, field)), rtol=1e-10, err_msg=field)


def test_simplex_etf_is_collapsed(rng):
    k, d = 5, 8
    q = np.linalg.qr(rng.normal(size=(d, k)))[0]
    etf = np.sqrt(k / (k - 1)) * (np.eye(k) - 1 / k) @ q.T  # rows: a simplex ETF in R^d
    y = np.tile(np.arange(k), 6)
    h = etf[y] + 3.0  # shifted by a common offset: the global mean is removed
    bias = -etf @ np.full(d, 3.0)  # the classifier acts on features centred at the global mean
    res = _jit_nc(jnp.asarray(h), jnp.asarray(y), jnp.asarray(etf), jnp.asarray(bias), k)
    for field in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_cosine_std", "nc3", "nc4", "cdnv"):
        assert abs(float(getattr(res, field))) < 1e-10, field


def test_linear_cka_matches_hsic_form_and_invariances(rng):
    x = rng.normal(size=(20, 5))
    y = x @ rng.normal(size=(5, 3)) + 0.5 * rng.normal(size=(20, 3))
    ref = _np_cka_hsic_form(x, y)
    np.testing.assert_allclose(float(linear_cka(jnp.asarray(x), jnp.asarray(y))), ref, rtol=1e-12)
    wide = rng.normal(size=(20, 30))  # n < p1 + p2: the sample-Gram path
    np.testing.assert_allclose(float(linear_cka(jnp.asarray(x), jnp.asarray(wide))), _np_cka_hsic_form(x, wide), rtol=1e-12)
    assert float(linear_cka(jnp.asarray(x), jnp.ones((20, 2)))) == 0.0  # constant: 0, not NaN


_jit_cka = jax.jit(linear_cka)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), log_scale=st.floats(-3, 3))
def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling(seed, log_scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 4))
    y = np.tanh(x @ rng.normal(size=(4, 6)))
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    a = float(_jit_cka(jnp.asarray(x), jnp.asarray(y)))
    b = float(_jit_cka(jnp.asarray(x), jnp.asarray(10.0**log_scale * y @ q)))
    np.testing.assert_allclose(b, a, rtol=1e-10)
    assert 0.0 <= a <= 1.0 + 1e-12


def test_unbiased_hsic_matches_u_statistic(rng):
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=(6, 2)) + x[:, :1]
    ref = _np_hsic_ustat(x @ x.T, y @ y.T)
    np.testing.assert_allclose(float(linear_hsic_unbiased(jnp.asarray(x), jnp.asarray(y))), ref, rtol=1e-10)
    xx = _np_hsic_ustat(x @ x.T, x @ x.T)
    yy = _np_hsic_ustat(y @ y.T, y @ y.T)
    np.testing.assert_allclose(float(linear_cka_unbiased(jnp.asarray(x), jnp.asarray(y))), ref / np.sqrt(xx * yy), rtol=1e-10)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    np.testing.assert_allclose(float(linear_cka_unbiased(jnp.asarray(x), jnp.asarray(-3 * x @ q))), 1.0, rtol=1e-10)


def test_relative_representation_invariances(rng):
    x, anchors = rng.normal(size=(7, 4)), rng.normal(size=(3, 4))
    ref = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (anchors / np.linalg.norm(anchors, axis=1, keepdims=True)).T
    rel = np.asarray(relative_representation(jnp.asarray(x), jnp.asarray(anchors)))
    np.testing.assert_allclose(rel, ref, rtol=1e-12)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    moved = relative_representation(jnp.asarray(2.5 * x @ q), jnp.asarray(2.5 * anchors @ q))
    np.testing.assert_allclose(np.asarray(moved), rel, rtol=1e-10, atol=1e-12)
    shifted = relative_representation(jnp.asarray(x + 1.0), jnp.asarray(anchors + 1.0))
    assert np.abs(np.asarray(shifted) - rel).max() > 1e-3  # not translation invariant (documented)


def test_vne_matches_numpy(rng):
    for n, d in ((25, 6), (4, 9)):
        h = rng.normal(size=(n, d)) * np.linspace(0.1, 2.0, d)
        hn = h / np.linalg.norm(h, axis=1, keepdims=True)
        lam = np.linalg.svd(hn / np.sqrt(n), compute_uv=False) ** 2
        ref = -(lam * np.log(lam)).sum()
        np.testing.assert_allclose(float(von_neumann_entropy(jnp.asarray(h))), ref, rtol=1e-10)
    np.testing.assert_allclose(float(von_neumann_entropy(jnp.ones((5, 3)))), 0.0, atol=1e-12)


def test_fisher_ratio_matches_numpy(rng):
    y = rng.integers(0, 3, 40)
    x = rng.normal(size=(40, 4)) + np.eye(4)[y] * 3
    np.testing.assert_allclose(float(fisher_ratio(jnp.asarray(x), jnp.asarray(y), num_classes=3)), _np_fisher(x, y, 3, 1e-6), rtol=1e-10)
    # Two equal classes in 1-D: (μ1 − μ2)² / (2(σ1² + σ2²)) with population variances.
    a, b = rng.normal(0, 1, 10), rng.normal(3, 2, 10)
    j = fisher_ratio(jnp.asarray(np.concatenate([a, b])[:, None]), jnp.repeat(jnp.arange(2), 10), num_classes=2, ridge=0.0)
    np.testing.assert_allclose(float(j), (a.mean() - b.mean()) ** 2 / (2 * (a.var() + b.var())), rtol=1e-12)


def test_alignment_and_uniformity_brute_force(rng):
    x = rng.normal(size=(9, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = x + 0.1 * rng.normal(size=(9, 3))
    for alpha in (1.0, 2.0):
        ref = (np.linalg.norm(x - y, axis=1) ** alpha).mean()
        np.testing.assert_allclose(float(alignment(jnp.asarray(x), jnp.asarray(y), alpha=alpha)), ref, rtol=1e-12)
    pairs = [np.exp(-2 * ((x[i] - x[j]) ** 2).sum()) for i in range(9) for j in range(i + 1, 9)]
    np.testing.assert_allclose(float(uniformity(jnp.asarray(x))), np.log(np.mean(pairs)), rtol=1e-12)


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_shard_map_equals_jit_on_sharded_equals_single_device(rng):
    k = 3
    y = np.arange(64) % k
    h = rng.normal(size=(64, 5)) + 2 * np.eye(5)[y]
    g = h @ rng.normal(size=(5, 4))
    w = rng.normal(size=(k, 5))

    def all_metrics(h, g, y, axis_name=None):
        nc = neural_collapse(h, y, w, num_classes=k, axis_name=axis_name)
        return (
            rankme(h, axis_name=axis_name),
            nc.nc1, nc.nc2_equiangular, nc.nc3, nc.nc4, nc.cdnv,
            linear_cka(h, g, axis_name=axis_name),
            von_neumann_entropy(h, axis_name=axis_name),
            fisher_ratio(h, y, num_classes=k, axis_name=axis_name),
            alignment(h[:, :4], g, axis_name=axis_name),
            uniformity(h, axis_name=axis_name),
        )

    args = (jnp.asarray(h), jnp.asarray(g), jnp.asarray(y))
    single = jax.jit(all_metrics)(*args)
    mesh = _mesh()
    sharded = [jax.device_put(a, NamedSharding(mesh, P("data"))) for a in args]
    mapped = jax.jit(
        jax.shard_map(lambda *a: all_metrics(*a, axis_name="data"), mesh=mesh, in_specs=(P("data"),) * 3, out_specs=P())
    )(*sharded)
    # (jit on sharded inputs runs the unsharded code path, which XLA partitions; it is checked
    # for the rate-reduction losses, which share the Gram-matrix code.)
    for a, b in zip(mapped, single):
        # RankMe under shard_map uses eigvalsh of the Gram instead of the SVD.
        np.testing.assert_allclose(float(a), float(b), rtol=1e-9)


class TestBadInput:
    def test_labels_range(self):
        with pytest.raises(ValueError, match=r"labels must lie in \[-1, num_classes=2\)"):
            neural_collapse(jnp.ones((4, 2)), jnp.array([0, 1, 2, 0]), num_classes=2)

    def test_num_classes(self):
        with pytest.raises(ValueError, match="num_classes must be >= 2"):
            fisher_ratio(jnp.ones((4, 2)), jnp.zeros(4, jnp.int32), num_classes=1)

    def test_classifier_shape(self):
        with pytest.raises(ValueError, match=r"classifier must have shape \[k, d\] = \(2, 2\)"):
            neural_collapse(jnp.ones((4, 2)), jnp.array([0, 1, 1, 0]), jnp.ones((3, 2)), num_classes=2)

    def test_pair_lengths(self):
        with pytest.raises(ValueError, match="x and y must have the same length: x has 4, y has 3"):
            linear_cka(jnp.ones((4, 2)), jnp.ones((3, 2)))
        with pytest.raises(ValueError, match="need n >= 4 samples"):
            linear_hsic_unbiased(jnp.ones((3, 2)), jnp.ones((3, 2)))

    def test_dims_and_dtypes(self):
        with pytest.raises(ValueError, match=r"anchors must have shape \[m, d\] with d=2"):
            relative_representation(jnp.ones((4, 2)), jnp.ones((3, 3)))
        with pytest.raises(TypeError, match="z must have a floating-point dtype"):
            rankme(jnp.ones((4, 2), jnp.int32))
        with pytest.raises(ValueError, match=r"h must have rank 2 with shape \[n, d\]"):
            von_neumann_entropy(jnp.ones(4))
        with pytest.raises(ValueError, match="x needs n >= 2 samples"):
            uniformity(jnp.ones((1, 2)))
        with pytest.raises(ValueError, match="x and y must have the same shape"):
            alignment(jnp.ones((4, 2)), jnp.ones((4, 3)))
