"""Tests for jaxclust.losses.nt_xent and info_nce against float64 NumPy transcriptions and optax."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
from scipy.special import logsumexp

from jaxclust.losses import info_nce, nt_xent


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ref_nt_xent(z1, z2, tau, normalize=True):
    """SimCLR Eq. 1: per item over the stacked 2N views, then averaged per pair."""
    u = np.concatenate([z1, z2]).astype(np.float64)
    if normalize:
        u = _unit(u)
    n2 = len(u)
    n = n2 // 2
    s = u @ u.T / tau
    out = np.empty(n2)
    for i in range(n2):
        pos = (i + n) % n2
        others = [s[i, j] for j in range(n2) if j != i]
        out[i] = -s[i, pos] + logsumexp(others)
    return 0.5 * (out[:n] + out[n:])


def ref_info_nce(q, k, pos, tau, mode):
    q, k = _unit(q), _unit(k)
    s = q @ k.T / tau
    out = np.zeros(len(q))
    for i in range(len(q)):
        p = np.flatnonzero(pos[i])
        if len(p) == 0:
            continue
        lse = logsumexp(s[i])
        if mode == "mean":
            out[i] = np.mean(lse - s[i, p])
        else:
            out[i] = lse - logsumexp(s[i, p])
    return out


def _views(seed, n=16, d=5):
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, d))
    return z1, z1 + 0.5 * rng.normal(size=(n, d))


@pytest.mark.parametrize("tau,normalize", [(0.5, True), (0.1, True), (2.0, False)])
def test_nt_xent_matches_numpy(tau, normalize):
    z1, z2 = _views(0)
    if not normalize:
        z1, z2 = 0.3 * z1, 0.3 * z2
    got = nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature=tau, normalize=normalize)
    np.testing.assert_allclose(got, ref_nt_xent(z1, z2, tau, normalize), rtol=1e-10)


def test_nt_xent_mean_matches_optax():
    z1, z2 = _views(1)
    n = len(z1)
    labels = jnp.concatenate([jnp.arange(n), jnp.arange(n)])
    expected = optax.losses.ntxent(jnp.concatenate([z1, z2]), labels, temperature=0.2)
    got = jnp.mean(nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature=0.2))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_nt_xent_jit_traced_temperature_and_gradients():
    z1, z2 = map(jnp.asarray, _views(2, n=6, d=3))
    fn = jax.jit(lambda a, b, log_tau: jnp.mean(nt_xent(a, b, temperature=jnp.exp(log_tau))))
    np.testing.assert_allclose(
        fn(z1, z2, jnp.log(0.3)), np.mean(ref_nt_xent(np.asarray(z1), np.asarray(z2), 0.3)),
        rtol=1e-10,
    )
    check_grads(fn, (z1, z2, jnp.log(0.3)), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_nt_xent_masked_equals_sliced_and_zero_rows_are_safe():
    z1, z2 = _views(3, n=10)
    keep = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0, 1], bool)
    z1p, z2p = z1.copy(), z2.copy()
    z1p[~keep] = 0.0  # zero padding: normalisation must not produce NaN
    z2p[~keep] = 0.0
    got = nt_xent(jnp.asarray(z1p), jnp.asarray(z2p), temperature=0.5, where=jnp.asarray(keep))
    np.testing.assert_allclose(got[keep], ref_nt_xent(z1[keep], z2[keep], 0.5), rtol=1e-10)
    np.testing.assert_array_equal(got[~keep], 0.0)
    grad = jax.grad(
        lambda a: jnp.sum(nt_xent(a, jnp.asarray(z2p), temperature=0.5, where=jnp.asarray(keep)))
    )(jnp.asarray(z1p))
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[~keep], 0.0)


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))


def _global_mean(loss_fn, mesh):
    """Global mean of a per-sample loss computed under shard_map (sum of locals / global count)."""

    def local(a, b):
        per = loss_fn(a, b, "data")
        return jax.lax.psum(jnp.sum(per), "data") / jax.lax.psum(per.shape[0], "data")

    return jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P())


def test_nt_xent_sharded_equals_single_device_loss_and_gradient():
    z1, z2 = map(jnp.asarray, _views(4, n=32, d=4))
    mesh = _mesh()
    shard = NamedSharding(mesh, P("data"))
    z1s, z2s = jax.device_put(z1, shard), jax.device_put(z2, shard)
    per_shard = jax.jit(
        jax.shard_map(
            lambda a, b: nt_xent(a, b, temperature=0.3, axis_name="data"),
            mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P("data"),
        )
    )(z1s, z2s)
    single = nt_xent(z1, z2, temperature=0.3)
    np.testing.assert_allclose(per_shard, single, rtol=1e-10)
    mean_fn = _global_mean(lambda a, b, ax: nt_xent(a, b, temperature=0.3, axis_name=ax), mesh)
    value, grads = jax.jit(jax.value_and_grad(mean_fn, argnums=(0, 1)))(z1s, z2s)
    ref_value, ref_grads = jax.value_and_grad(
        lambda a, b: jnp.mean(nt_xent(a, b, temperature=0.3)), argnums=(0, 1)
    )(z1, z2)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


@hypothesis.settings(max_examples=5, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), n=st.integers(2, 4))
def test_nt_xent_equivariant_to_pair_permutation_and_view_swap(seed, n):
    rng = np.random.default_rng(seed)
    z1, z2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    perm = rng.permutation(n)
    base = nt_xent(jnp.asarray(z1), jnp.asarray(z2))
    np.testing.assert_allclose(nt_xent(jnp.asarray(z1[perm]), jnp.asarray(z2[perm])), base[perm],
                               rtol=1e-10)
    np.testing.assert_allclose(nt_xent(jnp.asarray(z2), jnp.asarray(z1)), base, rtol=1e-10)
    # The LSE runs over a set that contains the positive, so every loss is >= 0.
    assert (np.asarray(base) >= 0).all()


@pytest.mark.parametrize("mode", ["mean", "logsumexp"])
def test_info_nce_multi_positive_matches_numpy(mode):
    rng = np.random.default_rng(5)
    q, k = rng.normal(size=(7, 4)), rng.normal(size=(9, 4))
    pos = rng.random((7, 9)) < 0.3
    pos[0] = False  # a query without positives gets 0
    got = info_nce(jnp.asarray(q), jnp.asarray(k), positives=jnp.asarray(pos), temperature=0.2,
                   multi_positive=mode)
    np.testing.assert_allclose(got, ref_info_nce(q, k, pos, 0.2, mode), rtol=1e-10)
    assert float(got[0]) == 0.0


def test_info_nce_key_mask_equals_sliced_and_grad():
    rng = np.random.default_rng(6)
    q, k = rng.normal(size=(5, 3)), rng.normal(size=(8, 3))
    pos = np.zeros((5, 8), bool)
    pos[np.arange(5), np.arange(5)] = True
    keep = np.array([1, 1, 1, 1, 1, 0, 1, 0], bool)
    got = info_nce(jnp.asarray(q), jnp.asarray(k), positives=jnp.asarray(pos),
                   key_where=jnp.asarray(keep))
    expected = info_nce(jnp.asarray(q), jnp.asarray(k[keep]), positives=jnp.asarray(pos[:, keep]))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    fn = jax.jit(lambda a, b: jnp.sum(info_nce(a, b, positives=jnp.asarray(pos), temperature=0.5)))
    check_grads(fn, (jnp.asarray(q), jnp.asarray(k)), order=1, modes=["rev"], atol=1e-6,
                rtol=1e-6)


def test_info_nce_sharded_equals_single_device():
    z1, z2 = map(jnp.asarray, _views(7, n=24, d=4))
    mesh = _mesh()
    shard = NamedSharding(mesh, P("data"))
    mean_fn = _global_mean(lambda a, b, ax: info_nce(a, b, temperature=0.2, axis_name=ax), mesh)
    value, grads = jax.jit(jax.value_and_grad(mean_fn, argnums=(0, 1)))(
        jax.device_put(z1, shard), jax.device_put(z2, shard)
    )
    ref_value, ref_grads = jax.value_and_grad(
        lambda a, b: jnp.mean(info_nce(a, b, temperature=0.2)), argnums=(0, 1)
    )(z1, z2)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


class TestBadInput:
    z = jnp.ones((4, 3))

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="same shape"):
            nt_xent(self.z, jnp.ones((5, 3)))

    def test_rank(self):
        with pytest.raises(ValueError, match="z1 must have rank 2"):
            nt_xent(jnp.ones(3), jnp.ones(3))

    def test_integer(self):
        with pytest.raises(TypeError, match="z1 must have a floating-point dtype"):
            nt_xent(jnp.ones((4, 3), int), self.z)

    @pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
    def test_temperature(self, tau):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            nt_xent(self.z, self.z, temperature=tau)

    def test_where(self):
        with pytest.raises(ValueError, match="where and z1 must have the same length"):
            nt_xent(self.z, self.z, where=jnp.ones(3, bool))

    def test_info_nce_needs_square_without_positives(self):
        with pytest.raises(ValueError, match="needs n == m"):
            info_nce(self.z, jnp.ones((5, 3)))

    def test_info_nce_positives_shape(self):
        with pytest.raises(ValueError, match="positives must be a boolean array of shape"):
            info_nce(self.z, self.z, positives=jnp.ones((4, 5), bool))

    def test_info_nce_mode(self):
        with pytest.raises(ValueError, match="multi_positive must be one of"):
            info_nce(self.z, self.z, multi_positive="sum")


def test_docs_simclr_example_runs():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[2] / "docs" / "representation.md").read_text()
    section = text.split("## A SimCLR-style objective from library pieces", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/representation.md", "exec"), {})


def test_nt_xent_no_retrace_for_fixed_shapes():
    import chex

    fn = jax.jit(chex.assert_max_traces(lambda a, b, t: nt_xent(a, b, temperature=t), n=1))
    for seed in range(3):
        z1, z2 = _views(seed, n=4, d=3)
        fn(jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(0.1 + seed))
