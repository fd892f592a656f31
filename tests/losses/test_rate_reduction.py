"""Tests for the MCR² coding rates and CPP coding length against float64 NumPy transcriptions."""

import pathlib
import re

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclust.losses import (
    RateReductionResult,
    class_coding_rate,
    coding_length,
    coding_rate,
    estimate_num_clusters_coding_length,
    rate_reduction,
)


def _np_rate(z, e):
    """METHODS.md §3.10: R = ½ ln det(I_d + d/(N e) ZᵀZ), by slogdet in float64."""
    n, d = z.shape
    sign, logdet = np.linalg.slogdet(np.eye(d) + d / (n * e) * z.T @ z)
    assert sign > 0
    return 0.5 * logdet


def _np_class_rate(z, pi, e):
    n, d = z.shape
    total = 0.0
    for j in range(pi.shape[1]):
        nj = pi[:, j].sum()
        if nj == 0:
            continue
        gram = (z * pi[:, j : j + 1]).T @ z
        total += nj / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (nj * e) * gram)[1]
    return total


def _np_coding_length(z, labels, k, e):
    """METHODS.md §3.12: Σ_k ((m_k + d)/2) ln det(I + d/(e m_k) Z_kᵀZ_k) − m_k ln(m_k/N)."""
    d = z.shape[1]
    valid = labels >= 0
    n = valid.sum()
    total = 0.0
    for c in range(k):
        zk = z[labels == c]
        m = len(zk)
        if m == 0:
            continue
        logdet = np.linalg.slogdet(np.eye(d) + d / (e * m) * zk.T @ zk)[1]
        total += (m + d) / 2 * logdet - m * np.log(m / n)
    return total


def _data(rng, n=48, d=6, k=4):
    z = rng.normal(size=(n, d))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    pi = rng.dirichlet(np.ones(k), size=n)
    return z, pi


_jit_all = jax.jit(
    lambda z, pi, e: (
        rate_reduction(z, pi, eps_sq=e),
        coding_rate(z, eps_sq=e),
        class_coding_rate(z, pi, eps_sq=e, chunk_size=3),
    )
)


@pytest.mark.parametrize("shape", [(48, 6), (5, 9)])  # d×d form, and the N×N Sylvester form
def test_matches_numpy(rng, shape):
    z, pi = _data(rng, *shape)
    pi[:, 1] = 0.0  # an empty soft cluster contributes 0
    for e in (0.5, 0.1):
        res, rate, chunked = _jit_all(jnp.asarray(z), jnp.asarray(pi), e)
        assert isinstance(res, RateReductionResult)
        np.testing.assert_allclose(float(res.rate), _np_rate(z, e), rtol=1e-12)
        np.testing.assert_allclose(float(res.class_rate), _np_class_rate(z, pi, e), rtol=1e-12)
        np.testing.assert_allclose(float(res.delta_r), _np_rate(z, e) - _np_class_rate(z, pi, e), rtol=1e-10)
        np.testing.assert_allclose(float(rate), _np_rate(z, e), rtol=1e-12)
        np.testing.assert_allclose(float(chunked), float(res.class_rate), rtol=1e-12)


def test_closed_form_and_sylvester_identity(rng):
    # Orthonormal rows: ZᵀZ has eigenvalues 1 (n of them), so R = (n/2) ln(1 + d/(n e)).
    q = np.linalg.qr(rng.normal(size=(7, 7)))[0][:3]
    np.testing.assert_allclose(float(coding_rate(jnp.asarray(q), eps_sq=0.5)), 1.5 * np.log(1 + 7 / 1.5), rtol=1e-12)
    # Sylvester: the n < d (N×N) and n >= d (d×d) code paths give the same R for Z and Zᵀ-shaped data.
    z = rng.normal(size=(4, 10))
    wide = float(coding_rate(jnp.asarray(z), eps_sq=0.3))
    tall_equiv = 0.5 * np.linalg.slogdet(np.eye(4) + 10 / (4 * 0.3) * z @ z.T)[1]
    np.testing.assert_allclose(wide, tall_equiv, rtol=1e-12)


def test_one_hot_class_rate_is_frequency_weighted_sum_of_class_rates(rng):
    z, _ = _data(rng, n=40, d=5)
    labels = rng.integers(0, 3, 40)
    rc = float(class_coding_rate(jnp.asarray(z), jax.nn.one_hot(labels, 3), eps_sq=0.5))
    per_class = sum((labels == j).mean() * float(coding_rate(jnp.asarray(z[labels == j]))) for j in range(3))
    np.testing.assert_allclose(rc, per_class, rtol=1e-12)


