"""Converged entropic OT benchmark: jaxclust.assign.sinkhorn vs ott-jax and POT.

A squared-Euclidean cost between two uniform point clouds in [0, 1]^2 (costs in [0, 2]), uniform
marginals, ε = 0.01, float32. Every solver runs log-domain Sinkhorn until its marginal error is
below the same threshold (1e-3, checked every 10 iterations, at most 2000 iterations). The
solvers measure that error on different sides and norms (jaxclust and ott-jax: L1 on the rows;
POT: L2 on the columns), so POT gets ``stopThr = tol/√n`` (``‖x‖₁ ≤ √n ‖x‖₂``, so its L1 error is
below ``tol`` too, possibly after a few more iterations), and the table reports, for every
returned plan, the same L1 error max(‖P1 − a‖₁, ‖Pᵀ1 − b‖₁) computed in float64, and the
iterations each solver ran.

  .venv/bin/python -m experiments.benchmarks.sinkhorn            # 4096 x 4096
  .venv/bin/python -m experiments.benchmarks.sinkhorn --quick    # 1024 x 1024 (CPU smoke test)
  .venv/bin/python -m experiments.benchmarks.sinkhorn --no-pot   # skip POT (~45 s a run at 4096²)
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import interleaved_best, machine, print_table
from jaxclust.assign import plan, sinkhorn


def _problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2)).astype(np.float32)
    y = rng.uniform(size=(n, 2)).astype(np.float32)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def _l1_error(p, a, b) -> float:
    p = np.asarray(p, np.float64)
    return float(max(np.abs(p.sum(1) - a).sum(), np.abs(p.sum(0) - b).sum()))


def run(quick: bool = False, epsilon: float = 0.01, tol: float = 1e-3, max_steps: int = 2000,
        repeats: int = 5, pot: bool = True) -> list[dict]:
    from ott.geometry import geometry
    from ott.solvers import linear

    n = 1024 if quick else 4096
    cost = _problem(n)
    a = np.full(n, 1 / n, np.float32)
    cost_j, a_j = jnp.asarray(cost), jnp.asarray(a)

    @jax.jit
    def ours(c):
        result = sinkhorn(c, epsilon=epsilon, tol=tol, max_steps=max_steps, inner_steps=10)
        return result, plan(result, c)

    @jax.jit
    def ott_fn(c, a):
        with jax.numpy_rank_promotion("allow"):
            out = linear.solve(geometry.Geometry(cost_matrix=c, epsilon=epsilon), a, a,
                               threshold=tol, max_iterations=max_steps, inner_iterations=10,
                               lse_mode=True)
        return out.n_iters, out.matrix

    def pot_fn():
        import ot

        return ot.sinkhorn(a, a, cost, reg=epsilon, method="sinkhorn_log", stopThr=tol / np.sqrt(n),
                           numItermax=max_steps, log=True)

    solvers = {
        "jaxclust": lambda: ours(cost_j),
        "ott-jax": lambda: ott_fn(cost_j, a_j),
    }
    if pot:
        solvers["POT (NumPy)"] = pot_fn
    times = interleaved_best(solvers, repeats)
    result, p = ours(cost_j)
    ott_iters, ott_p = ott_fn(cost_j, a_j)
    outputs = {
        "jaxclust": (p, int(result.num_steps)),
        "ott-jax": (ott_p, int(ott_iters)),
    }
    if pot:
        pot_p, pot_log = pot_fn()
        outputs["POT (NumPy)"] = (pot_p, int(pot_log["niter"]))
    rows = []
    for name, (p_, iters) in outputs.items():
        rows.append(dict(
            problem=f"{n}x{n} sqeuclid, eps={epsilon}", solver=name, iterations=iters,
            error=_l1_error(p_, a, a), seconds=times[name], ratio=times[name] / times["jaxclust"],
        ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pot", action="store_true", help="skip POT (slow at 4096²)")
    args = parser.parse_args()
    print(machine())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = run(quick=args.quick, repeats=args.repeats, pot=not args.no_pot)
    print_table(rows, ["problem", "solver", "iterations", "error", "seconds", "ratio"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile excluded;")
    print("error = max(|P1 - a|_1, |P^T 1 - b|_1) of the returned plan, in float64.")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
