"""IDEC on MNIST-5k: DEC keeping the decoder, ``L_rec + γ L_DEC`` with γ = 0.1.

Usage:
  python -m experiments.main --config=experiments/configs/idec.py --workdir=results/idec
"""

import ml_collections

from experiments.configs import dec
from experiments.configs.common import apply_overrides


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = dec.get_config()
    config.method = "idec"
    dec.flax_defaults(config)
    return apply_overrides(config, arg)
