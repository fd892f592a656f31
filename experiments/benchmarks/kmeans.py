"""k-means benchmark: jaxclust vs scikit-learn, faiss-cpu, ott-jax and a plain jitted JAX loop.

Every solver starts from the same initial centres and runs the same number of Lloyd iterations
(``tol=0``), so the work is identical and the ratio is a like-for-like speed comparison. The
inertia of each is printed too, so a faster but wrong result would show.

  .venv/bin/python -m experiments.benchmarks.kmeans            # mnist5k; 100k x 64, k=256
                                                               # (+ 1M x 128, k=1024 on a GPU)
  .venv/bin/python -m experiments.benchmarks.kmeans --quick    # small sizes (smoke test)
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust
from experiments.benchmarks.common import interleaved_best, machine, print_table


def _problems(quick: bool):
    mnist = jaxclust.data.load("mnist5k").x
    yield "mnist5k", mnist, 10
    sizes = [(20_000, 32, 64)] if quick else [(100_000, 64, 256)]
    if jax.default_backend() != "cpu" and not quick:
        sizes.append((1_000_000, 128, 1024))
    for n, d, k in sizes:
        rng = np.random.default_rng(0)
        centres = rng.normal(scale=4.0, size=(k, d)).astype(np.float32)
        x = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)).astype(np.float32)
        yield f"blobs {n}x{d}", x, k


@functools.partial(jax.jit, static_argnums=2)
def plain_jax_lloyd(x, centres, steps: int):
    """The straightforward jitted Lloyd loop a user would write: the baseline to beat."""
    k = centres.shape[0]

    def body(_, c):
        d = jnp.sum(x * x, 1)[:, None] - 2 * x @ c.T + jnp.sum(c * c, 1)[None, :]
        labels = jnp.argmin(d, axis=1)
        sums = jax.ops.segment_sum(x, labels, num_segments=k)
        counts = jax.ops.segment_sum(jnp.ones(x.shape[0], x.dtype), labels, num_segments=k)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], c)

    return jax.lax.fori_loop(0, steps, body, centres)


def _inertia(x, c):
    x64, c64 = x.astype(np.float64), np.asarray(c, np.float64)
    d = (x64**2).sum(1)[:, None] - 2 * x64 @ c64.T + (c64**2).sum(1)[None]
    return float(np.maximum(d, 0).min(1).sum())


def run(quick: bool = False, steps: int = 20, repeats: int = 5) -> list[dict]:
    from ott.geometry import pointcloud
    from ott.tools import k_means as ott_k_means
    from sklearn.cluster import KMeans

    try:
        import faiss
    except ImportError:
        faiss = None

    rows = []
    for name, x, k in _problems(quick):
        init = x[np.random.default_rng(1).choice(len(x), k, replace=False)]
        xj, initj = jnp.asarray(x), jnp.asarray(init)
        ours_fn = jax.jit(functools.partial(jaxclust.cluster.kmeans, k=k, max_steps=steps, tol=0.0))
        ours = jax.block_until_ready(ours_fn(xj, init=initj))
        n_steps = int(ours.num_steps)

        @jax.jit
        def ott_fn(x, init):
            return ott_k_means.k_means(
                pointcloud.PointCloud(x), k, init=lambda geom, k, rng: init,
                min_iterations=n_steps, max_iterations=n_steps, tol=0.0,
            )

        def sk():
            return KMeans(k, init=init, n_init=1, max_iter=steps, tol=0.0, algorithm="lloyd").fit(x)

        def fa():
            km = faiss.Kmeans(x.shape[1], k, niter=n_steps, max_points_per_centroid=10**9,
                              min_points_per_centroid=1, seed=0)
            km.train(x, init_centroids=init)
            return km

        solvers = {
            "jaxclust": (lambda: ours_fn(xj, init=initj), lambda r: r.centroids),
            "plain JAX": (lambda: plain_jax_lloyd(xj, initj, n_steps), lambda r: r),
            "sklearn": (sk, lambda r: r.cluster_centers_),
            "ott-jax": (lambda: ott_fn(xj, initj), lambda r: r.centroids),
        }
        if faiss is not None:
            solvers["faiss-cpu"] = (fa, lambda r: r.centroids)
        times = interleaved_best({s: fn for s, (fn, _) in solvers.items()}, repeats)
        for solver, (fn, centres) in solvers.items():
            rows.append(dict(
                problem=f"{name}, k={k}", solver=solver, steps=n_steps, seconds=times[solver],
                ratio=times[solver] / times["jaxclust"], inertia=_inertia(x, centres(fn())),
            ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    rows = run(quick=args.quick, steps=args.steps)
    print_table(rows, ["problem", "solver", "steps", "seconds", "ratio", "inertia"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")


if __name__ == "__main__":
    main()
