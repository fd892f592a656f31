"""What every recipe returns, and helpers shared by several recipes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
import optax

import jaxclust.data
from experiments.trainer import Phase, TrainState


@dataclasses.dataclass
class Recipe:
    """A method ready to train.

    Attributes:
      phases: the training phases, in order.
      state: the initial :class:`TrainState`.
      predict: ``state -> labels`` (int numpy array over the whole dataset).
      embed: ``state -> features`` used for the 2-D PCA plot (numpy [n, d]).
    """

    phases: Sequence[Phase]
    state: TrainState
    predict: Callable[[TrainState], np.ndarray]
    embed: Callable[[TrainState], np.ndarray]


def in_chunks(fn: Callable, x: jax.Array, chunk: int = 1024) -> jax.Array:
    """``fn`` applied to row chunks of ``x`` (one compiled function; the last chunk padded)."""
    n = x.shape[0]
    pad = (-n) % chunk
    xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    out = jax.lax.map(fn, xp.reshape((-1, chunk) + x.shape[1:]))
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)


def init_params(module: nn.Module, key: jax.Array, example: jax.Array) -> dict:
    """``module``'s freshly initialised parameters, from one compiled ``module.init`` (run op
    by op, every layer's initialiser would compile on its own: seconds on a GPU)."""
    return jax.jit(module.init)(key, example)["params"]


def adam(lr: float, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """Adam (or AdamW when ``weight_decay`` > 0), the optimiser of the peer implementations."""
    return optax.adamw(lr, weight_decay=weight_decay) if weight_decay else optax.adam(lr)


# ----------------------------------------------------------------------------------------------
# Helpers of the self-supervised recipes (SeLa, SwAV, P²OT, CC, SCAN, MLC, DEPICT).


def imbalanced_indices(y: np.ndarray, ratio: float, seed: int = 0) -> np.ndarray:
    """Rows of a long-tailed subset of a labelled dataset (imbalance ratio ``ratio``).

    Classes are ranked by label value; class of rank ``r`` (of ``C``) keeps
    ``round(n_max · ratio^(−r/(C−1)))`` rows drawn without replacement (seeded), where
    ``n_max`` is the smallest class size, so the counts decay geometrically from ``n_max`` to
    ``n_max / ratio`` (the CIFAR-10-LT construction used by P²OT). ``ratio <= 1`` keeps all
    rows. Returns sorted row indices.
    """
    y = np.asarray(y)
    if ratio <= 1:
        return np.arange(len(y))
    classes = np.unique(y)
    n_max = min(int((y == c).sum()) for c in classes)
    rng = np.random.default_rng(seed)
    keep = []
    for r, c in enumerate(classes):
        count = max(1, int(round(n_max * ratio ** (-r / max(len(classes) - 1, 1)))))
        rows = np.flatnonzero(y == c)
        keep.append(rng.choice(rows, size=count, replace=False))
    return np.sort(np.concatenate(keep))


def image_shape(features: int) -> tuple[int, int, int]:
    """``(h, w, 1)`` of a flattened square grey image with ``features`` pixels (784 → 28×28)."""
    side = int(round(features ** 0.5))
    if side * side != features:
        raise ValueError(f"cannot view {features} features as a square grey image.")
    return side, side, 1


def augment_flat(key: jax.Array, x: jax.Array, *, degrees: float = 15.0,
                 translate: float = 0.1, zoom: tuple[float, float] = (0.85, 1.15),
                 crop_scale: tuple[float, float] | None = None,
                 noise_std: float = 0.1) -> jax.Array:
    """Digit-friendly augmentations of flattened grey images [n, h·w]: random crop (optional),
    small affine warp (rotation, shift, zoom) and Gaussian pixel noise, one key per image
    (``jaxclust.data.augment``; no flips or colour jitter, which do not suit digits)."""
    shape = image_shape(x.shape[1])
    images = x.reshape((x.shape[0],) + shape)
    out = jaxclust.data.augment(
        key, images, crop_scale=crop_scale, crop_ratio=(0.8, 1.25), degrees=degrees,
        translate=translate, zoom=tuple(zoom), flip=False, jitter_probability=0.0,
        grayscale_probability=0.0, noise_std=noise_std)
    return out.reshape(x.shape)


def augment_options(config, prefix: str = "aug") -> dict:
    """The ``augment_flat`` keyword arguments stored in ``config`` under ``<prefix>_*``."""
    crop = config.get(f"{prefix}_crop_scale", 0.0)
    zoom = config.get(f"{prefix}_zoom", 0.15)
    return {
        "degrees": float(config.get(f"{prefix}_degrees", 15.0)),
        "translate": float(config.get(f"{prefix}_translate", 0.1)),
        "zoom": (1.0 - zoom, 1.0 + zoom),
        "crop_scale": (float(crop), 1.0) if crop else None,
        "noise_std": float(config.get(f"{prefix}_noise", 0.1)),
    }


class MLP(nn.Module):
    """``Dense → ReLU`` blocks of widths ``hidden`` then a linear ``Dense(features)`` (the MLP
    backbone the recipes use on flattened images instead of the papers' ResNets)."""

    hidden: Sequence[int] = (512, 512)
    features: int = 128

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = jax.nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.features)(x)


def normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def argmax_labels(logits: jax.Array) -> np.ndarray:
    """Host int32 labels from logits [n, k]."""
    return np.asarray(jnp.argmax(logits, axis=1), np.int32)


def simclr_loss_fn(project: Callable, *, temperature: float, aug: dict) -> Callable:
    """A SimCLR pretext ``loss_fn``: two augmented views of the batch, ``project(params, x)``
    → features, mean NT-Xent (``jaxclust.losses.nt_xent``) at ``temperature``."""
    import jaxclust.losses

    def loss_fn(params, batch_stats, extra, batch, key):
        k1, k2 = jax.random.split(key)
        x = batch["x"]
        z1 = project(params, augment_flat(k1, x, **aug))
        z2 = project(params, augment_flat(k2, x, **aug))
        loss = jaxclust.losses.nt_xent(z1, z2, temperature=temperature).mean()
        return loss, ({}, batch_stats)

    return loss_fn


def over_dataset(fn: Callable, x: jax.Array, chunk: int = 1024) -> Callable:
    """``params -> fn(params, x)`` over all rows of ``x`` in chunks, jitted with ``x`` passed as
    an argument (closing over it would make XLA constant-fold the padded dataset)."""
    run = jax.jit(lambda params, xs: in_chunks(lambda xb: fn(params, xb), xs, chunk))
    return lambda params: run(params, x)
