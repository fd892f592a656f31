"""Raw-pixel k-means over several seeds: the baseline row of the results tables.

k-means++ with 10 restarts (``jaxclust.cluster.kmeans``) on the flattened pixels, one run per
seed; with ``--imbalance_ratio > 1`` each seed draws its own long-tailed subset, as the deep
recipes do (``recipes.common.imbalanced_indices``). Prints mean ± std of ACC, NMI, ARI and the
mean recall of the rarest ``--tail`` fraction of the classes.

Usage:
  python -m experiments.kmeans_baseline --dataset=mnist5k --seeds=0,1,2
  python -m experiments.kmeans_baseline --dataset=mnist5k --seeds=0,1,2 --imbalance_ratio=10
"""

import jax
import numpy as np
from absl import app, flags

import jaxclust.cluster
import jaxclust.data
import jaxclust.metrics

_DATASET = flags.DEFINE_string("dataset", "mnist5k", "Bundled dataset name or .npz path.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (k-means key and subset draw).")
_RATIO = flags.DEFINE_float("imbalance_ratio", 1.0, "> 1: long-tailed subset per seed.")
_K = flags.DEFINE_integer("k", 10, "Number of clusters.")
_TAIL = flags.DEFINE_float("tail", 0.3, "Fraction of the classes (the rarest) in the minority recall.")


def main(argv):
    del argv
    from experiments.recipes.common import imbalanced_indices
    from experiments.train import mean_std, per_class_recall, rarest_classes

    ds = jaxclust.data.load(_DATASET.value)
    x_all = np.asarray(ds.x, np.float32).reshape(len(ds.x), -1)
    scores = {"acc": [], "nmi": [], "ari": [], "rarest_recall": []}
    for seed in map(int, _SEEDS.value):
        rows = imbalanced_indices(ds.y, _RATIO.value, seed)
        x, y = x_all[rows], np.asarray(ds.y)[rows]
        labels = np.asarray(jaxclust.cluster.kmeans(
            x, k=_K.value, key=jax.random.key(seed), n_init=10).labels)
        rarest = rarest_classes(np.bincount(y), _TAIL.value)
        scores["acc"].append(float(jaxclust.metrics.accuracy(y, labels)))
        scores["nmi"].append(float(jaxclust.metrics.nmi(y, labels)))
        scores["ari"].append(float(jaxclust.metrics.ari(y, labels)))
        scores["rarest_recall"].append(float(np.mean(np.asarray(
            per_class_recall(labels, y, _K.value))[rarest])))
    for name, values in scores.items():
        print(f"{name:<14} {' / '.join(f'{v:.3f}' for v in values)}   {mean_std(values)}")


if __name__ == "__main__":
    app.run(main)
