"""P²OT: progressive partial optimal transport for imbalanced deep clustering.

Zhang, Ren, He, "P²OT: Progressive Partial Optimal Transport for Deep Imbalanced Clustering",
ICLR 2024, https://arxiv.org/abs/2401.09266 (METHODS.md §2.6, §3.8).

Phases:

1. ``pretext``: SimCLR (NT-Xent on two augmented views, τ = 0.5) trains the MLP backbone and a
   projection head. It stands in for the paper's self-supervised pretrained backbone (DINO
   ViT-B/16), which does not exist for MNIST.
2. ``cluster``: a cosine-classifier head (``jaxclust.nn.PrototypeHead``, logits
   ``⟨ĥ, ĉ_k⟩/τ``) on the backbone features; for each of two augmented views the pseudo-labels
   are the partial-OT plan of ``jaxclust.assign.p2ot`` (ε = 0.1, γ = 1), transporting a fraction
   ``ρ_t`` of the mass to real clusters, and every view predicts the other's plan
   (``jaxclust.losses.p2ot_loss``). ``ρ_t`` follows the paper's sigmoid ramp
   ``jaxclust.assign.rho_schedule`` (ρ₀ = 0.1 → 1) over the phase, computed inside the loss
   from the traced global step (no host sync).

Set ``imbalance_ratio`` (default 10 in ``experiments/configs/p2ot.py``) to train and evaluate
on the long-tailed subset of ``experiments.recipes.common.imbalanced_indices`` (class sizes
decaying geometrically from 500 to 50 on MNIST-5k, 2,044 images).

Simplified relative to the paper: MLP backbone on flattened images trained end to end (the
paper fine-tunes the last block of a pretrained ViT), digit augmentations (small affine warp,
Gaussian noise) instead of the ImageNet ones, one head, no memory of the previous 10 batches in
the OT problem, and a short schedule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.assign
import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    MLP, Recipe, adam, argmax_labels, augment_flat, augment_options, init_params, over_dataset,
    simclr_loss_fn)
from experiments.trainer import Data, Phase, TrainState, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    backbone = MLP(hidden=tuple(config.hidden), features=config.feature_dim)
    proj = jcnn.ProjectionHead(features=config.proj_dim)
    head = jcnn.PrototypeHead(num_prototypes=config.k, temperature=config.head_temperature)
    keys = jax.random.split(jax.random.key(config.seed), 3)
    h0 = jnp.zeros((1, config.feature_dim), x.dtype)
    params = {
        "backbone": init_params(backbone, keys[0], x[:1]),
        "proj": init_params(proj, keys[1], h0),
        "head": init_params(head, keys[2], h0),
    }
    extra = {}
    aug = augment_options(config)

    def features(params, xb):
        return jax.nn.relu(backbone.apply({"params": params["backbone"]}, xb))

    def project(params, xb):
        return proj.apply({"params": params["proj"]}, features(params, xb))

    def logits_fn(params, xb):
        return head.apply({"params": params["head"]}, features(params, xb))

    logits_all = over_dataset(logits_fn, x)

    features_all = over_dataset(features, x)

    steps_per_epoch = data.n // config.batch_size
    pretext_steps = phase_steps(config, config.pretext_epochs, steps_per_epoch)
    cluster_steps = phase_steps(config, config.cluster_epochs, steps_per_epoch)

    def cluster_loss(params, batch_stats, extra, batch, key):
        # ρ follows the schedule over the clustering phase, from the traced global step.
        rho = jaxclust.assign.rho_schedule(
            batch["step"] - pretext_steps, max(cluster_steps, 1), rho_0=config.rho_0,
            rho_max=config.rho_max, ramp=config.ramp).astype(jnp.float32)
        k1, k2 = jax.random.split(key)
        l1 = logits_fn(params, augment_flat(k1, batch["x"], **aug))
        l2 = logits_fn(params, augment_flat(k2, batch["x"], **aug))
        loss = jaxclust.losses.p2ot_loss(
            jnp.stack([l1, l2]), rho=rho, epsilon=config.epsilon, gamma=config.gamma,
            max_steps=config.ot_max_steps)
        return loss, ({"rho": rho}, batch_stats)

    phases = [
        Phase("pretext", pretext_steps, adam(config.pretext_lr),
              simclr_loss_fn(project, temperature=config.pretext_temperature, aug=aug)),
        Phase("cluster", cluster_steps, adam(config.lr, config.weight_decay), cluster_loss),
    ]
    phases = [p for p in phases if p.num_steps > 0]

    def predict(state):
        return argmax_labels(logits_all(state.params))

    def embed(state):
        return np.asarray(features_all(state.params))

    return Recipe(phases, new_state(params, {}, extra, config.seed), predict, embed)
