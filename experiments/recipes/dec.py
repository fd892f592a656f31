"""DEC and IDEC: autoencoder pretraining, k-means initialisation, then KL self-training.

Xie, Girshick, Farhadi, "Unsupervised Deep Embedding for Clustering Analysis", ICML 2016,
https://arxiv.org/abs/1511.06335; Guo, Gao, Liu, Yin, "Improved Deep Embedded Clustering with
Local Structure Preservation", IJCAI 2017 (IDEC: keep the decoder, ``L_rec + γ L_DEC``).

Phases (METHODS.md §3.1, §6.1):

1. ``pretrain``: the d-500-500-2000-10 autoencoder trained end to end on the mean squared
   reconstruction error (Adam), as ClustPy and most re-implementations do;
2. ``cluster``: centres from k-means (best of 20) on the embeddings, then the DEC loss
   ``KL(P‖Q)`` on the encoder and centres only (the decoder is discarded, as in the paper;
   IDEC keeps it and adds the reconstruction term) with the target ``P`` recomputed on the whole
   dataset every ``update_interval`` steps (``target="dataset"``, the papers'), or from each
   batch's own ``Q`` (``target="batch"``, as ClustPy and other re-implementations do;
   METHODS.md §3.1).

With ``config.augment`` (configs ``dec_da.py``, ``idec_da.py``) both phases see randomly warped
digits instead of the originals, as in DEC-DA (Guo, Zhu, Liu, Yin, "Deep Embedded Clustering with
Data Augmentation", ACML 2018, http://proceedings.mlr.press/v95/guo18b.html): the autoencoder
reconstructs the augmented image, and the clustering loss compares the augmented image's ``Q``
with the target ``P`` computed on the clean dataset.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.cluster
import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import (
    Recipe, adam, augment_flat, augment_options, in_chunks, over_dataset,
)
from experiments.trainer import Data, Phase, TrainState, new_state
from jaxclust import nn as jcnn


def build(config, data: Data) -> Recipe:
    if config.target not in ("dataset", "batch"):
        raise ValueError(f"config.target must be 'dataset' or 'batch', got {config.target!r}.")
    x = data.x.reshape(data.n, -1)
    inits = {"flax": jax.nn.initializers.lecun_normal(),
             # PyTorch's nn.Linear default, U(±1/√fan_in), as in ClustPy's autoencoder
             "pytorch": jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")}
    if config.init not in inits:
        raise ValueError(f"config.init must be one of {sorted(inits)}, got {config.init!r}.")
    activations = {"relu": jax.nn.relu, "leaky_relu": jax.nn.leaky_relu}  # slope 0.01
    if config.activation not in activations:
        raise ValueError(f"config.activation must be one of {sorted(activations)}, "
                         f"got {config.activation!r}.")
    model = jcnn.MLPAutoencoder(features=x.shape[1], hidden=tuple(config.hidden),
                                latent=config.latent, kernel_init=inits[config.init],
                                activation=activations[config.activation])
    key = jax.random.key(config.seed)
    # One flat group per layer (encoder_i, decoder_i) plus the centroids, so that DEC's
    # clustering phase can leave the decoder out of the gradient and the optimiser.

    def init(key, example):  # one compiled program (op by op, every draw compiles its own)
        params = dict(model.init(key, example)["params"])
        if config.init == "pytorch":  # nn.Linear's bias is U(±1/√fan_in) too
            bias_keys = jax.random.split(jax.random.fold_in(key, 1), len(params))
            params = {name: {**layer, "bias": jax.random.uniform(
                          k, layer["bias"].shape, layer["bias"].dtype, -1.0, 1.0)
                          / np.sqrt(layer["kernel"].shape[0])}
                      for k, (name, layer) in zip(bias_keys, sorted(params.items()))}
        return params

    params = jax.jit(init)(key, x[:1])
    params["centroids"] = jnp.zeros((config.k, config.latent), x.dtype)
    extra = {"p": jnp.full((data.n, config.k), 1.0 / config.k, x.dtype)}
    idec = config.method in ("idec", "idec_da")
    aug = augment_options(config) if config.augment else None

    if config.rec_reduction not in ("mean", "sum"):
        raise ValueError(f"config.rec_reduction must be 'mean' or 'sum', "
                         f"got {config.rec_reduction!r}.")
    # Per-sample squared error averaged over features (Keras' mse, IDEC's code) or summed over
    # them (ClustPy); either way averaged over the batch. With Adam the scale hardly matters for
    # pretraining, but it sets IDEC's balance between reconstruction and γ·KL.
    features_factor = x.shape[1] if config.rec_reduction == "sum" else 1

    def reconstruction(xb, x_hat):
        return features_factor * jaxclust.losses.reconstruction_loss(xb, x_hat).mean()

    def inputs(batch, key):
        xb = batch["x"].reshape(batch["x"].shape[0], -1)
        return xb if aug is None else augment_flat(key, xb, **aug)

    def autoencoder(params):
        return {"params": {name: v for name, v in params.items() if name != "centroids"}}

    def encode(params, xb):
        return model.apply(autoencoder(params), xb.reshape(xb.shape[0], -1),
                           method=jcnn.MLPAutoencoder.encode)

    embed_all = over_dataset(encode, x)

    def soft_assign(params, z):
        return jaxclust.losses.dec_soft_assignment(z, params["centroids"], alpha=config.alpha)

    # The dataset is an argument of the compiled functions below rather than closed over, which
    # would make it a 16 MB constant of each program (slow to compile, hash and load).
    def embed_rows(params, rows):
        return in_chunks(lambda xb: encode(params, xb), rows)

    hard_assign = jax.jit(
        lambda params, x: jnp.argmax(soft_assign(params, embed_rows(params, x)), axis=1))

    def pretrain_loss(params, batch_stats, extra, batch, key):
        xb = inputs(batch, key)
        _, x_hat = model.apply(autoencoder(params), xb)
        loss = reconstruction(xb, x_hat)
        return loss, ({}, batch_stats)

    def cluster_loss(params, batch_stats, extra, batch, key):
        xb = inputs(batch, key)
        if idec:
            z, x_hat = model.apply(autoencoder(params), xb)
        else:
            z = encode(params, xb)
        q = jaxclust.losses.dec_soft_assignment(z, params["centroids"], alpha=config.alpha)
        if config.target == "batch":  # f from this batch's q (ClustPy and other re-implementations)
            p = jax.lax.stop_gradient(jaxclust.losses.dec_target(q))
        else:  # the paper's: P over the whole dataset, refreshed every update_interval steps
            p = extra["p"][batch["index"]]
        kl = jaxclust.losses.dec_loss(q, p).mean()
        if not idec:
            return kl, ({"kl": kl}, batch_stats)
        rec = reconstruction(xb, x_hat)
        return rec + config.gamma * kl, ({"kl": kl, "rec": rec}, batch_stats)

    # The key is an argument (not a constant) so that every seed runs the same program, which
    # the persistent compilation cache then serves.
    kmeans_key = jax.random.key(config.seed + 1)
    run_kmeans = jax.jit(lambda params, x, key: jaxclust.cluster.kmeans(
        embed_rows(params, x), k=config.k, key=key, n_init=config.kmeans_n_init))

    def embedding_kmeans(params):
        return run_kmeans(params, x, kmeans_key)

    def init_centroids(state: TrainState, data: Data) -> TrainState:
        centroids = embedding_kmeans(state.params).centroids
        params = {**state.params, "centroids": centroids.astype(data.x.dtype)}
        return state._replace(params=params)

    def refresh_target(state: TrainState, data: Data):
        q = soft_assign(state.params, embed_all(state.params))
        return {"p": jaxclust.losses.dec_target(q)}

    steps_per_epoch = data.n // config.batch_size
    phases = [
        Phase("pretrain", phase_steps(config, config.pretrain_epochs, steps_per_epoch),
              adam(config.pretrain_lr), pretrain_loss),
        Phase("cluster", phase_steps(config, config.cluster_epochs, steps_per_epoch),
              adam(config.cluster_lr),
              cluster_loss, start_fn=init_centroids,
              refresh_every=config.update_interval if config.target == "dataset" else 0,
              refresh_fn=refresh_target,
              trainable=None if idec else (lambda name: not name.startswith("decoder"))),
    ]

    def predict(state: TrainState) -> np.ndarray:
        if int(state.step) <= phases[0].num_steps:  # pretrained only: k-means on the embedding
            return np.asarray(embedding_kmeans(state.params).labels, np.int32)
        return np.asarray(hard_assign(state.params, x), np.int32)

    def embed(state: TrainState) -> np.ndarray:
        return np.asarray(embed_all(state.params))

    return Recipe(phases, new_state(params, {}, extra, config.seed), predict, embed)
