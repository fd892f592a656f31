"""DEPICT: a softmax clustering head on a denoising autoencoder, with balanced targets.

Ghasedi Dizaji, Herandi, Deng, Cai, Huang, "Deep Clustering via Joint Convolutional Autoencoder
Embedding and Relative Entropy Minimization", ICCV 2017, https://arxiv.org/abs/1704.06327
(METHODS.md §3.2).

Model: an MLP encoder ``d → hidden… → latent`` (ReLU, linear embedding), a softmax head
``Dense(k)`` on the embedding, and a mirrored decoder. The *clean* path runs the encoder on the
input; the *corrupted* path adds Gaussian noise (std ``noise_std``) to the input and to every
hidden activation, as DEPICT's noisy encoder (to the embedding too only if ``corrupt_latent``:
noise of that size on the 10-d embedding swamped the cluster structure in our runs). The
decoder reconstructs every encoder layer from the corrupted embedding, and the reconstruction
loss is DEPICT's ladder-style ``Σ_l w_l ‖h_l − ĥ_l‖² / dim(h_l)`` between clean activations
(``h_0 = x``, held fixed) and decoder outputs, with ``w = 1`` for the input and
``ladder_weight`` for the hidden layers (our choice; the paper weights layers equally).

Phases:

1. ``pretrain``: the reconstruction loss alone (a denoising autoencoder). DEPICT's code also
   pretrains the autoencoder before clustering.
2. ``cluster``: at its start the head is initialised from k-means on the clean embeddings
   (``W = 2μ/T``, ``b = −‖μ‖²/T`` with ``T`` the mean squared distance to the nearest centroid,
   so that the softmax is a Gaussian posterior around the centroids; DEPICT's code fits the
   head to k-means labels instead); then ``L_E + λ L_R`` with ``L_E`` the cross-entropy of the
   corrupted-path prediction to the target ``q ∝ p / (Σ_i p_i)^{1/2}`` of the clean path
   (``jaxclust.losses.depict_target`` / ``depict_loss``), the targets recomputed on the whole
   dataset every ``update_interval`` steps (targets and parameters updated alternately).

Simplified relative to the paper: an MLP instead of the convolutional autoencoder, Adam instead
of SGD, one noise level for every layer, and a short schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.cluster
import jaxclust.losses
from experiments.configs.common import phase_steps
from experiments.recipes.common import Recipe, adam, argmax_labels, init_params, over_dataset
from experiments.trainer import Data, Phase, TrainState, new_state


class LadderAutoencoder(nn.Module):
    """Encoder with clean/corrupted paths, a softmax head and a mirrored decoder."""

    features: int
    hidden: Sequence[int]
    latent: int
    k: int

    def setup(self):
        widths = tuple(self.hidden) + (self.latent,)
        self.encoder = [nn.Dense(w, name=f"encoder_{i}") for i, w in enumerate(widths)]
        back = tuple(reversed(tuple(self.hidden))) + (self.features,)
        self.decoder = [nn.Dense(w, name=f"decoder_{i}") for i, w in enumerate(back)]
        self.head = nn.Dense(self.k, name="head")

    def encode(self, x, key=None, noise_std=0.0, corrupt_latent=False):
        """Activations ``[h_0 = x, h_1, …, h_L = z]`` (noisy when ``key`` is given; the
        embedding ``z`` only if ``corrupt_latent``), logits."""
        def corrupt(h, i):
            if key is None or (i == len(self.encoder) and not corrupt_latent):
                return h
            return h + noise_std * jax.random.normal(jax.random.fold_in(key, i), h.shape, h.dtype)

        h = corrupt(x, 0)
        acts = [h]
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1:
                h = nn.relu(h)
            h = corrupt(h, i + 1)
            acts.append(h)
        return acts, self.head(h)

    def decode(self, z):
        """Reconstructions of ``[h_{L−1}, …, h_0]`` from the embedding."""
        outs, h = [], z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = nn.relu(h)
            outs.append(h)
        return outs

    def __call__(self, x):
        acts, logits = self.encode(x)
        return acts, logits, self.decode(acts[-1])


def build(config, data: Data) -> Recipe:
    x = data.x.reshape(data.n, -1)
    model = LadderAutoencoder(features=x.shape[1], hidden=tuple(config.hidden),
                              latent=config.latent, k=config.k)
    params = init_params(model, jax.random.key(config.seed), x[:1])
    extra = {"q": jnp.full((data.n, config.k), 1.0 / config.k, x.dtype)}

    def clean(params, xb):
        acts, logits = model.apply({"params": params}, xb, method=LadderAutoencoder.encode)
        return acts, logits

    def reconstruction(params, clean_acts, noisy_z):
        outs = model.apply({"params": params}, noisy_z, method=LadderAutoencoder.decode)
        targets = list(reversed(clean_acts[:-1]))  # h_{L−1}, …, h_0
        weights = [config.ladder_weight] * (len(targets) - 1) + [1.0]  # input layer: 1
        return sum(w * jnp.mean(jnp.sum((t - o) ** 2, axis=1)) / t.shape[1]
                   for w, t, o in zip(weights, targets, outs, strict=True))

    def forward(params, xb, key):
        acts, _ = clean(params, xb)
        noisy_acts, noisy_logits = model.apply(
            {"params": params}, xb, key, config.noise_std, config.corrupt_latent,
            method=LadderAutoencoder.encode)
        rec = reconstruction(params, [jax.lax.stop_gradient(a) for a in acts], noisy_acts[-1])
        return rec, noisy_logits

    def pretrain_loss(params, batch_stats, extra, batch, key):
        rec, _ = forward(params, batch["x"], key)
        return rec, ({}, batch_stats)

    def cluster_loss(params, batch_stats, extra, batch, key):
        rec, noisy_logits = forward(params, batch["x"], key)
        q = extra["q"][batch["index"]]
        ce = jaxclust.losses.depict_loss(noisy_logits, q).mean()
        return ce + config.rec_weight * rec, ({"ce": ce, "rec": rec}, batch_stats)

    embed_all = over_dataset(lambda params, xb: clean(params, xb)[0][-1], x)
    logits_all = over_dataset(lambda params, xb: clean(params, xb)[1], x)
    target = jax.jit(jaxclust.losses.depict_target)

    def init_head(state: TrainState, data: Data) -> TrainState:
        z = embed_all(state.params)
        result = jaxclust.cluster.kmeans(z, k=config.k, key=jax.random.key(config.seed + 1),
                                         n_init=config.kmeans_n_init)
        mu = result.centroids.astype(z.dtype)
        temp = jnp.maximum(result.inertia / z.shape[0], 1e-6)
        head = {"kernel": (2 * mu / temp).T, "bias": -jnp.sum(mu * mu, axis=1) / temp}
        return state._replace(params={**state.params, "head": head})

    def refresh(state: TrainState, data: Data):
        return {"q": target(logits_all(state.params))}

    steps_per_epoch = data.n // config.batch_size
    phases = [
        Phase("pretrain", phase_steps(config, config.pretrain_epochs, steps_per_epoch),
              adam(config.pretrain_lr), pretrain_loss),
        Phase("cluster", phase_steps(config, config.cluster_epochs, steps_per_epoch),
              adam(config.lr), cluster_loss, start_fn=init_head,
              refresh_every=config.update_interval, refresh_fn=refresh),
    ]

    def predict(state):
        return argmax_labels(logits_all(state.params))

    def embed(state):
        return np.asarray(embed_all(state.params))

    return Recipe(phases, new_state(params, {}, extra, config.seed), predict, embed)
