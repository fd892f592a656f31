"""SCAN: pretext features, mined neighbours, neighbour-consistency clustering, self-labelling.

Van Gansbeke, Vandenhende, Georgoulis, Proesmans, Van Gool, "SCAN: Learning to Classify Images
without Labels", ECCV 2020, https://arxiv.org/abs/2005.12320 (METHODS.md §3.3).

Phases:

1. ``pretext``: SimCLR (NT-Xent on two augmented views, τ = ``pretext_temperature``) trains the
   backbone and a projection head.
2. ``scan``: at its start (``start_fn``) the ``num_neighbors`` nearest neighbours of every image
   are mined by cosine similarity of the pretext projections of the clean images
   (``jaxclust.losses.mine_neighbors``); then each step pairs every augmented anchor with one
   augmented neighbour drawn uniformly among its mined ones (``sample_neighbors``) and minimises
   ``scan_loss`` (consistency − λ·entropy of the mean prediction, λ = 5) of a softmax clustering
   head on the backbone, training the whole network.
3. ``selflabel``: cross-entropy of strongly augmented views to the confident (max p >
   ``threshold``; paper 0.99, config 0.9) predictions on weakly augmented views,
   class-balanced (``scan_self_label_loss``). On MNIST-5k, starting from SCAN clusterings at
   ACC 0.69–0.76, self-labelling *lowers* accuracy under every setting tried (threshold 0.9:
   0.721 → 0.703 on seeds 0–2; 0.99: → 0.678; experiments/README.md, made with
   ``experiments/branch.py``); set ``selflabel_epochs=0`` to skip it.

Simplified relative to the paper: an MLP backbone on flattened images instead of ResNet-18;
digit augmentations (weak: the same small affine warp and noise as the pretext; strong: a larger
warp, crop and more noise, instead of RandAugment + Cutout); one clustering head instead of the
best of ten; Adam everywhere (the pretext in the paper uses SGD with a cosine schedule for 500
epochs) and short schedules.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    MLP, Recipe, adam, argmax_labels, augment_flat, augment_options, init_params, normalize,
    over_dataset, simclr_loss_fn)
from experiments.trainer import Data, Phase, TrainState, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    proj = jcnn.ProjectionHead(features=config.proj_dim)
    head = jcnn.ClusteringHeads(num_clusters=config.k, num_heads=1)
    keys = jax.random.split(jax.random.key(config.seed), 3)
    h0 = jnp.zeros((1, config.feature_dim), x.dtype)
    params = {
        "backbone": init_params(backbone, keys[0], x[:1]),
        "proj": init_params(proj, keys[1], h0),
        "head": init_params(head, keys[2], h0),
    }
    extra = {"neighbors": jnp.zeros((data.n, config.num_neighbors), jnp.int32)}
    weak = augment_options(config)
    strong = augment_options(config, "strong")

    def features(params, xb):
        return nn.relu(backbone.apply({"params": params["backbone"]}, xb))

    def project(params, xb):
        return proj.apply({"params": params["proj"]}, features(params, xb))

    def logits_fn(params, xb):
        return head.apply({"params": params["head"]}, features(params, xb))[0]

    logits_all = over_dataset(logits_fn, x)

    project_all = over_dataset(project, x)

    features_all = over_dataset(features, x)

    def mine(state: TrainState, data: Data) -> TrainState:
        z = normalize(project_all(state.params))
        neighbors = jaxclust.losses.mine_neighbors(z, k=config.num_neighbors)
        if data.y is not None:  # diagnostic: how often a mined neighbour shares the label
            y = np.asarray(data.y)
            purity = float(np.mean(y[np.asarray(neighbors)] == y[:, None]))
            print(f"mined {config.num_neighbors} neighbours; label agreement {purity:.3f}")
        return state._replace(extra={"neighbors": neighbors})

    def scan_loss(params, batch_stats, extra, batch, key):
        k_n, k_a, k_b = jax.random.split(key, 3)
        nb = jaxclust.losses.sample_neighbors(k_n, extra["neighbors"][batch["index"]])
        anchors = logits_fn(params, augment_flat(k_a, batch["x"], **weak))
        xn = batch["dataset"][jnp.maximum(nb, 0)]
        neighbors = logits_fn(params, augment_flat(k_b, xn.reshape(xn.shape[0], -1), **weak))
        out = jaxclust.losses.scan_loss(anchors, neighbors, entropy_weight=config.entropy_weight)
        return out.total, ({"consistency": out.consistency, "entropy": out.entropy},
                           batch_stats)

    def self_label_loss(params, batch_stats, extra, batch, key):
        k_w, k_s = jax.random.split(key)
        weak_logits = logits_fn(params, augment_flat(k_w, batch["x"], **weak))
        strong_logits = logits_fn(params, augment_flat(k_s, batch["x"], **strong))
        loss = jaxclust.losses.scan_self_label_loss(
            jax.lax.stop_gradient(weak_logits), strong_logits, threshold=config.threshold)
        confident = jnp.mean(jnp.max(jax.nn.softmax(weak_logits), axis=1) > config.threshold)
        return loss, ({"confident": confident}, batch_stats)

    steps_per_epoch = data.n // config.batch_size
    phases = [
        Phase("pretext", phase_steps(config, config.pretext_epochs, steps_per_epoch),
              adam(config.pretext_lr),
              simclr_loss_fn(project, temperature=config.pretext_temperature, aug=weak)),
        Phase("scan", phase_steps(config, config.scan_epochs, steps_per_epoch),
              adam(config.scan_lr, config.weight_decay), scan_loss, start_fn=mine),
        Phase("selflabel", phase_steps(config, config.selflabel_epochs, steps_per_epoch),
              adam(config.selflabel_lr, config.weight_decay), self_label_loss),
    ]
    phases = [p for p in phases if p.num_steps > 0]

    def predict(state):
        return argmax_labels(logits_all(state.params))

    def embed(state):
        return np.asarray(features_all(state.params))

    return Recipe(phases, new_state(params, {}, extra, config.seed), predict, embed)
