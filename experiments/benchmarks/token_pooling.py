"""Token pooling and MaxSim benchmark: jaxclust vs a per-document SciPy Ward loop and fastcluster.

Token pooling (METHODS.md §5.2, pool factor 2): every document's 256 unit-norm token vectors are
clustered with Ward linkage into ``⌊n/2⌋`` clusters and replaced by the cluster means.

- jaxclust: ``token_pool`` under ``jax.jit``, mapped over documents with
  ``lax.map(batch_size=--batch-size)`` (vmap inside each batch of documents);
- SciPy: a Python loop over documents of ``linkage(x, "ward")`` + ``fcluster(maxclust)`` + means;
- fastcluster (if installed): the same loop with ``fastcluster.linkage_vector(x, "ward")``.

The compiled solver is timed best of ``--repeats`` after one untimed run; each loop runs
``--peer-repeats`` times (default once: at 10,000 documents it takes minutes), interleaved.
All runs pool the same float32 documents (SciPy and fastcluster compute in float64); the fraction
of documents whose partition equals SciPy's is printed, so a fast but wrong result would show.

MaxSim throughput: 16 queries of 32 tokens against all documents. jaxclust ``maxsim`` with its
default step size (cache-sized on CPU), against the plain jitted einsum a user would write and
NumPy's einsum, each run over blocks of ``--block`` documents; ``--maxsim-block`` sets
jaxclust's step size instead (e.g. the same ``--block``, to compare like with like).

  .venv/bin/python -m experiments.benchmarks.token_pooling                   # 10,000 x 256 x 128
  .venv/bin/python -m experiments.benchmarks.token_pooling --num-docs 1000   # smaller
"""

from __future__ import annotations

import argparse
import jax
import jax.numpy as jnp
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

import jaxclust
from experiments.benchmarks.common import interleaved_runs, machine, print_table


def _documents(num_docs, tokens, dim, seed=0):
    data = jaxclust.data.make_multivector_retrieval(
        key=jax.random.key(seed), num_docs=num_docs, num_queries=16, min_doc_len=tokens,
        max_doc_len=tokens, query_len=32, dim=dim, vocab_size=4096, topics_per_doc=64,
    )
    return data


def _pool_numpy(x, n_c, linkage_fn):
    x64 = x.astype(np.float64)
    x64 /= np.linalg.norm(x64, axis=1, keepdims=True)
    labels = fcluster(linkage_fn(x64), n_c, "maxclust") - 1
    counts = np.bincount(labels)
    sums = np.zeros((counts.size, x.shape[1]))
    np.add.at(sums, labels, x)
    return labels, sums / counts[:, None]


