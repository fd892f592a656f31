"""Optimal-transport self-labelling: SeLa and SwAV (``config.method`` picks one).

SeLa: Asano, Rupprecht, Vedaldi, "Self-labelling via simultaneous clustering and representation
learning", ICLR 2020, https://arxiv.org/abs/1911.05371 (METHODS.md §3.7). One phase: every
``label_every`` steps the network's predictions on the *whole* (clean) dataset are turned into
equipartitioned hard pseudo-labels by Sinkhorn-Knopp (``jaxclust.losses.sela_pseudo_labels``,
``λ = config.lam``), and between refreshes the network minimises the cross-entropy of augmented
inputs to those labels (``sela_loss``). The network is trained from scratch, as in the paper.

SwAV: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments", NeurIPS 2020, https://arxiv.org/abs/2006.09882 (METHODS.md §3.6). Two augmented
views → backbone → L2-normalised projection → dot products with unit-norm prototypes; codes from
3 Sinkhorn-Knopp sweeps (ε = 0.05) on each view's scores, predicted by the other view's softmax
at τ = 0.1 (``jaxclust.losses.swav_loss``); prototypes re-normalised after every update
(``jaxclust.nn.normalize_prototypes`` as ``post_update_fn``) and frozen during a first
``freeze_prototypes_steps`` steps (a separate phase whose optimiser leaves them unchanged).
Clusters are the argmax over the prototypes when ``num_prototypes == k``, else k-means on the
projections (the config uses 50 prototypes: 0.48 vs 0.47 ACC with 10 in our short runs).

Simplified relative to the papers, to train in minutes on a CPU: an MLP backbone on flattened
images instead of AlexNet/ResNet-50; digit augmentations (small affine warp, optional crop,
Gaussian noise; no flips or colour jitter) instead of ImageNet's; SeLa uses one clustering head
(the paper: 10 heads, 3000 clusters) and a fixed Sinkhorn budget; SwAV uses two views and no
multi-crop, no feature queue, Adam instead of LARS with a cosine schedule.

``config.imbalance_ratio > 1`` (applied by the config through
``experiments.recipes.common.imbalanced_indices``) trains and evaluates on a long-tailed subset,
to compare SeLa's equipartition prior with P²OT (``experiments/configs/p2ot.py``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.cluster
import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    MLP, Recipe, adam, init_params, augment_flat, augment_options, argmax_labels, over_dataset)
from experiments.trainer import Data, Phase, TrainState, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    if config.method == "swav":
        return _build_swav(config, data)
    return _build_sela(config, data)


def _build_sela(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    head = jcnn.ClusteringHeads(num_clusters=config.k, num_heads=1)
    key_b, key_h = jax.random.split(jax.random.key(config.seed))
    params = {"backbone": init_params(backbone, key_b, x[:1])}
    params["head"] = init_params(head, key_h, jnp.zeros((1, config.feature_dim), x.dtype))
    extra = {"labels": jnp.zeros((data.n,), jnp.int32)}
    aug = augment_options(config)

    def logits_fn(params, xb):
        h = jax.nn.relu(backbone.apply({"params": params["backbone"]}, xb))
        return head.apply({"params": params["head"]}, h)[0]

    logits_all = over_dataset(logits_fn, x)

    features_all = over_dataset(
        lambda params, xb: backbone.apply({"params": params["backbone"]}, xb), x)
    sinkhorn = jax.jit(functools.partial(
        jaxclust.losses.sela_pseudo_labels, lam=config.lam, num_steps=config.sinkhorn_steps))

    def pseudo_labels(params):
        return sinkhorn(logits_all(params))

    def loss_fn(params, batch_stats, extra, batch, key):
        xb = augment_flat(key, batch["x"], **aug)
        logits = logits_fn(params, xb)
        labels = extra["labels"][batch["index"]]
        loss = jaxclust.losses.sela_loss(logits, labels).mean()
        agree = jnp.mean(jnp.argmax(logits, axis=1) == labels)
        return loss, ({"agree": agree}, batch_stats)

    def refresh(state: TrainState, data: Data):
        return {"labels": pseudo_labels(state.params)}

    steps_per_epoch = data.n // config.batch_size
    phases = [Phase("selabel", phase_steps(config, config.epochs, steps_per_epoch),
                    adam(config.lr, config.weight_decay), loss_fn,
                    refresh_every=config.label_every, refresh_fn=refresh)]

    def predict(state):
        return argmax_labels(logits_all(state.params))

    def embed(state):
        return np.asarray(features_all(state.params))

    return Recipe(phases, new_state(params, {}, extra, config.seed), predict, embed)


def _build_swav(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    proj = jcnn.ProjectionHead(features=config.proj_dim, hidden=config.proj_hidden)
    protos = jcnn.PrototypeHead(num_prototypes=config.num_prototypes, normalize_weights=False)
    keys = jax.random.split(jax.random.key(config.seed), 3)
    params = {
        "backbone": init_params(backbone, keys[0], x[:1]),
        "proj": init_params(proj, keys[1], jnp.zeros((1, config.feature_dim), x.dtype)),
        "protos": init_params(protos, keys[2], jnp.zeros((1, config.proj_dim), x.dtype)),
    }
    params = jcnn.normalize_prototypes(params)
    aug = augment_options(config)

    def project(params, xb):
        h = jax.nn.relu(backbone.apply({"params": params["backbone"]}, xb))
        return proj.apply({"params": params["proj"]}, h)

    def scores_fn(params, xb):
        return protos.apply({"params": params["protos"]}, project(params, xb))

    scores_all = over_dataset(scores_fn, x)

    project_all = over_dataset(project, x)

    def loss_fn(params, batch_stats, extra, batch, key):
        k1, k2 = jax.random.split(key)
        s1 = scores_fn(params, augment_flat(k1, batch["x"], **aug))
        s2 = scores_fn(params, augment_flat(k2, batch["x"], **aug))
        loss = jaxclust.losses.swav_loss(
            jnp.stack([s1, s2]), temperature=config.temperature, epsilon=config.epsilon,
            num_steps=config.sinkhorn_steps)
        return loss, ({}, batch_stats)

    steps_per_epoch = data.n // config.batch_size
    total = phase_steps(config, config.epochs, steps_per_epoch)
    warm = min(config.freeze_prototypes_steps, max(total - 1, 0))
    opt = adam(config.lr, config.weight_decay)
    phases = [
        Phase("warmup", phase_steps(config, 1, warm) if warm else 0, opt, loss_fn,
              post_update_fn=jcnn.normalize_prototypes, trainable=lambda name: name != "protos"),
        Phase("swav", phase_steps(config, 1, total - warm), opt, loss_fn,
              post_update_fn=jcnn.normalize_prototypes),
    ]
    phases = [p for p in phases if p.num_steps > 0]

    def predict(state):
        if config.num_prototypes == config.k:
            return argmax_labels(scores_all(state.params))
        z = project_all(state.params)
        result = jaxclust.cluster.kmeans(z, k=config.k, key=jax.random.key(config.seed),
                                         n_init=10)
        return np.asarray(result.labels, np.int32)

    def embed(state):
        return np.asarray(project_all(state.params))

    return Recipe(phases, new_state(params, {}, {}, config.seed), predict, embed)
