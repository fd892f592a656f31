"""The compilation flags of the runner's entry points (``main``, ``seeds``, ``branch``).

Importing this module defines ``--compilation_cache`` and ``--triton_gemm``; :func:`apply`
puts them into effect and must run before any computation (the GPU settings are read when JAX
starts its backends).
"""

from absl import flags

CACHE = flags.DEFINE_string(
    "compilation_cache", "~/.cache/jaxclust/xla",
    "Directory of JAX's persistent compilation cache (runs after the first skip compiling); "
    "'' turns it off.")
TRITON_GEMM = flags.DEFINE_bool(
    "triton_gemm", False,
    "Keep XLA's Triton GEMM fusions on GPUs (default: cuBLAS, which compiles much faster; "
    "see experiments.train.use_fast_gpu_compilation).")


def apply() -> None:
    """:func:`experiments.train.use_compilation_cache` and ``use_fast_gpu_compilation`` with
    the flags' values."""
    from experiments import train

    train.use_compilation_cache(CACHE.value)
    train.use_fast_gpu_compilation(triton_gemm=TRITON_GEMM.value)