def _loop(docs, factor, linkage_fn):
    return [_pool_numpy(x, max(1, len(x) // factor), linkage_fn) for x in docs]


def _same_partitions(ours, ref):
    same = 0
    for a, (b, _) in zip(ours, ref):
        same += np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])
    return same / len(ref)


@jax.jit
def plain_maxsim(q, d):
    """The plain jitted einsum a user would write (no masks, no blocking)."""
    return jnp.einsum("qid,bjd->qbij", q, d).max(-1).sum(-1)


def _pooling_rows(data, factor, batch_size, repeats, peer_repeats):
    docs = np.asarray(data.documents)
    num_docs, tokens, dim = docs.shape
    xj, mask = jnp.asarray(docs), jnp.asarray(data.doc_mask)

    @jax.jit
    def ours(x, m):
        pool = lambda a: jaxclust.multivector.token_pool(a[0], a[1], pool_factor=factor)  # noqa: E731
        return jax.lax.map(pool, (x, m), batch_size=batch_size)

    solvers = {
        "jaxclust": lambda: ours(xj, mask),
        "scipy loop": lambda: _loop(docs, factor, lambda x: linkage(x, "ward")),
    }
    try:
        import fastcluster

        solvers["fastcluster loop"] = lambda: _loop(
            docs, factor, lambda x: fastcluster.linkage_vector(x, "ward")
        )
    except ImportError:
        print("fastcluster not installed: skipped (pip install fastcluster)")
    times, outputs = interleaved_runs(
        solvers, {name: repeats if name == "jaxclust" else peer_repeats for name in solvers},
        warmup=["jaxclust"],
    )
    ref = outputs["scipy loop"]
    rows = []
    for name, out in outputs.items():
        labels = np.asarray(out.labels) if name == "jaxclust" else [lab for lab, _ in out]
        rows.append(dict(
            task=f"pool {num_docs}x{tokens}x{dim}, f={factor}", solver=name,
            seconds=times[name], docs_per_s=num_docs / times[name],
            ratio=times[name] / times["jaxclust"], same_partition=_same_partitions(labels, ref),
        ))
    return rows


def _maxsim_rows(data, repeats, block, maxsim_block):
    docs = np.asarray(data.documents)
    num_docs, tokens, _ = docs.shape
    xj, mask = jnp.asarray(docs), jnp.asarray(data.doc_mask)
    q, qn = jnp.asarray(data.queries), np.asarray(data.queries)
    blocks = [slice(s, min(s + block, num_docs)) for s in range(0, num_docs, block)]
    ours = jax.jit(
        lambda q, x, m: jaxclust.multivector.maxsim(q, None, x, m, block_size=maxsim_block)
    )
    dblocks = [xj[b] for b in blocks]

    def plain():
        return [plain_maxsim(q, d) for d in dblocks]

    def numpy_ms():
        return [np.einsum("qid,bjd->qbij", qn, docs[b], optimize=True).max(-1).sum(-1) for b in blocks]

    solvers = {"jaxclust": lambda: ours(q, xj, mask), "plain JAX": plain, "NumPy": numpy_ms}
    times, outputs = interleaved_runs(solvers, repeats)
    ref = np.concatenate([np.asarray(s) for s in outputs["plain JAX"]], axis=1)
    rows = []
    for name, out in outputs.items():
        got = np.asarray(out) if name == "jaxclust" else np.concatenate([np.asarray(s) for s in out], 1)
        rows.append(dict(
            task=f"maxsim {q.shape[0]}x{q.shape[1]} vs {num_docs}x{tokens}", solver=name,
            seconds=times[name], docs_per_s=num_docs / times[name],
            ratio=times[name] / times["jaxclust"],
            same_partition=f"max|diff| {np.abs(got - ref).max():.1e}",
        ))
    return rows


def run(num_docs, tokens, dim, factor, batch_size, repeats, block, peer_repeats=1,
        maxsim_block=None, tasks=("pool", "maxsim")):
    data = _documents(num_docs, tokens, dim)
    rows = []
    if "pool" in tasks:
        rows += _pooling_rows(data, factor, batch_size, repeats, peer_repeats)
    if "maxsim" in tasks:
        rows += _maxsim_rows(data, repeats, block, maxsim_block)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-docs", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--pool-factor", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="documents per vmapped batch")
    parser.add_argument("--block", type=int, default=1000,
                        help="documents per block of the MaxSim peers")
    parser.add_argument("--maxsim-block", type=int, default=None,
                        help="jaxclust maxsim's documents per step (default: its own choice)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1,
                        help="timed runs of each per-document loop (minutes at 10,000 documents)")
    parser.add_argument("--tasks", default="pool,maxsim", help="comma-separated: pool, maxsim")
    args = parser.parse_args()
    print(machine())
    rows = run(args.num_docs, args.tokens, args.dim, args.pool_factor, args.batch_size,
               args.repeats, min(args.block, args.num_docs), args.peer_repeats, args.maxsim_block,
               tuple(args.tasks.split(",")))
    print_table(rows, ["task", "solver", "seconds", "docs_per_s", "ratio", "same_partition"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")


if __name__ == "__main__":
    main()
