"""MLC (manifold linearising and clustering) with the MCR² coding-rate objective.

Yu, Chan, You, Song, Ma, "Learning Diverse and Discriminative Representations via the Principle
of Maximal Coding Rate Reduction", NeurIPS 2020, https://arxiv.org/abs/2006.08558 (MCR²,
METHODS.md §3.10); Ding, Tong, Chan, Ding, Wright, Ma, Haeffele, Vidal, "Unsupervised Manifold
Linearizing and Clustering", ICCV 2023, https://arxiv.org/abs/2301.01805 (MLC, §3.11).

Phases:

1. ``pretext``: SimCLR (NT-Xent on two augmented views) trains the MLP backbone. It stands in
   for the frozen self-supervised features (MoCo v2 / CLIP) that MLC starts from.
2. ``warmup``: with the backbone frozen, an MLP neck and two linear heads produce L2-normalised
   subspace features ``Z`` and cluster features ``C``; only ``−R(Z)`` is optimised
   (``jaxclust.losses.mlc_loss(..., warmup=True)``; MLC's CIFAR recipe: 50 steps).
3. ``mlc``: the full objective ``−R(Z) + γ R_c(Z|Π) + (γ_Π/2)‖Π‖²_F`` with the doubly stochastic
   membership ``Π`` of ``|C Cᵀ|`` (ε = 0.175, 5 half-steps), γ = 1, γ_Π = 0.05, e = ε² = 0.1,
   on two augmented views concatenated into one batch (each image's views then share a
   membership, as augmentation invariance).

Labels (``label_method``): ``"spectral"``, MLC's, is spectral clustering
(``jaxclust.cluster.spectral_clustering``, precomputed affinity) of ``(Π + Πᵀ)/2`` with ``Π``
computed on the cluster features of the whole clean dataset (an n × n eigenproblem: minutes on
a loaded 2-core CPU for n = 5,000); ``"kmeans"`` (the config's default, a cheap stand-in) is
spherical k-means on the cluster features ``C``.

Simplified relative to the paper: an MLP backbone pretrained here by SimCLR on MNIST-5k instead
of a frozen ResNet/ViT, a 512-wide neck without BatchNorm (MLC: 4096 with BN), 32-d heads (MLC:
128), Adam, digit augmentations and a short schedule.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.assign
import jaxclust.cluster
import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    MLP, Recipe, adam, init_params, augment_flat, augment_options, normalize, over_dataset,
    simclr_loss_fn)
from experiments.trainer import Data, Phase, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    proj = jcnn.ProjectionHead(features=config.proj_dim)
    neck = MLP(hidden=(config.neck_hidden,), features=2 * config.head_dim)
    keys = jax.random.split(jax.random.key(config.seed), 3)
    h0 = jnp.zeros((1, config.feature_dim), x.dtype)
    params = {
        "backbone": init_params(backbone, keys[0], x[:1]),
        "proj": init_params(proj, keys[1], h0),
        "neck": init_params(neck, keys[2], h0),
    }
    aug = augment_options(config)

    def features(params, xb):
        return nn.relu(backbone.apply({"params": params["backbone"]}, xb))

    def project(params, xb):
        return proj.apply({"params": params["proj"]}, features(params, xb))

    def heads(params, xb):
        # The neck's last Dense holds both linear heads: Z = out[:, :d], C = out[:, d:].
        out = neck.apply({"params": params["neck"]}, features(params, xb))
        d = config.head_dim
        return normalize(out[:, :d]), normalize(out[:, d:])

    def mlc_fn(warmup):
        def loss_fn(params, batch_stats, extra, batch, key):
            k1, k2 = jax.random.split(key)
            xb = jnp.concatenate([augment_flat(k1, batch["x"], **aug),
                                  augment_flat(k2, batch["x"], **aug)])
            z, c = heads(params, xb)
            out = jaxclust.losses.mlc_loss(
                z, c, gamma=config.gamma, gamma_pi=config.gamma_pi, eps_sq=config.eps_sq,
                epsilon=config.epsilon, warmup=warmup)
            return out.loss, ({"rate": out.rate, "class_rate": out.class_rate}, batch_stats)

        return loss_fn

    cluster_features = over_dataset(lambda params, xb: heads(params, xb)[1], x)
    subspace_all = over_dataset(lambda params, xb: heads(params, xb)[0], x)
    membership = jax.jit(functools.partial(jaxclust.assign.doubly_stochastic_membership,
                                           epsilon=config.epsilon))

    steps_per_epoch = data.n // config.batch_size
    heads_only = lambda name: name == "neck"  # noqa: E731  (the backbone stays frozen)
    phases = [
        Phase("pretext", phase_steps(config, config.pretext_epochs, steps_per_epoch),
              adam(config.pretext_lr),
              simclr_loss_fn(project, temperature=config.pretext_temperature, aug=aug)),
        Phase("warmup", phase_steps(config, 1, config.warmup_steps),
              adam(config.lr), mlc_fn(True), trainable=heads_only),
        Phase("mlc", phase_steps(config, config.epochs, steps_per_epoch),
              adam(config.lr), mlc_fn(False), trainable=heads_only),
    ]
    phases = [p for p in phases if p.num_steps > 0]

    def predict(state):
        c = cluster_features(state.params)
        key = jax.random.key(config.seed)
        if config.label_method == "kmeans":  # cheap stand-in: spherical k-means on C
            result = jaxclust.cluster.kmeans(c, k=config.k, key=key, n_init=10, spherical=True)
            return np.asarray(result.labels, np.int32)
        pi = membership(jnp.abs(c @ c.T))
        result = jaxclust.cluster.spectral_clustering(
            (pi + pi.T) / 2, k=config.k, key=key, affinity="precomputed")
        return np.asarray(result.labels, np.int32)

    def embed(state):
        return np.asarray(subspace_all(state.params))

    return Recipe(phases, new_state(params, {}, {}, config.seed), predict, embed)
