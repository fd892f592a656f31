"""Root pytest configuration, applied to tests/, doctests in jaxclust/ and the README alike.

Sets up 8 simulated CPU devices (so sharding is exercised on every machine), float64 and strict
rank promotion before JAX initialises a backend.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
