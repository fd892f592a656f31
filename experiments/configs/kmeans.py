"""k-means baseline on bundled real data.

Usage:
  python -m experiments.main --config=experiments/configs/kmeans.py --workdir=results/kmeans
  python -m experiments.main --config=experiments/configs/kmeans.py:dataset=digits,init=random
  ... --config.k=20   # over-clustering; many-to-one accuracy is reported too
"""

import ml_collections

from experiments.configs.common import apply_overrides


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.method = "kmeans"
    config.dataset = "mnist5k"  # "digits", "mnist5k" or a path to an .npz file with x (and y)
    config.k = 10
    config.init = "k-means++"
    config.n_init = 10  # restarts; the lowest-inertia run is kept
    config.max_steps = 300
    config.tol = 1e-4
    config.seed = 0
    config.mesh = (("data", -1),)  # data parallel over every device
    config.compare_sklearn = True  # also report scikit-learn's KMeans on the same data and init
    config.plot = True
    if arg and arg.split(",")[0] == "smoke":  # the one-step smoke test: tiny and quick
        config.dataset, config.n_init, config.max_steps = "digits", 1, 2
        config.plot, config.compare_sklearn = False, False
        arg = ",".join(arg.split(",")[1:])
    return apply_overrides(config, arg)
