"""P²OT on a long-tailed MNIST-5k subset (imbalance ratio 10), METHODS.md §2.6 and §3.8.

The subset keeps 500 → 50 images per class (geometric decay, 2,044 images); the same subset is
used by ``experiments/configs/sela.py:imbalance_ratio=10`` for the comparison with SeLa's
equipartition. ``imbalance_ratio=1`` runs on the full (balanced) set. See
``experiments/recipes/p2ot.py`` for what is simplified.

Usage:
  python -m experiments.main --config=experiments/configs/p2ot.py --workdir=results/p2ot
"""

import ml_collections

from experiments.configs import sela
from experiments.configs.common import add_augmentation, apply_overrides, deep_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = deep_defaults("p2ot")
    config.recipe = "p2ot"
    config.imbalance_ratio = 10.0
    config.hidden = (512, 512)
    config.feature_dim = 128
    config.proj_dim = 64
    config.batch_size = 256
    config.pretext_epochs = 60
    config.pretext_lr = 1e-3
    config.pretext_temperature = 0.5
    config.cluster_epochs = 40
    config.lr = 1e-4
    config.weight_decay = 0.0
    config.head_temperature = 0.1  # cosine-classifier logits ⟨ĥ, ĉ⟩/τ
    config.epsilon = 0.1  # P²OT's entropic regularisation
    config.gamma = 1.0  # KL weight on the cluster sizes
    config.ot_max_steps = 300
    config.rho_0 = 0.1
    config.rho_max = 1.0
    config.ramp = "sigmoid"
    add_augmentation(config)
    config.checkpoint_every = 0
    config.smoke = {"hidden": (32,), "feature_dim": 16, "proj_dim": 8, "ot_max_steps": 10}
    return apply_overrides(config, arg)
