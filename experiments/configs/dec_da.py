"""DEC-DA on MNIST-5k: DEC trained on randomly warped digits (rotation ≤ 10°, shift ≤ 10%), in
both the autoencoder pretraining and the clustering phase; the schedule of ``dec.py``.

Usage:
  python -m experiments.main --config=experiments/configs/dec_da.py --workdir=results/dec_da
"""

import ml_collections

from experiments.configs import dec
from experiments.configs.common import add_augmentation, apply_overrides


def da_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """DEC-DA's augmentation (Keras ``ImageDataGenerator(rotation_range=10,
    width_shift_range=0.1, height_shift_range=0.1)``): no zoom, crop or pixel noise. The
    autoencoder settings are ``dec.flax_defaults``."""
    dec.flax_defaults(config)
    config.augment = True
    add_augmentation(config)
    config.aug_degrees, config.aug_translate, config.aug_zoom, config.aug_noise = 10.0, 0.1, 0.0, 0.0
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = da_defaults(dec.get_config())
    config.method = "dec_da"
    return apply_overrides(config, arg)
