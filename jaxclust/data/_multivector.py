"""A planted multi-vector retrieval problem: documents of token vectors and queries whose relevant
document is known by construction."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._checks import check_nonnegative_scalar, check_positive_int
from .._typing import KeyArray, ScalarLike
from ._synthetic import _check_key

__all__ = ["MultiVectorRetrieval", "make_multivector_retrieval"]


class MultiVectorRetrieval(NamedTuple):
    """Output of :func:`make_multivector_retrieval`.

    Attributes:
      documents: unit-norm document tokens, float32 [m, td, d], zero rows past each length.
      doc_mask: valid document tokens, boolean [m, td] (a prefix of each row).
      queries: unit-norm query tokens, float32 [q, tq, d].
      query_mask: valid query tokens, boolean [q, tq] (all True).
      relevant: index of each query's relevant document, int32 [q].
    """

    documents: Float[Array, "m td d"]
    doc_mask: Bool[Array, "m td"]
    queries: Float[Array, "q tq d"]
    query_mask: Bool[Array, "q tq"]
    relevant: Int[Array, " q"]


def _unit(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def make_multivector_retrieval(
    *,
    key: KeyArray,
    num_docs: int = 1000,
    num_queries: int = 100,
    min_doc_len: int = 32,
    max_doc_len: int = 128,
    query_len: int = 16,
    dim: int = 64,
    vocab_size: int = 512,
    topics_per_doc: int = 12,
    token_noise: ScalarLike = 0.35,
    query_noise: ScalarLike = 0.35,
) -> MultiVectorRetrieval:
    """Random documents of token vectors and queries built from noisy copies of their tokens.

    A global vocabulary of ``vocab_size`` random unit "topics" is shared by all documents, so
    documents overlap and retrieval is not trivial. Each document draws ``topics_per_doc``
    topics and a length in ``[min_doc_len, max_doc_len]``; each of its tokens is a random one
    of its topics plus Gaussian noise of scale ``token_noise / √dim`` per coordinate,
    normalised. Tokens repeat topics, so a document has redundant tokens (what token pooling
    removes). Each query picks a relevant document uniformly at random and ``query_len`` of its
    valid tokens (with replacement), adds noise ``query_noise / √dim`` and normalises. All
    draws come from ``key``: the result is deterministic.

    Args:
      key: PRNG key.
      num_docs: ``m`` documents (static).
      num_queries: ``q`` queries (static).
      min_doc_len: shortest document (static), ``>= 1``.
      max_doc_len: longest document and padded length ``td`` (static).
      query_len: tokens per query ``tq`` (static).
      dim: embedding dimension ``d`` (static).
      vocab_size: number of shared topics (static).
      topics_per_doc: topics per document (static).
      token_noise: noise of document tokens around their topic (relative to unit norm).
      query_noise: noise of query tokens around the copied document token.

    Returns:
      A :class:`MultiVectorRetrieval` ``(documents, doc_mask, queries, query_mask, relevant)``.

    Raises:
      TypeError: if ``key`` is not a PRNG key or a size is not an int.
      ValueError: if a size is < 1, ``min_doc_len > max_doc_len`` or a noise level is negative.

    Examples:
      >>> import jax
      >>> from jaxclust.data import make_multivector_retrieval
      >>> data = make_multivector_retrieval(key=jax.random.key(0), num_docs=20, num_queries=5,
      ...                                   min_doc_len=4, max_doc_len=8, query_len=3, dim=16)
      >>> data.documents.shape, data.queries.shape, data.relevant.shape
      ((20, 8, 16), (5, 3, 16), (5,))
    """
    _check_key(key)
    num_docs = check_positive_int(num_docs, "num_docs")
    num_queries = check_positive_int(num_queries, "num_queries")
    min_doc_len = check_positive_int(min_doc_len, "min_doc_len")
    max_doc_len = check_positive_int(max_doc_len, "max_doc_len")
    if min_doc_len > max_doc_len:
        raise ValueError(
            f"min_doc_len must be <= max_doc_len, got min_doc_len={min_doc_len} and "
            f"max_doc_len={max_doc_len}."
        )
    query_len = check_positive_int(query_len, "query_len")
    dim = check_positive_int(dim, "dim")
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    topics_per_doc = check_positive_int(topics_per_doc, "topics_per_doc")
    check_nonnegative_scalar(token_noise, "token_noise")
    check_nonnegative_scalar(query_noise, "query_noise")

    keys = jax.random.split(key, 8)
    vocab = _unit(jax.random.normal(keys[0], (vocab_size, dim)))
    topics = jax.random.randint(keys[1], (num_docs, topics_per_doc), 0, vocab_size)
    pick = jax.random.randint(keys[2], (num_docs, max_doc_len), 0, topics_per_doc)
    centres = vocab[jnp.take_along_axis(topics, pick, axis=1)]
    scale = 1.0 / jnp.sqrt(jnp.asarray(dim, jnp.float32))
    noise = jax.random.normal(keys[3], (num_docs, max_doc_len, dim))
    docs = _unit(centres + token_noise * scale * noise)
    lengths = jax.random.randint(keys[4], (num_docs,), min_doc_len, max_doc_len + 1)
    doc_mask = jnp.arange(max_doc_len)[None, :] < lengths[:, None]
    docs = jnp.where(doc_mask[:, :, None], docs, 0.0).astype(jnp.float32)

    relevant = jax.random.randint(keys[5], (num_queries,), 0, num_docs).astype(jnp.int32)
    u = jax.random.uniform(keys[6], (num_queries, query_len))
    which = jnp.floor(u * lengths[relevant][:, None]).astype(jnp.int32)
    copied = docs[relevant[:, None], which]
    qnoise = jax.random.normal(keys[7], (num_queries, query_len, dim))
    queries = _unit(copied + query_noise * scale * qnoise).astype(jnp.float32)
    return MultiVectorRetrieval(
        documents=docs,
        doc_mask=doc_mask,
        queries=queries,
        query_mask=jnp.ones((num_queries, query_len), bool),
        relevant=relevant,
    )
