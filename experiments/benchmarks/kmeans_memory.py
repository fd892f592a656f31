"""Bounded memory: k-means on 2M x 64 points with k=4096 on one 24 GiB CPU machine.

The [n, k] distance matrix alone would be 2M x 4096 x 4 B = 32 GiB. jaxclust computes it in
cache-sized row blocks, so peak memory stays near the size of the data. This script runs k-means||
seeding and a few Lloyd iterations and prints the peak resident memory of the process.

  .venv/bin/python -m experiments.benchmarks.kmeans_memory [--n 2000000 --d 64 --k 4096 --steps 2]
"""

from __future__ import annotations

import argparse
import functools
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust
from experiments.benchmarks.common import machine


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--oversampling", type=float, default=0.5)
    args = parser.parse_args()
    print(machine())
    x = jax.random.normal(jax.random.key(0), (args.n, args.d), jnp.float32)
    x = jax.block_until_ready(x + 3.0 * jnp.round(x[:, :1]))  # some structure
    data_gib = x.size * 4 / 2**30
    dense_gib = args.n * args.k * 4 / 2**30
    start = time.perf_counter()
    seeds = jax.jit(
        functools.partial(
            jaxclust.cluster.kmeans_parallel, k=args.k, oversampling=args.oversampling, refine_steps=5
        )
    )(x, key=jax.random.key(1))
    seeds = jax.block_until_ready(seeds)
    seed_s = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.jit(
        functools.partial(jaxclust.cluster.kmeans, k=args.k, max_steps=args.steps, tol=0.0)
    )(x, init=seeds)
    result = jax.block_until_ready(result)
    lloyd_s = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"n={args.n} d={args.d} k={args.k}: data {data_gib:.2f} GiB, a dense distance matrix "
          f"would be {dense_gib:.1f} GiB")
    print(f"k-means|| seeding {seed_s:.1f} s (incl. compile), {int(result.num_steps)} Lloyd steps "
          f"{lloyd_s:.1f} s (incl. compile), inertia {float(result.inertia):.4g}, "
          f"empty clusters {int((np.asarray(result.counts) == 0).sum())}")
    print(f"peak resident memory of the process: {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
