"""P²OT pseudo-labels versus POT's entropic partial OT, on the CPU.

The two solvers answer related but different questions, so the table reports each solver's own
objective and then evaluates both plans on common terms:

* jaxclust ``p2ot`` (METHODS.md §2.6): rows exact (``a = 1/N``), a virtual zero-cost cluster
  absorbs ``1 − ρ`` exactly, the ``K`` real cluster masses are only KL-tied to ``ρ/K`` (weight
  ``γ``); objective ``⟨P, C'⟩ + ε Σ P(ln P − 1) + γ KL(P_realᵀ1 ‖ ρ/K)`` over the ``N × (K+1)``
  plan.
* POT ``ot.partial.entropic_partial_wasserstein(a, b, C, reg=ε, m=ρ)``: inequality-constrained
  partial OT, ``min ⟨P, C⟩ + ε Σ P ln P`` over ``N × K`` plans with ``P1 ≤ a``, ``Pᵀ1 ≤ b`` and
  total mass exactly ``ρ`` (Benamou et al.'s iterated KL projections). With ``b = ρ/K`` the
  columns are forced to exactly ``ρ/K``: P²OT's ``γ → ∞`` limit, except that P²OT's entropy also
  counts the virtual column.

Common terms for both real-cluster plans ``P`` (``N × K``): transported mass ``Σ P``, transport
cost ``⟨P, C⟩``, P²OT's objective at both plans (POT's plan completed by the virtual column
``a − P1`` is feasible for P²OT, so P²OT's own optimum must be lower), the L1 distance of the
cluster masses to ``ρ/K``, and the fraction of rows whose arg-max cluster agrees.

Cost: ``C = −log_softmax(logits)`` for random imbalanced logits; ``ε = 0.1``, ``γ = 1``
(P²OT's defaults), ``ρ = 0.5``. jaxclust runs in float32 with its default stopping rule
(``max|Δg|/ε < 1e-6``); POT runs in float64 NumPy to ``stopThr = 1e-9`` (at most 1000
iterations, its default).

  .venv/bin/python -m experiments.benchmarks.p2ot --repeats 1   # 1024 x 10 and 2048 x 100
  .venv/bin/python -m experiments.benchmarks.p2ot --quick       # 1024 x 10 only

POT's solver rescales rows and columns with dense ``diag(·) @ K`` products, O(N² K) work per
iteration, so 4096 x 100 takes minutes per run on a 2-core CPU; ``--large`` adds it.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import interleaved_best, machine, print_table
from jaxclust.assign import p2ot


def _logits(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bias = np.log(np.linspace(1.0, 0.1, k))  # imbalanced: cluster 0 is ten times cluster k−1
    return (rng.normal(size=(n, k)) * 2.0 + bias).astype(np.float32)


def _cost(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    return -(z - np.log(np.exp(z).sum(1, keepdims=True)))


def _xlogx_minus(p: np.ndarray) -> float:
    """``Σ p (ln p − 1)`` with ``0 ln 0 = 0``."""
    p = p[p > 0]
    return float((p * (np.log(p) - 1)).sum())


def run(sizes, rho: float = 0.5, epsilon: float = 0.1, gamma: float = 1.0,
        repeats: int = 3) -> list[dict]:
    import ot

    rows = []
    for n, k in sizes:
        logits = _logits(n, k)
        cost = _cost(logits)
        a = np.full(n, 1.0 / n)
        b = np.full(k, rho / k)
        logits_j = jnp.asarray(logits)

        @jax.jit
        def ours(x):
            return p2ot(x, rho=rho, epsilon=epsilon, gamma=gamma)

        mass = min(rho, float(a.sum()), float(b.sum()))  # POT rejects m > Σb by one ulp

        def pot():
            return ot.partial.entropic_partial_wasserstein(
                a, b, cost, reg=epsilon, m=mass, stopThr=1e-9, log=True)

        times = interleaved_best({"jaxclust p2ot": lambda: ours(logits_j), "POT partial": pot},
                                 repeats)
        result = ours(logits_j)
        p_ours = np.asarray(result.assignments, np.float64) / n
        p_pot, pot_log = pot()
        # Each solver's own objective, in float64 from its plan; and P²OT's objective at both
        # plans (POT's plan completed with the virtual column a − P1 is feasible for P²OT).
        def p2ot_objective(p):
            virtual = np.maximum(a - p.sum(1), 0.0)
            cols = p.sum(0)
            return ((p * cost).sum() + epsilon * (_xlogx_minus(p) + _xlogx_minus(virtual))
                    + gamma * (cols * np.log(cols / b) - cols + b).sum())

        own_ours = p2ot_objective(p_ours)
        own_pot = (p_pot * cost).sum() + epsilon * float(
            (p_pot[p_pot > 0] * np.log(p_pot[p_pot > 0])).sum())
        labels_ours = p_ours.argmax(1)
        for name, p, own, iters in (
            ("jaxclust p2ot", p_ours, own_ours, int(result.num_steps)),
            ("POT partial", p_pot, own_pot, len(pot_log.get("err", [])) * 10 or None),
        ):
            rows.append(dict(
                problem=f"{n}x{k} rho={rho}", solver=name, seconds=times[name],
                ratio=times[name] / times["jaxclust p2ot"], iterations=iters,
                own_objective=own, p2ot_objective=p2ot_objective(p), mass=float(p.sum()), transport=float((p * cost).sum()),
                col_l1=float(np.abs(p.sum(0) - b).sum()),
                same_argmax=float((p.argmax(1) == labels_ours).mean()),
            ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="add 4096 x 100 (slow for POT)")
    args = parser.parse_args()
    print(machine())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    sizes = [(1024, 10)] if args.quick else [(1024, 10), (2048, 100)]
    sizes += [(4096, 100)] if args.large else []
    rows = run(sizes, repeats=args.repeats)
    print_table(rows, ["problem", "solver", "seconds", "ratio", "iterations", "own_objective",
                       "p2ot_objective", "mass", "transport", "col_l1", "same_argmax"])
    print("ratio = peer seconds / jaxclust seconds (>1: jaxclust is faster); compile excluded.")
    print("own_objective: each solver's own objective (they differ: see the module docstring);")
    print("p2ot_objective: P2OT's objective at each plan (POT's completed by the virtual column);")
    print("iterations: POT's are counted in tens (it checks its error every 10).")
    print("mass = sum P, transport = <P, C>, col_l1 = |P^T 1 - rho/K|_1 over the K real clusters,")
    print("same_argmax = fraction of rows whose arg-max cluster equals jaxclust's.")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
