"""Command-line entry point: flags only; the work happens in ``experiments.train``."""

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/kmeans.py", "Path to a config file (optionally :key=value,...)."
)
_WORKDIR = flags.DEFINE_string("workdir", "results/kmeans_mnist5k", "Where results are written.")
_CACHE = flags.DEFINE_string(
    "compilation_cache", "~/.cache/jaxclust/xla",
    "Directory of JAX's persistent compilation cache (runs after the first skip compiling); "
    "'' turns it off.")
_TRITON = flags.DEFINE_bool(
    "triton_gemm", False,
    "Keep XLA's Triton GEMM fusions on GPUs (default: cuBLAS, which compiles much faster; "
    "see experiments.train.use_fast_gpu_compilation).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from experiments import train

    train.use_compilation_cache(_CACHE.value)
    train.use_fast_gpu_compilation(triton_gemm=_TRITON.value)
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
