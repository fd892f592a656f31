"""Tests for VQ lookup/losses, EMA codebook updates and CVQ re-anchoring against NumPy."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from jaxclust.losses import (
    CVQResult,
    VQEMAState,
    VQResult,
    cvq_contrastive_loss,
    cvq_reanchor,
    vector_quantize,
    vq_ema_init,
    vq_ema_update,
)


def _np_vq(z, e, beta=0.25, similarity="l2"):
    if similarity == "l2":
        idx = ((z[:, None] - e[None]) ** 2).sum(-1).argmin(1)
    else:
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        en = e / np.linalg.norm(e, axis=1, keepdims=True)
        idx = (zn @ en.T).argmax(1)
    sq = ((z - e[idx]) ** 2).sum(1)
    counts = np.bincount(idx, minlength=len(e)).astype(float)
    p = counts / counts.sum()
    nz = p[p > 0]
    return idx, e[idx], sq * (1 + beta), counts, np.exp(-(nz * np.log(nz)).sum())


def _np_ema(counts, sums, usage, z, idx, k, gamma, delta):
    """VQ-VAE Appendix A.1 with Laplace smoothing; CVQ usage EMA."""
    valid = idx >= 0
    cnt = np.bincount(idx[valid], minlength=k).astype(float)
    s = np.zeros_like(sums)
    np.add.at(s, idx[valid], z[valid])
    counts = gamma * counts + (1 - gamma) * cnt
    sums = gamma * sums + (1 - gamma) * s
    usage = gamma * usage + (1 - gamma) * cnt / cnt.sum()
    total = counts.sum()
    smoothed = (counts + delta) / (total + k * delta) * total
    return counts, sums, usage, sums / smoothed[:, None]


_jit_vq = jax.jit(vector_quantize, static_argnames=("similarity",))


@pytest.mark.parametrize("similarity", ["l2", "cosine"])
def test_lookup_and_losses_match_numpy(rng, similarity):
    z = rng.normal(size=(40, 3))
    e = rng.normal(size=(6, 3))
    res = _jit_vq(jnp.asarray(z), jnp.asarray(e), beta=0.25, similarity=similarity)
    assert isinstance(res, VQResult) and res.indices.dtype == jnp.int32
    idx, q, loss, counts, ppl = _np_vq(z, e, 0.25, similarity)
    np.testing.assert_array_equal(np.asarray(res.indices), idx)
    np.testing.assert_allclose(np.asarray(res.quantized), q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(res.loss), loss, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.codebook_loss), np.asarray(res.commitment_loss), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.counts), counts)
    np.testing.assert_allclose(float(res.perplexity), ppl, rtol=1e-12)


def test_straight_through_and_stop_gradients(rng):
    z = jnp.asarray(rng.normal(size=(8, 3)))
    e = jnp.asarray(rng.normal(size=(4, 3)))
    w = jnp.asarray(rng.normal(size=(8, 3)))
    # Straight-through: d/dz Σ w ⊙ quantized = w exactly, and no gradient reaches the codebook.
    gz, ge = jax.grad(lambda z, e: jnp.sum(w * vector_quantize(z, e).quantized), argnums=(0, 1))(z, e)
    np.testing.assert_array_equal(np.asarray(gz), np.asarray(w))
    np.testing.assert_array_equal(np.asarray(ge), 0.0)
    idx = np.asarray(vector_quantize(z, e).indices)
    # Codebook term moves codes only, commitment term moves the encoder only.
    gz, ge = jax.grad(lambda z, e: jnp.sum(vector_quantize(z, e).codebook_loss), argnums=(0, 1))(z, e)
    np.testing.assert_array_equal(np.asarray(gz), 0.0)
    expected = np.zeros((4, 3))
    np.add.at(expected, idx, 2 * (np.asarray(e)[idx] - np.asarray(z)))
    np.testing.assert_allclose(np.asarray(ge), expected, rtol=1e-12)
    gz, ge = jax.grad(lambda z, e: jnp.sum(vector_quantize(z, e, beta=0.4).loss), argnums=(0, 1))(z, e)
    np.testing.assert_allclose(np.asarray(gz), 0.8 * (np.asarray(z) - np.asarray(e)[idx]), rtol=1e-12)
    # Finite differences on each term w.r.t. the argument it trains (no ties nearby).
    check_grads(lambda e: jnp.sum(vector_quantize(z, e).codebook_loss), (e,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    check_grads(lambda z: jnp.sum(vector_quantize(z, e).commitment_loss), (z,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_masked_equals_sliced(rng):
    z = jnp.asarray(rng.normal(size=(12, 3)))
    e = jnp.asarray(rng.normal(size=(5, 3)))
    keep = np.arange(12) % 3 != 0
    masked = _jit_vq(z, e, where=jnp.asarray(keep))
    sliced = _jit_vq(z[keep], e)
    np.testing.assert_array_equal(np.asarray(masked.indices)[~keep], -1)
    np.testing.assert_array_equal(np.asarray(masked.indices)[keep], np.asarray(sliced.indices))
    np.testing.assert_allclose(np.asarray(masked.loss)[keep], np.asarray(sliced.loss), rtol=1e-14)
    np.testing.assert_array_equal(np.asarray(masked.loss)[~keep], 0.0)
    np.testing.assert_allclose(np.asarray(masked.counts), np.asarray(sliced.counts))
    np.testing.assert_allclose(float(masked.perplexity), float(sliced.perplexity), rtol=1e-14)


_jit_ema = jax.jit(vq_ema_update)


def test_ema_update_matches_numpy_over_steps(rng):
    k, d = 5, 3
    e0 = rng.normal(size=(k, d))
    state = vq_ema_init(jnp.asarray(e0))
    assert isinstance(state, VQEMAState) and int(state.step) == 0
    counts, sums, usage = np.ones(k), e0.copy(), np.zeros(k)
    for step in range(3):
        z = rng.normal(size=(16, d))
        idx = rng.integers(-1, k - 1, 16)  # code k-1 unused, some rows masked (-1)
        state, codes = _jit_ema(state, jnp.asarray(z), jnp.asarray(idx), decay=0.9, smoothing=1e-3)
        counts, sums, usage, ref_codes = _np_ema(counts, sums, usage, z, idx, k, 0.9, 1e-3)
        np.testing.assert_allclose(np.asarray(state.counts), counts, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(state.sums), sums, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(state.usage), usage, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(codes), ref_codes, rtol=1e-12)
        assert int(state.step) == step + 1


_jit_ema_hyp = jax.jit(lambda s, z, i, g: vq_ema_update(s, z, i, decay=g, smoothing=1e-5))


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), gamma=st.floats(0.0, 0.999))
def test_ema_conserves_counts(seed, gamma):
    # Σ n_k ← γ Σ n_k + (1 − γ)·(number of counted rows); usage stays a probability vector.
    rng = np.random.default_rng(seed)
    state = vq_ema_init(jnp.asarray(rng.normal(size=(6, 2))))
    state = state._replace(counts=jnp.asarray(rng.uniform(0.0, 5.0, 6)), usage=jnp.full(6, 1 / 6))
    idx = rng.integers(-1, 6, 20)
    new, codes = _jit_ema_hyp(state, jnp.asarray(rng.normal(size=(20, 2))), jnp.asarray(idx), gamma)
    expected = gamma * float(jnp.sum(state.counts)) + (1 - gamma) * (idx >= 0).sum()
    np.testing.assert_allclose(float(jnp.sum(new.counts)), expected, rtol=1e-12)
    np.testing.assert_allclose(float(jnp.sum(new.usage)), 1.0, rtol=1e-12)
    assert np.isfinite(np.asarray(codes)).all()


def test_cvq_alpha_table_and_closest_anchor(rng):
    k, gamma = 4, 0.99
    usage = np.array([0.0, 1e-5, 1e-3, 0.25])
    z = rng.normal(size=(10, 3))
    e = rng.normal(size=(k, 3))
    idx = np.full(10, 3)  # only code 3 is used in this batch
    idx[:3] = -1  # padding rows: not counted, never anchors
    res = cvq_reanchor(jnp.asarray(e), jnp.asarray(usage), jnp.asarray(z), jnp.asarray(idx), anchor="closest", decay=gamma)
    assert isinstance(res, CVQResult)
    p = gamma * usage + (1 - gamma) * np.array([0, 0, 0, 1.0])
    alpha = np.exp(-10 * k * p / (1 - gamma) - 1e-3)
    np.testing.assert_allclose(np.asarray(res.usage), p, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.alpha), alpha, rtol=1e-12)
    # Table: a dead code re-anchors (α = e^-0.001), a rarely used one partly, a used one not at all.
    np.testing.assert_allclose(np.asarray(res.alpha)[0], np.exp(-1e-3), rtol=1e-12)
    assert 0.01 < float(res.alpha[1]) < 0.999 and float(res.alpha[3]) < 1e-100
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    en = e / np.linalg.norm(e, axis=1, keepdims=True)
    anchors = z[3:][(zn[3:] @ en.T).argmax(0)]
    np.testing.assert_allclose(np.asarray(res.anchors), anchors, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.codebook), (1 - alpha)[:, None] * e + alpha[:, None] * anchors, rtol=1e-12)
    l2 = cvq_reanchor(jnp.asarray(e), jnp.asarray(usage), jnp.asarray(z), jnp.asarray(idx), anchor="closest", similarity="l2")
    nearest = z[3:][((z[3:, None] - e[None]) ** 2).sum(-1).argmin(0)]
    np.testing.assert_allclose(np.asarray(l2.anchors), nearest, rtol=1e-12)


def test_cvq_probrandom_samples_softmax(rng):
    z = rng.normal(size=(5, 2))
    e = rng.normal(size=(1, 2))
    draw = jax.jit(jax.vmap(lambda key: cvq_reanchor(jnp.asarray(e), jnp.zeros(1), jnp.asarray(z), jnp.zeros(5, jnp.int32), key=key).anchors[0]))
    anchors = np.asarray(draw(jax.random.split(jax.random.key(1), 4000)))
    picked = (np.abs(anchors[:, None, :] - z[None]).sum(-1) < 1e-12).argmax(1)
    freq = np.bincount(picked, minlength=5) / 4000
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    en = e[0] / np.linalg.norm(e[0])
    prob = np.exp(zn @ en) / np.exp(zn @ en).sum()
    # 4000 draws: binomial standard error <= 0.008 per entry; 0.035 is over 4 sigma.
    np.testing.assert_allclose(freq, prob, atol=0.035)


def _np_cvq_contrastive(z, e, tau, similarity):
    """CVQ reference: sort similarities over the batch; positive = mean of the top n/k."""
    if similarity == "cosine":
        s = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (e / np.linalg.norm(e, axis=1, keepdims=True)).T
    else:
        s = -((z[:, None] - e[None]) ** 2).sum(-1)
    n, k = s.shape
    out = []
    for c in range(k):
        col = np.sort(s[:, c])
        pos = col[n - max(1, n // k) :].mean()
        logits = np.concatenate([[pos], col[: n // 2]]) / tau
        out.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[0])
    return np.array(out)


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_cvq_contrastive_matches_numpy_and_gradients(rng, similarity):
    z, e = rng.normal(size=(11, 3)), rng.normal(size=(3, 3))
    fn = jax.jit(lambda z, e: cvq_contrastive_loss(z, e, temperature=0.5, similarity=similarity))
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(z), jnp.asarray(e))), _np_cvq_contrastive(z, e, 0.5, similarity), rtol=1e-12)
    check_grads(lambda z, e: jnp.sum(fn(z, e)), (jnp.asarray(z), jnp.asarray(e)), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def test_shard_map_equals_single_device(rng):
    z = jnp.asarray(rng.normal(size=(32, 3)))
    e = jnp.asarray(rng.normal(size=(6, 3)))
    state = vq_ema_init(e)

    def step(z, e, state, axis_name=None):
        vq = vector_quantize(z, e, axis_name=axis_name)
        new, codes = vq_ema_update(state, z, vq.indices, axis_name=axis_name)
        cvq = cvq_reanchor(codes, new.usage, z, vq.indices, anchor="closest", axis_name=axis_name)
        return vq.indices, vq.loss, vq.counts, vq.perplexity, new, codes, cvq

    single = jax.jit(step)(z, e, state)
    mesh = _mesh()
    zs = jax.device_put(z, NamedSharding(mesh, P("data")))
    specs = (P("data"), P("data"), P(), P(), P(), P(), P())
    mapped = jax.jit(
        jax.shard_map(lambda z, e, s: step(z, e, s, axis_name="data"), mesh=mesh, in_specs=(P("data"), P(), P()), out_specs=specs)
    )(zs, e, state)
    on_sharded = jax.jit(step)(zs, e, state)
    for out in (mapped, on_sharded):
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(single)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    # probrandom under shard_map: anchors are batch rows and the result is finite.
    key = jax.random.key(3)
    rnd = jax.jit(
        jax.shard_map(
            lambda z, e: cvq_reanchor(e, jnp.zeros(6), z, jnp.zeros(z.shape[0], jnp.int32), key=key, axis_name="data").anchors,
            mesh=mesh, in_specs=(P("data"), P()), out_specs=P(),
        )
    )(zs, e)
    dist = np.abs(np.asarray(rnd)[:, None] - np.asarray(z)[None]).sum(-1).min(1)
    np.testing.assert_array_equal(dist, 0.0)


class TestBadInput:
    z = jnp.ones((4, 2))
    e = jnp.ones((3, 2))

    def test_dims(self):
        with pytest.raises(ValueError, match=r"codebook must have shape \[k, d\] with d=2 to match z, got shape \(3, 5\)"):
            vector_quantize(self.z, jnp.ones((3, 5)))

    def test_similarity_and_anchor(self):
        with pytest.raises(ValueError, match=r"similarity must be one of \['l2', 'cosine'\]"):
            vector_quantize(self.z, self.e, similarity="dot")
        with pytest.raises(ValueError, match=r"anchor must be one of"):
            cvq_reanchor(self.e, jnp.zeros(3), self.z, jnp.zeros(4, jnp.int32), anchor="random")
        with pytest.raises(ValueError, match='key must be a PRNG key when anchor="probrandom"'):
            cvq_reanchor(self.e, jnp.zeros(3), self.z, jnp.zeros(4, jnp.int32))

    def test_where(self):
        with pytest.raises(TypeError, match="where must be a boolean mask"):
            vector_quantize(self.z, self.e, where=jnp.ones(4))

    def test_decay(self):
        state = vq_ema_init(self.e)
        with pytest.raises(ValueError, match=r"decay must be a scalar in \[0, 1\), got 1.0"):
            vq_ema_update(state, self.z, jnp.zeros(4, jnp.int32), decay=1.0)

    def test_state_and_indices(self):
        with pytest.raises(TypeError, match="state must be a VQEMAState"):
            vq_ema_update((1, 2), self.z, jnp.zeros(4, jnp.int32))
        with pytest.raises(TypeError, match="indices must have an integer dtype"):
            vq_ema_update(vq_ema_init(self.e), self.z, jnp.zeros(4))
        with pytest.raises(ValueError, match="usage must have shape"):
            cvq_reanchor(self.e, jnp.zeros(2), self.z, jnp.zeros(4, jnp.int32), anchor="closest")
