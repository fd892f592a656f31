"""Contrastive Clustering on MNIST-5k with an MLP backbone (METHODS.md §3.4).

τ_I = 0.5, τ_C = 1.0, instance projection 128-d, cluster head MLP → softmax over 10; see
``experiments/recipes/cc.py`` for what is simplified.

Usage:
  python -m experiments.main --config=experiments/configs/cc.py --workdir=results/cc
"""

import ml_collections

from experiments.configs.common import add_augmentation, apply_overrides, deep_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = deep_defaults("cc")
    config.recipe = "cc"
    config.hidden = (512, 512)
    config.feature_dim = 256
    config.head_hidden = 256
    config.proj_dim = 128
    config.instance_temperature = 0.5
    config.cluster_temperature = 1.0
    config.epochs = 25
    config.lr = 1e-3
    config.weight_decay = 0.0
    add_augmentation(config)
    config.checkpoint_every = 0
    config.smoke = {"hidden": (32,), "feature_dim": 16, "head_hidden": 16, "proj_dim": 8}
    return apply_overrides(config, arg)
