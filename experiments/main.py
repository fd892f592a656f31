"""Command-line entry point: flags only; the work happens in ``experiments.train``."""

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import compilation_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/kmeans.py", "Path to a config file (optionally :key=value,...)."
)
_WORKDIR = flags.DEFINE_string("workdir", "results/kmeans_mnist5k", "Where results are written.")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from experiments import train

    compilation_flags.apply()
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
