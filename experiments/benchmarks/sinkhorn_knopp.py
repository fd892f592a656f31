"""SwAV equipartition benchmark: jaxclust.assign.sinkhorn_knopp vs the naive exp snippet and ott-jax.

Every solver runs the same 3 Sinkhorn sweeps (column step, then row step) from zero potentials on
the SwAV problem: B samples, K prototypes, ``a = 1/B``, ``b = 1/K``, cost ``−S``. The naive
snippet is SwAV's ``distributed_sinkhorn`` written in plain JAX (scaling domain, ``exp(S/ε)``);
ott-jax runs ``Sinkhorn(min_iterations=max_iterations=3)`` in log mode on a ``Geometry`` with
cost ``−S``, whose iteration also updates ``g`` (columns) and then ``f`` (rows), so all three
compute the same ``Q`` up to rounding; ``max|ΔQ|`` against jaxclust is printed to show it.

A second problem uses unnormalised scores (|S| ~ 10) at ``ε = 0.01``, where ``exp(S/ε)``
overflows float32: the NaN column counts non-finite entries of each solver's output.

  .venv/bin/python -m experiments.benchmarks.sinkhorn_knopp            # 8192 x 3000 (SwAV)
  .venv/bin/python -m experiments.benchmarks.sinkhorn_knopp --quick    # 1024 x 300 (smoke test)
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import interleaved_best, machine, print_table
from jaxclust.assign import sinkhorn_knopp


@functools.partial(jax.jit, static_argnames="num_steps")
def naive_swav(scores, epsilon, num_steps: int = 3):
    """SwAV's ``distributed_sinkhorn`` (single device) in plain JAX: the snippet users copy."""
    q = jnp.exp(scores / epsilon).T  # [K, B]
    q = q / jnp.sum(q)
    k, b = q.shape
    for _ in range(num_steps):
        q = q / jnp.sum(q, axis=1, keepdims=True) / k
        q = q / jnp.sum(q, axis=0, keepdims=True) / b
    return (q * b).T


@functools.partial(jax.jit, static_argnames="num_steps")
def ott_sinkhorn(scores, epsilon, num_steps: int = 3):
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    geom = geometry.Geometry(cost_matrix=-scores, epsilon=epsilon)
    solver = sinkhorn.Sinkhorn(
        lse_mode=True, min_iterations=num_steps, max_iterations=num_steps,
        inner_iterations=num_steps, threshold=0.0,
    )
    out = solver(linear_problem.LinearProblem(geom))
    return scores.shape[0] * out.matrix


ours = jax.jit(sinkhorn_knopp, static_argnames="num_steps")


def _scores(n, k, d=128, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)).astype(np.float32)
    c = rng.normal(size=(k, d)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return jnp.asarray(scale * (z @ c.T))


def run(quick: bool = False, repeats: int = 5) -> list[dict]:
    n, k = (1024, 300) if quick else (8192, 3000)
    problems = [
        (f"SwAV {n}x{k}, eps=0.05", _scores(n, k), 0.05),
        (f"|S|~10 {n}x{k}, eps=0.01", _scores(n, k, scale=10.0), 0.01),
    ]
    rows = []
    for name, s, eps in problems:
        eps = jnp.float32(eps)
        solvers = {
            "jaxclust": lambda: ours(s, epsilon=eps, num_steps=3),
            "naive JAX": lambda: naive_swav(s, eps),
            "ott-jax": lambda: ott_sinkhorn(s, eps),
        }
        times = interleaved_best(solvers, repeats)
        reference = np.asarray(solvers["jaxclust"](), np.float64)
        for solver, fn in solvers.items():
            q = np.asarray(fn(), np.float64)
            finite = np.isfinite(q)
            diff = np.abs(q - reference)[finite].max() if finite.any() else float("nan")
            rows.append(dict(
                problem=name, solver=solver, seconds=times[solver],
                ratio=times[solver] / times["jaxclust"], nan=int((~finite).sum()),
                max_abs_diff=float(diff), max_row_err=float(np.abs(q.sum(1) - 1)[finite.all(1)].max(initial=0.0)),
            ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(machine())
    rows = run(quick=args.quick)
    print_table(rows, ["problem", "solver", "seconds", "ratio", "nan", "max_abs_diff", "max_row_err"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile time excluded.")
    print("nan = non-finite entries of Q; max_abs_diff = max |Q_peer - Q_jaxclust| over finite entries.")


if __name__ == "__main__":
    main()
