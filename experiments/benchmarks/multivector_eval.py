"""Retrieval quality vs storage of multi-vector compression on a planted benchmark.

On ``jaxclust.data.make_multivector_retrieval`` (queries are noisy copies of tokens of one known
document), compares recall@10 of exhaustive MaxSim on

- the full token vectors (the reference; float16 storage is counted, 2 bytes per number);
- token-pooled documents, Ward, pool factors 2, 3, 4 (METHODS.md §5.2);
- ColBERTv2 residual compression with 1, 2, 4 bits per dimension (§5.3);
- MUVERA: top candidates by FDE inner product, then exact MaxSim re-ranking (§5.4), and the FDE
  ranking alone.

"rel. loss" is ``1 − recall / recall(full)``; "bytes/doc" is the stored size per document
(pooled: fewer float16 vectors; compressed: residual bytes + a 4-byte centroid id per vector;
FDE: the float32 encoding, searched before re-ranking against the full vectors).

  .venv/bin/python -m experiments.benchmarks.multivector_eval
  .venv/bin/python -m experiments.benchmarks.multivector_eval --query-noise 1.0 --query-len 8  # easier
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust
from experiments.benchmarks.common import machine, print_table
from jaxclust import multivector as mv


def recall_at(scores, relevant, k=10):
    top = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(relevant)[:, None], axis=1)))


def run(args) -> list[dict]:
    data = jaxclust.data.make_multivector_retrieval(
        key=jax.random.key(args.seed), num_docs=args.num_docs, num_queries=args.num_queries,
        min_doc_len=args.min_len, max_doc_len=args.max_len, query_len=args.query_len,
        dim=args.dim, vocab_size=args.vocab, topics_per_doc=args.topics,
        token_noise=args.token_noise, query_noise=args.query_noise,
    )
    docs, dmask, q, qmask, rel = data
    d = docs.shape[2]
    n_vectors = float(jnp.sum(dmask)) / args.num_docs
    score = jax.jit(lambda docs, dmask: mv.maxsim(q, qmask, docs, dmask, block_size=256))
    rows = []
    base = recall_at(score(docs, dmask), rel)

    def add(method, recall, vectors, bytes_per_doc):
        rows.append(dict(method=method, recall_at_10=recall, rel_loss=1 - recall / base,
                         vectors_per_doc=vectors, bytes_per_doc=bytes_per_doc))

    add("MaxSim, full (fp16)", base, n_vectors, n_vectors * d * 2)

    for factor in (2, 3, 4):
        pool = jax.jit(lambda x, m, f=factor: jax.lax.map(
            lambda a: mv.token_pool(a[0], a[1], pool_factor=f), (x, m), batch_size=16))
        pooled = pool(docs, dmask)
        vec = float(jnp.sum(pooled.mask)) / args.num_docs
        add(f"pooled Ward f={factor} (fp16)", recall_at(score(pooled.tokens, pooled.mask), rel),
            vec, vec * d * 2)

    flat = docs[dmask]
    # The codec is fitted on a sample of the corpus' tokens, as ColBERTv2 does.
    sample = flat[jax.random.permutation(jax.random.key(3), flat.shape[0])[: args.codec_sample]]
    for bits in (1, 2, 4):
        codec = mv.fit_codec(sample, bits=bits, key=jax.random.key(1),
                             num_centroids=args.centroids)
        recon = mv.decompress(codec, mv.compress(codec, flat))
        full = jnp.zeros_like(docs).at[dmask].set(recon.astype(docs.dtype))
        add(f"residual {bits}-bit, {codec.centroids.shape[0]} centroids",
            recall_at(score(full, dmask), rel), n_vectors, n_vectors * mv.bytes_per_vector(codec))

    kw = dict(key=jax.random.key(2), num_simhash=args.simhash, num_repetitions=args.reps,
              dim_proj=args.dim_proj)
    fq = jax.jit(jax.vmap(lambda x, m: mv.fde_query(x, m, **kw)))(q, qmask)
    fd = jax.jit(jax.vmap(lambda x, m: mv.fde_document(x, m, **kw)))(docs, dmask)
    fde_scores = np.asarray(fq @ fd.T)
    fde_bytes = fd.shape[1] * 4
    add(f"FDE only ({fd.shape[1]} dims, fp32)", recall_at(fde_scores, rel), 1, fde_bytes)
    cand = np.argsort(-fde_scores, axis=1, kind="stable")[:, : args.candidates]
    exact = np.full(fde_scores.shape, -np.inf)
    for i in range(len(cand)):
        s = mv.maxsim(q[i : i + 1], qmask[i : i + 1], docs[cand[i]], dmask[cand[i]])
        exact[i, cand[i]] = np.asarray(s[0])
    add(f"FDE top-{args.candidates} + MaxSim rerank", recall_at(exact, rel), n_vectors,
        fde_bytes + n_vectors * d * 2)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-docs", type=int, default=1000)
    parser.add_argument("--num-queries", type=int, default=200)
    parser.add_argument("--min-len", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--query-len", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=128)
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--token-noise", type=float, default=0.8)
    parser.add_argument("--query-noise", type=float, default=1.5)
    parser.add_argument("--simhash", type=int, default=4)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--dim-proj", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--centroids", type=int, default=512,
                        help="codec size (ColBERTv2 would use 2^floor(log2(16 sqrt(n))))")
    parser.add_argument("--codec-sample", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine())
    print(f"planted retrieval: {args.num_docs} docs of {args.min_len}-{args.max_len} tokens, "
          f"{args.num_queries} queries of {args.query_len} tokens, d={args.dim}")
    rows = run(args)
    print_table(rows, ["method", "recall_at_10", "rel_loss", "vectors_per_doc", "bytes_per_doc"])


if __name__ == "__main__":
    main()
