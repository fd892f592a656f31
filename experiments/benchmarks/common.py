"""Timing helpers shared by the benchmarks: best-of-r wall clock, machine description, tables."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Collection, Mapping

import jax


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall-clock seconds of ``repeats`` calls (JAX results are blocked on)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def interleaved_runs(
    fns: dict[str, Callable[[], object]],
    repeats: int | Mapping[str, int] = 5,
    warmup: Collection[str] | None = None,
) -> tuple[dict[str, float], dict[str, object]]:
    """Best wall-clock seconds and last output of each callable, timing them round-robin.

    On a shared machine the load drifts over seconds; interleaving the solvers' repetitions
    exposes every solver to the same conditions, so the ratios are fairer than timing each in
    its own block. ``repeats`` is one count for all or a count per name (a slow per-item Python
    loop can run once while the compiled solver runs five times); ``warmup`` names the callables
    run once untimed first (compilation, caches), by default all of them.
    """
    counts = {name: repeats if isinstance(repeats, int) else repeats[name] for name in fns}
    if min(counts.values()) < 1:
        raise ValueError(f"repeats must be at least 1 for every solver, got {counts}")
    outputs = {}
    for name in fns if warmup is None else warmup:
        outputs[name] = jax.block_until_ready(fns[name]())
    best = {name: float("inf") for name in fns}
    for r in range(max(counts.values())):
        for name, fn in fns.items():
            if r < counts[name]:
                start = time.perf_counter()
                outputs[name] = jax.block_until_ready(fn())
                best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int = 5) -> dict[str, float]:
    """Best wall-clock seconds of each callable, timed round-robin (see `interleaved_runs`)."""
    return interleaved_runs(fns, repeats)[0]


def machine() -> str:
    dev = jax.devices()[0]
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.default_backend()} ({dev.device_kind}, {len(jax.devices())} device(s))"
    )


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
