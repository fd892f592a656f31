"""SeLa (self-labelling by optimal transport) on MNIST-5k with an MLP (METHODS.md §3.7).

Pseudo-labels are re-optimised over the whole dataset every ``label_every`` steps by
Sinkhorn-Knopp with λ = 10 (the paper's CIFAR value); see ``experiments/recipes/self_label.py``
for what is simplified. ``imbalance_ratio=10`` trains and evaluates on the long-tailed subset
used by ``experiments/configs/p2ot.py`` (SeLa's equipartition prior is wrong there).

Usage:
  python -m experiments.main --config=experiments/configs/sela.py --workdir=results/sela
  python -m experiments.main --config=experiments/configs/sela.py:imbalance_ratio=10
"""

import ml_collections

from experiments.configs.common import add_augmentation, apply_overrides, deep_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = deep_defaults("sela")
    config.recipe = "self_label"
    config.hidden = (512, 512)
    config.feature_dim = 128
    config.epochs = 60
    config.lr = 1e-3
    config.weight_decay = 0.0
    config.lam = 10.0  # SeLa's λ (inverse entropic regularisation); CIFAR script: 10
    config.sinkhorn_steps = 100
    config.label_every = 40  # steps between pseudo-label re-optimisations
    add_augmentation(config)
    config.checkpoint_every = 0
    config.smoke = {"hidden": (32,), "feature_dim": 16, "sinkhorn_steps": 5}
    return apply_overrides(config, arg)

