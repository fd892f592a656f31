"""Gaussian-mixture EM benchmark: jaxclust.cluster.gmm vs sklearn.mixture.GaussianMixture.

Both start from the same weights, means and precisions (``GMMParams`` / scikit-learn's
``*_init``) and run the same number of EM iterations (``tol=0``), in float32, so the work is
identical and the ratio is a like-for-like speed comparison. The final mean log-likelihood of each
is printed too, so a faster but wrong result would show.

  .venv/bin/python -m experiments.benchmarks.gmm            # 20k x 16, k=16, full and diag
  .venv/bin/python -m experiments.benchmarks.gmm --quick    # 5k x 8, k=8 (smoke test)
"""

from __future__ import annotations

import argparse
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust
from experiments.benchmarks.common import interleaved_best, machine, print_table


def _problems(quick: bool):
    n, d, k = (5_000, 8, 8) if quick else (20_000, 16, 16)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, 1, d))
    labels = rng.integers(0, k, n)
    x = centres[labels] + rng.normal(size=(n, d)) * scales[labels, 0]
    yield f"blobs {n}x{d}", x.astype(np.float32), k


def _precisions(covariance_type: str, k: int, d: int, scale: float) -> np.ndarray:
    p = 1.0 / scale
    return {
        "full": np.stack([np.eye(d) * p] * k),
        "tied": np.eye(d) * p,
        "diag": np.full((k, d), p),
        "spherical": np.full(k, p),
    }[covariance_type].astype(np.float32)


def run(quick: bool = False, steps: int = 20, repeats: int = 3) -> list[dict]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    rows = []
    for name, x, k in _problems(quick):
        n, d = x.shape
        means = x[np.random.default_rng(1).choice(n, k, replace=False)]
        weights = np.full(k, 1.0 / k, np.float32)
        for covariance_type in ("full", "diag"):
            precisions = _precisions(covariance_type, k, d, float(x.var(0).mean()))
            params = jaxclust.cluster.GMMParams(
                jnp.asarray(weights), jnp.asarray(means), jnp.asarray(precisions)
            )
            xj = jnp.asarray(x)
            ours_fn = jax.jit(functools.partial(
                jaxclust.cluster.gmm, k=k, covariance_type=covariance_type, tol=0.0,
                max_steps=steps,
            ))

            def sk(covariance_type=covariance_type, precisions=precisions):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    return GaussianMixture(
                        k, covariance_type=covariance_type, tol=0.0, max_iter=steps,
                        weights_init=weights, means_init=means, precisions_init=precisions,
                        init_params="random_from_data",
                    ).fit(x)

            solvers = {
                "jaxclust": (lambda: ours_fn(xj, init=params), lambda r: float(r.log_likelihood)),
                "sklearn": (sk, lambda r: float(r.score(x))),
            }
            times = interleaved_best({s: fn for s, (fn, _) in solvers.items()}, repeats)
            for solver, (fn, score) in solvers.items():
                rows.append(dict(
                    problem=f"{name}, k={k}, {covariance_type}", solver=solver, steps=steps,
                    seconds=times[solver], ratio=times[solver] / times["jaxclust"],
                    log_likelihood=score(fn()),
                ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    rows = run(quick=args.quick, steps=args.steps)
    print_table(rows, ["problem", "solver", "steps", "seconds", "ratio", "log_likelihood"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")


if __name__ == "__main__":
    main()
