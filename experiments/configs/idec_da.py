"""IDEC-DA on MNIST-5k: IDEC (``idec.py``) trained on randomly warped digits, as ``dec_da.py``.

Usage:
  python -m experiments.main --config=experiments/configs/idec_da.py --workdir=results/idec_da
"""

import ml_collections

from experiments.configs import dec, dec_da
from experiments.configs.common import apply_overrides


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = dec_da.da_defaults(dec.get_config())
    config.method = "idec_da"
    return apply_overrides(config, arg)