def test_orthogonal_invariance_and_bf16(rng):
    z, pi = _data(rng)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    a = _jit_all(jnp.asarray(z), jnp.asarray(pi), 0.5)[0]
    b = _jit_all(jnp.asarray(z @ q), jnp.asarray(pi), 0.5)[0]
    for u, v in zip(a, b):
        np.testing.assert_allclose(float(u), float(v), rtol=1e-10)
    half = rate_reduction(jnp.asarray(z, jnp.bfloat16), jnp.asarray(pi, jnp.bfloat16))
    assert half.rate.dtype == jnp.float32  # accumulated and factorised in float32
    # bf16 rounding of the inputs (rel. 2^-8) moves the rates by a few parts per thousand.
    np.testing.assert_allclose(float(half.rate), float(a.rate), rtol=1e-2)
    np.testing.assert_allclose(float(half.class_rate), float(a.class_rate), rtol=1e-2)


_jit_rr = jax.jit(lambda z, pi: rate_reduction(z, pi, eps_sq=0.5))


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), k=st.integers(1, 5), soft=st.booleans())
def test_rate_reduction_is_nonnegative(seed, k, soft):
    # Concavity of ln det: with row-stochastic memberships, R(Z) >= Σ_j (n_j/N) R_j = R_c.
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(24, 6)) * rng.uniform(0.1, 3.0)
    pi = rng.dirichlet(np.ones(k), size=24) if soft else np.eye(k)[rng.integers(0, k, 24)]
    res = _jit_rr(jnp.asarray(z), jnp.asarray(pi))
    assert float(res.rate) >= 0
    assert float(res.delta_r) >= -1e-10 * max(1.0, float(res.rate))


