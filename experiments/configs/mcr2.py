"""MLC / MCR² on MNIST-5k: SimCLR-pretrained MLP backbone, then subspace and cluster heads
trained with the MLC coding-rate objective (METHODS.md §3.10–3.11); labels by spherical k-means
on the cluster features (``label_method="spectral"``: MLC's spectral clustering of the membership
Π, slow on CPU). See ``experiments/recipes/mcr2.py`` for what is simplified. This is the recipe
``make run`` runs.

Usage:
  python -m experiments.main --config=experiments/configs/mcr2.py --workdir=results/mcr2
"""

import ml_collections

from experiments.configs.common import add_augmentation, apply_overrides, deep_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = deep_defaults("mcr2")
    config.recipe = "mcr2"
    config.hidden = (512, 512)
    config.feature_dim = 128
    config.proj_dim = 64
    config.pretext_epochs = 100  # 20 epochs: ACC 0.775 on MNIST-5k seed 0; 100: 0.885
    config.pretext_lr = 1e-3
    config.pretext_temperature = 0.5
    config.neck_hidden = 512
    config.head_dim = 32
    config.batch_size = 128  # two views each: Π is 256 × 256
    config.warmup_steps = 50  # MLC's CIFAR-10 recipe
    config.epochs = 5
    config.lr = 1e-3
    config.gamma = 1.0
    config.gamma_pi = 0.05
    config.eps_sq = 0.1  # MLC's e (its code's "eps")
    config.epsilon = 0.175  # entropic regularisation of Π
    config.label_method = "kmeans"  # "spectral": MLC's spectral clustering of Π (slow on CPU)
    add_augmentation(config)
    config.checkpoint_every = 0
    config.smoke = {"hidden": (32,), "feature_dim": 16, "proj_dim": 8, "neck_hidden": 16,
                    "head_dim": 8}
    return apply_overrides(config, arg)
