"""k-means baseline on bundled real data.

Usage:
  python -m experiments.main --config=experiments/configs/kmeans.py --workdir=results/kmeans
  python -m experiments.main --config=experiments/configs/kmeans.py:dataset=digits,init=random
  ... --config.k=20   # over-clustering; many-to-one accuracy is reported too
"""

import ml_collections


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
    if arg:
        for item in arg.split(","):
            name, value = item.split("=", 1)
            config[name] = type(config[name])(value) if config[name] is not None else value
    return config
