"""SwAV (swapped prediction of Sinkhorn codes) on MNIST-5k with an MLP (METHODS.md §3.6).

Two augmented views, 50 unit-norm prototypes (clusters: k-means on the projections; set
``num_prototypes=10`` for one prototype per cluster), τ = 0.1, ε = 0.05, 3 Sinkhorn sweeps,
prototypes frozen for the first steps and re-normalised after every update; see
``experiments/recipes/self_label.py`` for what is simplified.

Usage:
  python -m experiments.main --config=experiments/configs/swav.py --workdir=results/swav
"""

import ml_collections

from experiments.configs.common import add_augmentation, apply_overrides, deep_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = deep_defaults("swav")
    config.recipe = "self_label"
    config.hidden = (512, 512)
    config.feature_dim = 256
    config.proj_dim = 64
    config.proj_hidden = 256
    config.num_prototypes = 50  # != k: clusters by k-means on the projections (= k: argmax)
    config.temperature = 0.1
    config.epsilon = 0.05
    config.sinkhorn_steps = 3
    config.freeze_prototypes_steps = 50  # SwAV: 313 iterations
    config.epochs = 100  # seed 0 on MNIST-5k: ACC 0.477 with 40 epochs, 0.715 with 100
    config.lr = 1e-3
    config.weight_decay = 0.0
    add_augmentation(config)
    config.checkpoint_every = 0
    config.smoke = {"hidden": (32,), "feature_dim": 16, "proj_dim": 8, "proj_hidden": 16}
    return apply_overrides(config, arg)