def test_gradients_match_finite_differences(rng):
    z, pi = _data(rng, n=10, d=4, k=3)
    f = jax.jit(lambda z, pi: rate_reduction(z, pi, eps_sq=0.4).delta_r)
    check_grads(f, (jnp.asarray(z), jnp.asarray(pi)), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    g = jax.jit(lambda z: coding_rate(z, eps_sq=0.4))
    check_grads(g, (jnp.asarray(z[:3]),), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)  # N×N path
    # One-hot memberships (exact zeros) still give finite gradients in both paths.
    hard = jax.nn.one_hot(jnp.array([0, 0, 1, 1, 1, 2, 2, 0, 1, 0]), 3)
    grad = jax.jit(jax.grad(lambda z, p: rate_reduction(z, p).delta_r, argnums=(0, 1)))
    for zz, pp in ((z, hard), (z[:3], hard[:3])):
        gz, gp = grad(jnp.asarray(zz), pp)
        assert np.isfinite(np.asarray(gz)).all() and np.isfinite(np.asarray(gp)).all()


def test_jit_no_retrace(rng):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(z, pi, e):
        return rate_reduction(z, pi, eps_sq=e)

    for i in range(3):
        z, pi = _data(np.random.default_rng(i), n=16, d=4, k=3)
        res = run(jnp.asarray(z), jnp.asarray(pi), 0.1 * (i + 1))
        np.testing.assert_allclose(float(res.rate), _np_rate(z, 0.1 * (i + 1)), rtol=1e-10)


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_shard_map_equals_jit_on_sharded_equals_single_device(rng):
    z, pi = _data(rng, n=64, d=5, k=3)
    labels = rng.integers(0, 3, 64)
    z, pi = jnp.asarray(z), jnp.asarray(pi)
    mesh = _mesh()
    zs = jax.device_put(z, NamedSharding(mesh, P("data")))
    ps = jax.device_put(pi, NamedSharding(mesh, P("data")))
    ls = jax.device_put(jnp.asarray(labels), NamedSharding(mesh, P("data")))

    def both(z, pi, lab, axis_name=None):
        rr = rate_reduction(z, pi, eps_sq=0.2, axis_name=axis_name)
        ln = coding_length(z, jax.nn.one_hot(lab, 3), eps_sq=0.2, axis_name=axis_name)
        est = estimate_num_clusters_coding_length(z, [lab, lab % 2], num_clusters=[3, 2], axis_name=axis_name)
        return rr, ln, est.coding_lengths

    mapped = jax.jit(
        jax.shard_map(lambda *a: both(*a, axis_name="data"), mesh=mesh, in_specs=(P("data"),) * 3, out_specs=P())
    )(zs, ps, ls)
    on_sharded = jax.jit(both)(zs, ps, ls)
    single = jax.jit(both)(z, pi, jnp.asarray(labels))
    np.testing.assert_allclose(float(single[0].rate), _np_rate(np.asarray(z), 0.2), rtol=1e-12)
    np.testing.assert_allclose(float(single[1]), _np_coding_length(np.asarray(z), labels, 3, 0.2), rtol=1e-12)
    for out in (mapped, on_sharded):
        for u, v in zip(out[0], single[0]):
            np.testing.assert_allclose(float(u), float(v), rtol=1e-12)
        np.testing.assert_allclose(float(out[1]), float(single[1]), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(out[2]), np.asarray(single[2]), rtol=1e-12)


def test_coding_length_matches_numpy_and_ignores_padding(rng):
    z, _ = _data(rng, n=30, d=4)
    labels = rng.integers(0, 4, 30)
    labels[labels == 2] = 1  # cluster 2 empty
    ours = coding_length(jnp.asarray(z), jax.nn.one_hot(labels, 4))
    np.testing.assert_allclose(float(ours), _np_coding_length(z, labels, 4, 0.1), rtol=1e-12)
    padded = np.concatenate([labels, -np.ones(5, int)])
    zp = np.concatenate([z, rng.normal(size=(5, 4))])
    res = estimate_num_clusters_coding_length(jnp.asarray(zp), [jnp.asarray(padded)])
    np.testing.assert_allclose(float(res.coding_lengths[0]), float(ours), rtol=1e-12)
    assert int(res.candidates[0]) == 4


def test_estimate_num_clusters_picks_true_partition(rng):
    # Three tight clusters on orthogonal axes in R^6: merging or splitting costs bits.
    k_true, per = 3, 40
    z = np.concatenate([np.eye(6)[c] * rng.uniform(0.5, 1.5, (per, 1)) + 0.01 * rng.normal(size=(per, 6)) for c in range(k_true)])
    truth = np.repeat(np.arange(k_true), per)
    cands = {1: np.zeros_like(truth), 2: np.minimum(truth, 1), 3: truth, 6: truth * 2 + rng.integers(0, 2, len(truth))}
    res = jax.jit(lambda z, *labs: estimate_num_clusters_coding_length(z, labs, num_clusters=list(cands)))(
        jnp.asarray(z), *[jnp.asarray(v) for v in cands.values()]
    )
    ref = [_np_coding_length(z, v, k, 0.1) for k, v in cands.items()]
    np.testing.assert_allclose(np.asarray(res.coding_lengths), ref, rtol=1e-10)
    assert int(res.num_clusters) == 3 == list(cands)[int(np.argmin(ref))]
    assert int(res.best_index) == 2
    np.testing.assert_array_equal(np.asarray(res.candidates), list(cands))


class TestBadInput:
    z = jnp.ones((6, 3))
    pi = jnp.ones((6, 2)) / 2

    def test_rank(self):
        with pytest.raises(ValueError, match=r"z must have rank 2 with shape \[n, d\], got shape \(6,\)"):
            coding_rate(jnp.ones(6))

    def test_integer_features(self):
        with pytest.raises(TypeError, match="z must have a floating-point dtype"):
            rate_reduction(jnp.ones((6, 3), jnp.int32), self.pi)

    def test_membership_rows(self):
        with pytest.raises(ValueError, match=r"membership must have shape \[n, k\] with n=6 rows"):
            rate_reduction(self.z, jnp.ones((5, 2)))

    def test_negative_membership(self):
        with pytest.raises(ValueError, match="membership must be non-negative"):
            class_coding_rate(self.z, -self.pi)

    @pytest.mark.parametrize("e", [0.0, -1.0, float("nan")])
    def test_eps_sq(self, e):
        with pytest.raises(ValueError, match="eps_sq must be a finite number > 0"):
            coding_rate(self.z, eps_sq=e)

    def test_non_finite(self):
        with pytest.raises(ValueError, match="z contains 1 NaN or Inf"):
            coding_rate(self.z.at[0, 0].set(jnp.nan))

    def test_chunk_size(self):
        with pytest.raises(ValueError, match="chunk_size must be >= 1"):
            rate_reduction(self.z, self.pi, chunk_size=0)

    def test_label_sets(self):
        with pytest.raises(ValueError, match="label_sets must hold at least one"):
            estimate_num_clusters_coding_length(self.z, [])
        with pytest.raises(ValueError, match=r"label_sets\[0\] must have shape \[n\] with n=6"):
            estimate_num_clusters_coding_length(self.z, [jnp.zeros(5, jnp.int32)])
        with pytest.raises(TypeError, match=r"label_sets\[0\] must have an integer dtype"):
            estimate_num_clusters_coding_length(self.z, [jnp.zeros(6)])
        with pytest.raises(ValueError, match="num_clusters must have one entry per labelling"):
            estimate_num_clusters_coding_length(self.z, [jnp.zeros(6, jnp.int32)], num_clusters=[1, 2])
        with pytest.raises(ValueError, match="num_clusters must be given when label_sets are traced"):
            jax.jit(lambda lab: estimate_num_clusters_coding_length(self.z, [lab]))(jnp.zeros(6, jnp.int32))


def test_docs_mcr2_section_runs():
    text = (pathlib.Path(__file__).parents[2] / "docs" / "representation.md").read_text()
    section = text.split("## An MCR²-style objective from library pieces", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/representation.md", "exec"), {})
