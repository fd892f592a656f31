"""Tests for jaxclust.data.make_multivector_retrieval."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.data import MultiVectorRetrieval, make_multivector_retrieval

KW = dict(num_docs=40, num_queries=12, min_doc_len=5, max_doc_len=20, query_len=6, dim=16)


def test_shapes_masks_norms_and_determinism():
    data = make_multivector_retrieval(key=jax.random.key(0), **KW)
    assert isinstance(data, MultiVectorRetrieval)
    docs, dmask = np.asarray(data.documents), np.asarray(data.doc_mask)
    assert docs.shape == (40, 20, 16) and docs.dtype == np.float32
    assert data.queries.shape == (12, 6, 16) and np.asarray(data.query_mask).all()
    lengths = dmask.sum(1)
    assert lengths.min() >= 5 and lengths.max() <= 20
    np.testing.assert_array_equal(dmask, np.arange(20)[None, :] < lengths[:, None])  # prefixes
    np.testing.assert_allclose(np.linalg.norm(docs[dmask], axis=1), 1.0, rtol=1e-5)
    assert (docs[~dmask] == 0).all()
    np.testing.assert_allclose(np.linalg.norm(np.asarray(data.queries), axis=2), 1.0, rtol=1e-5)
    again = make_multivector_retrieval(key=jax.random.key(0), **KW)
    for a, b in zip(data, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = make_multivector_retrieval(key=jax.random.key(1), **KW)
    assert not np.array_equal(np.asarray(other.documents), docs)


def test_queries_are_noisy_copies_of_their_relevant_document():
    data = make_multivector_retrieval(key=jax.random.key(2), **KW)
    docs, dmask = np.asarray(data.documents, np.float64), np.asarray(data.doc_mask)
    q = np.asarray(data.queries, np.float64)
    scores = np.zeros((12, 40))
    for a in range(12):
        for b in range(40):
            sims = q[a] @ docs[b][dmask[b]].T
            scores[a, b] = sims.max(1).sum()
    # The planted document is the brute-force MaxSim winner for (almost) every query.
    assert np.mean(scores.argmax(1) == np.asarray(data.relevant)) >= 0.9
    assert data.relevant.dtype == jnp.int32


class TestBadInput:
    def test_lengths(self):
        with pytest.raises(ValueError, match="min_doc_len must be <= max_doc_len"):
            make_multivector_retrieval(key=jax.random.key(0), min_doc_len=9, max_doc_len=4)

    def test_key(self):
        with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
            make_multivector_retrieval(key=0)

    def test_noise(self):
        with pytest.raises(ValueError, match="query_noise must be a finite number >= 0"):
            make_multivector_retrieval(key=jax.random.key(0), query_noise=-1.0)

    def test_sizes(self):
        with pytest.raises(ValueError, match="num_docs must be >= 1"):
            make_multivector_retrieval(key=jax.random.key(0), num_docs=0)
