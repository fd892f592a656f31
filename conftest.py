"""Root pytest configuration, applied to tests/, doctests in jaxclust/ and the README alike.

Sets up 8 simulated CPU devices (so sharding is exercised on every machine), float64 and strict
rank promotion before JAX initialises a backend.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

# Tests are dominated by XLA compilation of small programs: XLA:CPU's unoptimised code generation
# compiles them 2-3x faster (measured: 101 s -> 40 s of CPU for the GMM and CC tests). The flags
# are probed once in a subprocess, because an XLA that does not know a flag aborts the process;
# xdist workers inherit the result. Set XLA_FLAGS yourself to opt out.
_QUICK_XLA = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
if "XLA_FLAGS" not in os.environ and os.environ["JAX_PLATFORMS"] == "cpu":
    import subprocess
    import sys

    _probe = subprocess.run(
        [sys.executable, "-c", "import jax; jax.jit(lambda v: v + 1)(1.0).block_until_ready()"],
        env={**os.environ, "XLA_FLAGS": _QUICK_XLA}, capture_output=True, timeout=300,
    )
    os.environ["XLA_FLAGS"] = _QUICK_XLA if _probe.returncode == 0 else ""

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's compiled programs after each test module.

    Every XLA:CPU executable holds memory mappings, and an xdist worker that runs hundreds of
    test modules accumulates them: `tests/assign` alone left about 12,000 mappings. Two workers
    of a full run segfaulted inside XLA compiles near the end, most likely on reaching the
    kernel's `vm.max_map_count` (65,530); with this fixture the same suite passes.
    With the caches cleared after each module, `tests/assign` ends with about 1,900 mappings
    instead, in the same time (compiled programs are rarely shared across modules).
    """
    yield
    jax.clear_caches()
    gc.collect()
