"""Heads on top of an encoder: projections, prototypes, multi-head clustering, DEC's layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..losses import dec_soft_assignment

__all__ = [
    "ProjectionHead",
    "PrototypeHead",
    "normalize_prototypes",
    "ClusteringHeads",
    "DECClusteringLayer",
]

# Keeps ‖x‖ away from zero in L2 normalisation so that neither value nor gradient is NaN.
_NORM_EPS = 1e-12


def _l2_normalize(x, axis: int = -1):
    # rsqrt(max(‖x‖², eps²)): the zero vector maps to zero with a finite gradient.
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, _NORM_EPS**2))


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


class ProjectionHead(nn.Module):
    """MLP projection head of contrastive learning, optionally L2-normalised.

    ``num_layers - 1`` blocks ``Dense(hidden) → [BatchNorm] → ReLU`` then ``Dense(features)``.
    SimCLR: ``Dense(D) → ReLU → Dense(128)`` (the defaults with ``hidden=None`` meaning the input
    width); SwAV: ``hidden=2048, batch_norm=True``. The output is L2-normalised when
    ``normalize`` (default), as the contrastive and swapped-prediction losses expect.

    Attributes:
      features: output dimension; default 128.
      hidden: hidden width; ``None`` (default) uses the input width ``D``.
      num_layers: number of Dense layers (>= 1); default 2.
      batch_norm: BatchNorm after each hidden Dense (SwAV); default False (SimCLR).
      normalize: L2-normalise the output rows; default True.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import ProjectionHead
      >>> head = ProjectionHead(features=4)
      >>> h = jnp.ones((3, 8))
      >>> z = head.apply(head.init(jax.random.key(0), h), h)
      >>> z.shape, jnp.allclose(jnp.linalg.norm(z, axis=-1), 1.0)
      ((3, 4), Array(True, dtype=bool))

    References:
      T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple Framework for Contrastive
      Learning of Visual Representations", ICML 2020. https://arxiv.org/abs/2002.05709

      M. Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
      Assignments" (SwAV), NeurIPS 2020. https://arxiv.org/abs/2006.09882
    """

    features: int = 128
    hidden: int | None = None
    num_layers: int = 2
    batch_norm: bool = False
    normalize: bool = True

    @nn.compact
    def __call__(self, x: Float[Array, "n D"], *, train: bool = False) -> Float[Array, "n d"]:
        """Projects features [n, D] to [n, features]; ``train`` selects the BN mode."""
        _positive_int(self.features, "features")
        _positive_int(self.num_layers, "num_layers")
        hidden = x.shape[-1] if self.hidden is None else _positive_int(self.hidden, "hidden")
        h = x
        for i in range(self.num_layers - 1):
            h = nn.Dense(hidden, use_bias=not self.batch_norm, name=f"dense{i}")(h)
            if self.batch_norm:
                h = nn.BatchNorm(
                    use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn{i}"
                )(h)
            h = nn.relu(h)
        h = nn.Dense(self.features, name=f"dense{self.num_layers - 1}")(h)
        return _l2_normalize(h) if self.normalize else h


class _Prototypes(nn.Module):
    """Holds the prototype kernel [d, k] (the layout of a bias-free ``nn.Dense``)."""

    num_prototypes: int

    @nn.compact
    def __call__(self, d: int):
        return self.param("kernel", nn.initializers.lecun_normal(), (d, self.num_prototypes))


class PrototypeHead(nn.Module):
    """Cosine prototype head: ``logit_k = ⟨x/‖x‖, c_k/‖c_k‖⟩ / τ``.

    The prototypes ``c_k`` are the columns of the parameter ``["prototypes"]["kernel"]`` [d, k]
    (the layout of a bias-free ``Dense``). With ``normalize_weights=True`` (default) they are
    normalised in the forward pass (a cosine head, as P²OT). SwAV instead keeps them on the
    unit sphere by re-normalising the parameters after every optimiser step with
    ``normalize_prototypes`` and uses the raw dot product; set ``normalize_weights=False`` for
    that.

    Attributes:
      num_prototypes: number ``k`` of prototypes.
      temperature: ``τ > 0`` dividing the logits; default 1 (SwAV applies τ in its loss).
      normalize_inputs: L2-normalise the inputs; default True.
      normalize_weights: L2-normalise the prototypes in the forward pass; default True.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import PrototypeHead
      >>> head = PrototypeHead(num_prototypes=5)
      >>> z = jnp.ones((2, 3))
      >>> logits = head.apply(head.init(jax.random.key(0), z), z)
      >>> logits.shape, bool(jnp.all(jnp.abs(logits) <= 1 + 1e-6))
      ((2, 5), True)

    References:
      M. Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
      Assignments" (SwAV), NeurIPS 2020. https://arxiv.org/abs/2006.09882

      C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal Transport for Deep
      Imbalanced Clustering", ICLR 2024. https://arxiv.org/abs/2401.09266
    """

    num_prototypes: int
    temperature: float = 1.0
    normalize_inputs: bool = True
    normalize_weights: bool = True

    @nn.compact
    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, "n k"]:
        """Logits [n, k] of features [n, d]."""
        _positive_int(self.num_prototypes, "num_prototypes")
        if not float(self.temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}.")
        c = _Prototypes(self.num_prototypes, name="prototypes")(x.shape[-1])
        if self.normalize_inputs:
            x = _l2_normalize(x)
        if self.normalize_weights:
            c = _l2_normalize(c, axis=0)
        return jnp.matmul(x, c.astype(x.dtype)) / self.temperature


def normalize_prototypes(params: Any) -> Any:
    """Re-normalises every prototype vector in ``params`` to unit L2 norm (SwAV).

    Walks the parameter pytree and, for every sub-tree named ``"prototypes"`` (as created by
    ``PrototypeHead``) holding a ``"kernel"`` [d, k], divides each column by its norm; all
    other leaves are returned unchanged. SwAV applies this before every optimisation step so
    that the dot products with unit-norm features are cosine similarities. Pure and jittable.

    Args:
      params: a parameter pytree of nested mappings (e.g. ``state.params``).

    Returns:
      A pytree of the same structure with unit-norm prototype columns (a zero column stays 0).

    Raises:
      ValueError: if no ``"prototypes"`` kernel is found (likely the wrong pytree).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.nn import normalize_prototypes
      >>> params = {"head": {"prototypes": {"kernel": jnp.array([[3.0, 0.0], [4.0, 2.0]])}}}
      >>> normalize_prototypes(params)["head"]["prototypes"]["kernel"].round(3).tolist()
      [[0.6, 0.0], [0.8, 1.0]]

    References:
      M. Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
      Assignments" (SwAV), NeurIPS 2020, §4 / Appendix A. https://arxiv.org/abs/2006.09882
    """
    found = [0]

    def walk(tree):
        if not isinstance(tree, Mapping):
            return tree
        out = {}
        for name, sub in tree.items():
            if name == "prototypes" and isinstance(sub, Mapping) and "kernel" in sub:
                found[0] += 1
                sub = {**sub, "kernel": _l2_normalize(jnp.asarray(sub["kernel"]), axis=0)}
            else:
                sub = walk(sub)
            out[name] = sub
        return type(tree)(out) if not isinstance(tree, dict) else out

    result = walk(params)
    if not found[0]:
        raise ValueError(
            "params holds no 'prototypes' kernel; pass the parameters of a model containing a "
            "PrototypeHead."
        )
    return result


class ClusteringHeads(nn.Module):
    """``H`` linear clustering heads on shared features, returning logits.

    With an int ``num_clusters`` all heads have ``k`` outputs: the parameters are stacked
    (kernel [H, d, k], bias [H, k]) and the output is ``[H, n, k]``. With a sequence of sizes
    ``(k_1, .., k_H)`` (e.g. for over-clustering) a single ``Dense(Σ k_h)`` is split and a tuple
    of ``H`` arrays ``[n, k_h]`` is returned. Softmax, head selection (SCAN: the lowest loss)
    and aggregation are the caller's job.

    Attributes:
      num_clusters: ``k`` for every head, or the sizes of each head.
      num_heads: ``H`` when ``num_clusters`` is an int; default 1. Ignored otherwise.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import ClusteringHeads
      >>> heads = ClusteringHeads(num_clusters=10, num_heads=5)
      >>> h = jnp.ones((4, 16))
      >>> variables = jax.eval_shape(heads.init, jax.random.key(0), h)  # shapes only
      >>> jax.eval_shape(heads.apply, variables, h).shape
      (5, 4, 10)
      >>> uneven = ClusteringHeads(num_clusters=(10, 30))
      >>> variables = jax.eval_shape(uneven.init, jax.random.key(0), h)
      >>> [a.shape for a in jax.eval_shape(uneven.apply, variables, h)]
      [(4, 10), (4, 30)]

    References:
      W. Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020.
      https://arxiv.org/abs/2005.12320

      Y. M. Asano, C. Rupprecht and A. Vedaldi, "Self-labelling via simultaneous clustering
      and representation learning", ICLR 2020. https://arxiv.org/abs/1911.05371
    """

    num_clusters: int | Sequence[int]
    num_heads: int = 1

    @nn.compact
    def __call__(
        self, x: Float[Array, "n d"]
    ) -> Float[Array, "h n k"] | tuple[Float[Array, "n k"], ...]:
        """Logits of every head for features [n, d]."""
        if isinstance(self.num_clusters, int) and not isinstance(self.num_clusters, bool):
            k = _positive_int(self.num_clusters, "num_clusters")
            h = _positive_int(self.num_heads, "num_heads")
            d = x.shape[-1]
            # Each head is a Dense(d, k) with flax's default init (lecun_normal, zero bias).
            kernel = self.param(
                "kernel", nn.initializers.lecun_normal(batch_axis=(0,)), (h, d, k)
            )
            bias = self.param("bias", nn.initializers.zeros, (h, k))
            logits = jnp.einsum("nd,hdk->hnk", x, kernel.astype(x.dtype))
            return logits + bias[:, None, :].astype(x.dtype)
        sizes = tuple(self.num_clusters)
        if not sizes:
            raise ValueError("num_clusters must be a positive int or a non-empty sequence.")
        for s in sizes:
            _positive_int(s, "each entry of num_clusters")
        logits = nn.Dense(sum(sizes), name="dense")(x)
        bounds = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return tuple(jnp.split(logits, bounds, axis=-1))


class DECClusteringLayer(nn.Module):
    """DEC's clustering layer: learnable centroids and Student-t soft assignments ``q``.

    ``q_ij ∝ (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2)``, normalised over ``j`` (DEC Eq. 1), computed by
    ``jaxclust.losses.dec_soft_assignment`` (log domain, peak memory O(n·k)). The centroids
    ``"centroids"`` [k, d] are initialised randomly; DEC sets them from k-means on the
    embeddings (replace the leaf in the parameter pytree).

    Attributes:
      num_clusters: number ``k`` of centroids.
      alpha: degrees of freedom of the Student-t kernel; DEC's 1.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import DECClusteringLayer
      >>> layer = DECClusteringLayer(num_clusters=3)
      >>> z = jnp.ones((4, 2))
      >>> q = layer.apply(layer.init(jax.random.key(0), z), z)
      >>> q.shape, bool(jnp.allclose(q.sum(-1), 1.0))
      ((4, 3), True)

    References:
      J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for Clustering
      Analysis", ICML 2016, Eq. 1. https://arxiv.org/abs/1511.06335
    """

    num_clusters: int
    alpha: float = 1.0

    @nn.compact
    def __call__(self, z: Float[Array, "n d"]) -> Float[Array, "n k"]:
        """Soft assignments ``q`` [n, k] (rows sum to one) of embeddings [n, d]."""
        k = _positive_int(self.num_clusters, "num_clusters")
        if not float(self.alpha) > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha!r}.")
        if z.ndim != 2:
            raise ValueError(f"z must have rank 2 with shape [n, d], got {tuple(z.shape)}.")
        mu = self.param("centroids", nn.initializers.normal(1.0), (k, z.shape[-1]))
        return dec_soft_assignment(z, mu.astype(z.dtype), alpha=self.alpha)
