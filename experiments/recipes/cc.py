"""Contrastive Clustering (CC): instance- and cluster-level contrast on two augmented views.

Li, Hu, Liu, Peng, Zhou, Peng, "Contrastive Clustering", AAAI 2021,
https://arxiv.org/abs/2009.09687 (METHODS.md §3.4).

One phase, trained from scratch as in the paper: a shared backbone, an instance head (MLP →
L2-normalised projection, NT-Xent over the 2B projections at τ_I = 0.5) and a cluster head (MLP
→ softmax over k, column NT-Xent at τ_C = 1 minus the entropy of the cluster marginals), summed
(``jaxclust.losses.cc_loss``). Clusters are the argmax of the cluster head on clean inputs.

Simplified relative to the paper: an MLP backbone on flattened images instead of ResNet-34,
digit augmentations (small affine warp, optional crop, Gaussian noise; no flips or colour
jitter), Adam at 1e-3 (the paper uses 3e-4 for 1,000 epochs) and a short schedule.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    MLP, Recipe, adam, init_params, argmax_labels, augment_flat, augment_options, over_dataset)
from experiments.trainer import Data, Phase, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    instance = jcnn.ProjectionHead(features=config.proj_dim, hidden=config.head_hidden)
    cluster = MLP(hidden=(config.head_hidden,), features=config.k)
    keys = jax.random.split(jax.random.key(config.seed), 3)
    h0 = jnp.zeros((1, config.feature_dim), x.dtype)
    params = {
        "backbone": init_params(backbone, keys[0], x[:1]),
        "instance": init_params(instance, keys[1], h0),
        "cluster": init_params(cluster, keys[2], h0),
    }
    aug = augment_options(config)

    def features(params, xb):
        return nn.relu(backbone.apply({"params": params["backbone"]}, xb))

    def heads(params, xb):
        h = features(params, xb)
        z = instance.apply({"params": params["instance"]}, h)
        logits = cluster.apply({"params": params["cluster"]}, h)
        return z, logits

    logits_all = over_dataset(lambda params, xb: heads(params, xb)[1], x)

    features_all = over_dataset(features, x)

    def loss_fn(params, batch_stats, extra, batch, key):
        k1, k2 = jax.random.split(key)
        z_a, l_a = heads(params, augment_flat(k1, batch["x"], **aug))
        z_b, l_b = heads(params, augment_flat(k2, batch["x"], **aug))
        out = jaxclust.losses.cc_loss(
            z_a, z_b, jax.nn.softmax(l_a), jax.nn.softmax(l_b),
            instance_temperature=config.instance_temperature,
            cluster_temperature=config.cluster_temperature)
        return out.total, ({"instance": out.instance, "cluster": out.cluster,
                            "entropy": out.entropy}, batch_stats)

    steps_per_epoch = data.n // config.batch_size
    phases = [Phase("cc", phase_steps(config, config.epochs, steps_per_epoch),
                    adam(config.lr, config.weight_decay), loss_fn)]

    def predict(state):
        return argmax_labels(logits_all(state.params))

    def embed(state):
        return np.asarray(features_all(state.params))

    return Recipe(phases, new_state(params, {}, {}, config.seed), predict, embed)
