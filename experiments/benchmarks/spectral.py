"""Spectral clustering benchmark: jaxclust vs scikit-learn's SpectralClustering on the same data.

Both run the whole pipeline (affinity, eigenvectors, k-means with ``n_init=10``) on the same
points with the same affinity parameters; scikit-learn uses its default ARPACK solver (and LOBPCG
as a second row), jaxclust its ``eigen_solver="auto"`` (dense ``eigh`` up to n=300, LOBPCG
above). Adjusted Rand indices against the true labels and between the two libraries are printed
so that a faster but different answer would show.

  .venv/bin/python -m experiments.benchmarks.spectral            # n=2000, 10000 (kNN); rbf n=2000
  .venv/bin/python -m experiments.benchmarks.spectral --quick    # small sizes (smoke test)
"""

from __future__ import annotations

import argparse
import functools
import warnings

import jax
import numpy as np

import jaxclust
from experiments.benchmarks.common import interleaved_best, machine, print_table


def _problems(quick: bool):
    sizes = [500, 1000] if quick else [2000, 10_000]
    for n in sizes:
        ds = jaxclust.data.make_moons(key=jax.random.key(0), n=n, noise=0.05)
        yield f"moons n={n}", np.asarray(ds.x), np.asarray(ds.y), 2, "nearest_neighbors", {}
    n = sizes[0]
    ds = jaxclust.data.make_blobs(key=jax.random.key(1), n=n, k=5, d=8, cluster_std=1.5)
    yield f"blobs n={n} d=8", np.asarray(ds.x), np.asarray(ds.y), 5, "rbf", {"gamma": 0.05}


def run(quick: bool = False, repeats: int = 3) -> list[dict]:
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics import adjusted_rand_score

    rows = []
    for name, x, y, k, affinity, params in _problems(quick):
        ours_fn = jax.jit(functools.partial(
            jaxclust.cluster.spectral_clustering, k=k, affinity=affinity, n_init=10, **params
        ))
        xj = jax.device_put(x)

        def ours():
            return ours_fn(xj, key=jax.random.key(0)).labels

        def sk(solver):
            model = SpectralClustering(
                k, affinity=affinity, eigen_solver=solver, n_init=10, random_state=0, **params
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "graph is not fully connected"
                return model.fit(x).labels_

        solvers = {
            "jaxclust": ours,
            "sklearn arpack": functools.partial(sk, "arpack"),
            "sklearn lobpcg": functools.partial(sk, "lobpcg"),
        }
        times = interleaved_best(solvers, repeats)
        labels = {s: np.asarray(fn()) for s, fn in solvers.items()}
        for solver in solvers:
            rows.append(dict(
                problem=f"{name}, {affinity}, k={k}", solver=solver, seconds=times[solver],
                ratio=times[solver] / times["jaxclust"],
                ari_truth=adjusted_rand_score(y, labels[solver]),
                ari_vs_jaxclust=adjusted_rand_score(labels["jaxclust"], labels[solver]),
            ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    rows = run(quick=args.quick, repeats=args.repeats)
    print_table(rows, ["problem", "solver", "seconds", "ratio", "ari_truth", "ari_vs_jaxclust"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")


if __name__ == "__main__":
    main()
