"""NMF benchmark: jaxclust ``nmf`` vs scikit-learn ``NMF(solver="mu")`` (multiplicative updates).

Both start from the same strictly positive ``W₀, H₀`` and run the same number of updates
(``tol=0``) in float32, so the work is identical; each solver's reconstruction error
``‖X − WH‖_F`` (Frobenius) or ``√(2·KL)`` is printed, so a fast but wrong result would show.

  .venv/bin/python -m experiments.benchmarks.nmf           # mnist5k r=16; 20000 x 500 r=32
  .venv/bin/python -m experiments.benchmarks.nmf --quick   # small sizes
"""

from __future__ import annotations

import argparse
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust
from experiments.benchmarks.common import interleaved_runs, machine, print_table


def _problems(quick: bool):
    mnist = np.asarray(jaxclust.data.load("mnist5k").x, np.float32)
    yield "mnist5k 5000x784", (mnist[:1000] if quick else mnist), 16
    n, m, r = (2000, 200, 8) if quick else (20_000, 500, 32)
    rng = np.random.default_rng(0)
    # a non-negative low-rank matrix plus noise, with half of the entries zero (sparse counts)
    x = rng.gamma(0.5, 1.0, (n, r)) @ rng.gamma(0.5, 1.0, (r, m))
    x *= rng.random((n, m)) < 0.5
    yield f"low-rank {n}x{m}", x.astype(np.float32), r


def run(quick: bool = False, steps: int = 200, repeats: int = 3) -> list[dict]:
    from sklearn.decomposition import NMF

    rows = []
    for name, x, rank in _problems(quick):
        rng = np.random.default_rng(1)
        scale = np.sqrt(x.mean() / rank)
        w0 = (scale * rng.uniform(0.1, 1.0, (x.shape[0], rank))).astype(np.float32)
        h0 = (scale * rng.uniform(0.1, 1.0, (rank, x.shape[1]))).astype(np.float32)
        xj, w0j, h0j = jnp.asarray(x), jnp.asarray(w0), jnp.asarray(h0)
        for loss in ("frobenius", "kullback-leibler"):
            ours = jax.jit(functools.partial(
                jaxclust.cluster.nmf, rank=rank, loss=loss, max_steps=steps, tol=0.0))

            def sk(loss=loss):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "max_iter reached": intended (tol=0)
                    model = NMF(rank, solver="mu", beta_loss=loss, init="custom",
                                max_iter=steps, tol=0.0)
                    model.fit_transform(x, W=w0.copy(), H=h0.copy())
                return model

            solvers = {"jaxclust": lambda: ours(xj, init=(w0j, h0j)), "sklearn mu": sk}
            times, out = interleaved_runs(solvers, repeats)
            errors = {"jaxclust": float(out["jaxclust"].reconstruction_error),
                      "sklearn mu": float(out["sklearn mu"].reconstruction_err_)}
            for solver in solvers:
                rows.append(dict(
                    problem=f"{name}, r={rank}, {loss}", solver=solver, steps=steps,
                    seconds=times[solver], ratio=times[solver] / times["jaxclust"],
                    error=errors[solver],
                ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    rows = run(quick=args.quick, steps=args.steps, repeats=args.repeats)
    print_table(rows, ["problem", "solver", "steps", "seconds", "ratio", "error"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")


if __name__ == "__main__":
    main()
