"""Tests for MUVERA FDEs against a NumPy transcription of the construction (METHODS.md §5.4)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import spearmanr

from jaxclust.data import make_multivector_retrieval
from jaxclust.multivector import fde_dimension, fde_document, fde_query, maxsim


def _randomness(key, rep, d, k_sim, dim_proj, projection):
    """The same draws as the library, taken from the documented key schedule."""
    k_hash, k_proj = jax.random.split(jax.random.fold_in(key, rep))
    gauss = np.asarray(jax.random.normal(k_hash, (d, k_sim), jnp.float64))
    if dim_proj is None:
        return gauss, np.eye(d)
    k_sign, k_pos = jax.random.split(k_proj)
    if projection == "dense":
        s = np.asarray(jax.random.rademacher(k_sign, (d, dim_proj), jnp.float64)) / np.sqrt(dim_proj)
    else:
        pos = np.asarray(jax.random.randint(k_pos, (d,), 0, dim_proj))
        sign = np.asarray(jax.random.rademacher(k_sign, (d,), jnp.float64))
        s = np.zeros((d, dim_proj))
        s[np.arange(d), pos] = sign
    return gauss, s


def _numpy_fde(x, mask, key, k_sim, reps, dim_proj, projection, query, fill=True):
    x = x[mask]
    d = x.shape[1]
    out = []
    for r in range(reps):
        gauss, s = _randomness(key, r, d, k_sim, dim_proj, projection)
        bits = (x @ gauss > 0).astype(int)
        code = [int(sum(b << i for i, b in enumerate(row))) for row in bits]
        psi = x @ s
        for k in range(2**k_sim):
            members = [i for i in range(len(x)) if code[i] == k]
            if query:
                block = psi[members].sum(0) if members else np.zeros(psi.shape[1])
            elif members:
                block = psi[members].mean(0)
            elif fill and len(x):
                pattern = [(k >> i) & 1 for i in range(k_sim)]
                ham = [sum(int(bits[i, j] != pattern[j]) for j in range(k_sim)) for i in range(len(x))]
                block = psi[int(np.argmin(ham))]
            else:
                block = np.zeros(psi.shape[1])
            out.append(block)
    return np.concatenate(out)


@pytest.mark.parametrize("projection,dim_proj", [("dense", 4), ("sparse", 5), ("dense", None)])
def test_matches_numpy_transcription(projection, dim_proj):
    rng = np.random.default_rng(0)
    key = jax.random.key(3)
    x = rng.normal(size=(12, 6))
    mask = np.arange(12) < 9
    kw = dict(key=key, num_simhash=3, num_repetitions=2, dim_proj=dim_proj, projection=projection)
    fq = fde_query(jnp.asarray(x), jnp.asarray(mask), **kw)
    fd = jax.jit(lambda x, m: fde_document(x, m, **kw))(jnp.asarray(x), jnp.asarray(mask))
    assert fq.shape == (fde_dimension(6, num_simhash=3, num_repetitions=2, dim_proj=dim_proj),)
    np.testing.assert_allclose(np.asarray(fq), _numpy_fde(x, mask, key, 3, 2, dim_proj, projection, True), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(fd), _numpy_fde(x, mask, key, 3, 2, dim_proj, projection, False), rtol=1e-12, atol=1e-12)
    nofill = fde_document(jnp.asarray(x), jnp.asarray(mask), fill_empty=False, **kw)
    np.testing.assert_allclose(np.asarray(nofill), _numpy_fde(x, mask, key, 3, 2, dim_proj, projection, False, fill=False), rtol=1e-12, atol=1e-12)
    # Masked tokens are excluded: equal to the sliced set.
    np.testing.assert_allclose(np.asarray(fde_query(jnp.asarray(x[:9]), **kw)), np.asarray(fq), rtol=1e-12)


def test_identity_case_is_sum_dot_mean():
    rng = np.random.default_rng(1)
    q, d = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    key = jax.random.key(0)
    fq = fde_query(jnp.asarray(q), key=key, num_simhash=0)
    fd = fde_document(jnp.asarray(d), key=key, num_simhash=0)
    assert float(fq @ fd) == pytest.approx(q.sum(0) @ d.mean(0), rel=1e-12)


def test_final_projection_is_a_count_sketch():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 4))
    key = jax.random.key(5)
    kw = dict(key=key, num_simhash=2, num_repetitions=3)
    full = np.asarray(fde_document(jnp.asarray(x), **kw))
    sketched = np.asarray(fde_document(jnp.asarray(x), final_dim=7, **kw))
    k_pos, k_sign = jax.random.split(jax.random.fold_in(key, 3))
    pos = np.asarray(jax.random.randint(k_pos, full.shape, 0, 7))
    sign = np.asarray(jax.random.rademacher(k_sign, full.shape, jnp.float64))
    ref = np.zeros(7)
    np.add.at(ref, pos, sign * full)
    np.testing.assert_allclose(sketched, ref, rtol=1e-12, atol=1e-12)


def test_fde_scores_track_chamfer_better_with_more_repetitions():
    data = make_multivector_retrieval(key=jax.random.key(0), num_docs=40, num_queries=4,
                                      min_doc_len=8, max_doc_len=12, query_len=6, dim=8)
    chamfer = np.asarray(maxsim(data.queries, data.query_mask, data.documents, data.doc_mask))
    key = jax.random.key(1)

    def corr(reps):
        kw = dict(key=key, num_simhash=3, num_repetitions=reps)
        fq = jax.vmap(lambda x, m: fde_query(x, m, **kw))(data.queries, data.query_mask)
        fd = jax.vmap(lambda x, m: fde_document(x, m, **kw))(data.documents, data.doc_mask)
        approx = np.asarray(fq @ fd.T)
        return np.mean([spearmanr(approx[i], chamfer[i])[0] for i in range(len(chamfer))])

    low, high = corr(1), corr(12)
    assert high > low and high > 0.6


class TestBadInput:
    def test_missing_key(self):
        with pytest.raises(ValueError, match="key is required"):
            fde_query(jnp.ones((3, 2)), key=None)

    def test_projection(self):
        with pytest.raises(ValueError, match="projection must be one of"):
            fde_document(jnp.ones((3, 2)), key=jax.random.key(0), dim_proj=2, projection="gaussian")

    def test_mask(self):
        with pytest.raises(ValueError, match="mask and tokens must have the same length"):
            fde_query(jnp.ones((3, 2)), jnp.ones(2, bool), key=jax.random.key(0))

    def test_sizes(self):
        with pytest.raises(ValueError, match="num_repetitions must be >= 1"):
            fde_query(jnp.ones((3, 2)), key=jax.random.key(0), num_repetitions=0)
        with pytest.raises(TypeError, match="tokens must have a floating-point dtype"):
            fde_query(jnp.ones((3, 2), jnp.int32), key=jax.random.key(0))
