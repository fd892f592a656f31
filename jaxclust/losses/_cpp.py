"""CPP: lossy coding length of a partition, and choosing the number of clusters by it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from jaxclust import _checks
from jaxclust._typing import ScalarLike
from jaxclust.losses._rate_reduction import (
    _check_eps_sq,
    _check_features,
    _check_membership,
    _class_terms,
)

__all__ = ["CodingLengthResult", "coding_length", "estimate_num_clusters_coding_length"]


class CodingLengthResult(NamedTuple):
    """Output of :func:`estimate_num_clusters_coding_length`.

    Attributes:
      num_clusters: the chosen ``K* = argmin_K L(K)``, int32 scalar (the first on ties).
      best_index: index of the chosen candidate in ``label_sets``, int32 scalar.
      coding_lengths: ``L(K)`` of every candidate partition in nats, shape [s].
      candidates: the number of clusters ``K`` of every candidate, int32, shape [s].
    """

    num_clusters: Int[Array, ""]
    best_index: Int[Array, ""]
    coding_lengths: Float[Array, " s"]
    candidates: Int[Array, " s"]


def _coding_length(z, membership, eps_sq, axis_name, chunk_size):
    d = z.shape[1]
    counts, logdets = _class_terms(z, membership, eps_sq, axis_name, chunk_size)
    total = jnp.sum(counts)
    present = counts > 0
    safe = jnp.where(present, counts, 1.0)
    # Ma et al. (2007), Eq. (13) in nats: (m_k + d)/2 · ln det(...) codes the vectors of
    # cluster k; −m_k ln(m_k/N) codes their membership. Empty clusters contribute 0.
    terms = 0.5 * (counts + d) * logdets - counts * jnp.log(safe / jnp.where(total > 0, total, 1.0))
    return jnp.sum(jnp.where(present, terms, 0.0))


def coding_length(
    z: Float[Array, "n d"],
    membership: Float[Array, "n k"],
    *,
    eps_sq: ScalarLike = 0.1,
    chunk_size: int | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Lossy coding length ``L = Σ_k [((m_k+d)/2) ln det(I + (d/(e m_k)) Z_kᵀZ_k) − m_k ln(m_k/N)]``.

    ``m_k = Σ_i Π_ik`` is the mass of cluster ``k`` and ``N = Σ_k m_k`` the total mass, so rows
    with an all-zero membership (e.g. ``jax.nn.one_hot(-1, k)`` for padding) are left out. With
    soft memberships ``Z_kᵀZ_k`` becomes ``Zᵀ diag(Π_k) Z``. Empty clusters contribute 0. Natural
    logarithms are used in both terms, which rescales Ma et al.'s bit count and leaves the
    ``argmin`` over partitions unchanged. The default ``eps_sq = 0.1`` is the CPP reference
    value put directly in the denominator (see :func:`jaxclust.losses.coding_rate`).

    Args:
      z: features, rows are samples, shape [n, d].
      membership: non-negative memberships, shape [n, k]; ``jax.nn.one_hot(labels, k)`` for a
        hard partition.
      eps_sq: ``e > 0`` in the denominator (default 0.1, the CPP reference).
      chunk_size: cluster block size for the log-determinants (static), or None for all at once.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; Gram matrices and masses are summed with ``psum``.

    Returns:
      The coding length in nats, scalar.

    Raises:
      ValueError: if shapes disagree, inputs hold NaN/Inf or negative memberships (when
        concrete), or ``eps_sq`` is not a finite positive scalar.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.losses import coding_length
      >>> z = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
      >>> good = coding_length(z, jax.nn.one_hot(jnp.array([0, 0, 1, 1]), 2))
      >>> bad = coding_length(z, jax.nn.one_hot(jnp.array([0, 1, 0, 1]), 2))
      >>> bool(good < bad)
      True

    References:
      Ma, Derksen, Hong, Wright, "Segmentation of Multivariate Mixed Data via Lossy Data Coding
      and Compression", IEEE TPAMI 29(9), 2007.
      Chu et al., "Image Clustering via the Principle of Rate Reduction in the Age of Pretrained
      Models", ICLR 2024, https://arxiv.org/abs/2306.05272.
    """
    z = _check_features(z)
    membership = _check_membership(membership, z.shape[0])
    _check_eps_sq(eps_sq)
    if chunk_size is not None:
        chunk_size = _checks.check_positive_int(chunk_size, "chunk_size")
    return _coding_length(z, membership, jnp.asarray(eps_sq, z.dtype), axis_name, chunk_size)


def estimate_num_clusters_coding_length(
    z: Float[Array, "n d"],
    label_sets: Sequence[Int[Array, " n"]],
    *,
    num_clusters: Sequence[int] | None = None,
    eps_sq: ScalarLike = 0.1,
    axis_name: str | None = None,
) -> CodingLengthResult:
    """CPP's choice of the number of clusters: the candidate partition of least coding length.

    Every candidate labelling (in CPP: spectral clustering of MLC's membership ``Π``, computed
    with ``epsilon=0.15``, for each ``K`` of a grid such as {5, 8, 9, 10, 15, 20, 30, 50}) is
    scored by :func:`coding_length`, and ``K* = argmin_K L(K)`` is returned with the curve.
    Labels ``-1`` mark padding or unassigned rows and are left out.

    Args:
      z: features, rows are samples, shape [n, d]; CPP uses its learned (or CLIP) features.
      label_sets: ``s`` candidate labellings, each int, shape [n], values in ``[-1, K_s)``.
      num_clusters: the ``K_s`` of each candidate (static). If None, ``K_s = max(labels) + 1``
        read from concrete labels (which then must not be traced).
      eps_sq: ``e > 0`` in the denominator (default 0.1, the CPP reference).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis (each labelling then holds this shard's rows).

    Returns:
      A :class:`CodingLengthResult` ``(num_clusters, best_index, coding_lengths, candidates)``.

    Raises:
      ValueError: if ``label_sets`` is empty, a labelling has the wrong shape, ``num_clusters``
        has the wrong length, or ``num_clusters`` is None with traced labels.
      TypeError: if a labelling is not integer or ``z`` not floating.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import estimate_num_clusters_coding_length
      >>> z = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]] * 4)
      >>> cands = [jnp.zeros(16, jnp.int32), jnp.array([0, 0, 1, 1] * 4), jnp.arange(16) % 4]
      >>> int(estimate_num_clusters_coding_length(z, cands).num_clusters)
      2

    References:
      Chu et al., "Image Clustering via the Principle of Rate Reduction in the Age of Pretrained
      Models", ICLR 2024, https://arxiv.org/abs/2306.05272.
      Ma, Derksen, Hong, Wright, "Segmentation of Multivariate Mixed Data via Lossy Data Coding
      and Compression", IEEE TPAMI 29(9), 2007.
    """
    z = _check_features(z)
    _check_eps_sq(eps_sq)
    label_sets = list(label_sets)
    if not label_sets:
        raise ValueError("label_sets must hold at least one candidate labelling, got none.")
    labels = []
    for i, lab in enumerate(label_sets):
        lab = _checks.as_int_array(lab, f"label_sets[{i}]", ndim=1, shape="[n]")
        if lab.shape[0] != z.shape[0]:
            raise ValueError(
                f"label_sets[{i}] must have shape [n] with n={z.shape[0]} to match z, got "
                f"shape {tuple(lab.shape)}."
            )
        labels.append(lab)
    if num_clusters is None:
        if not all(_checks.is_concrete(lab) for lab in labels):
            raise ValueError(
                "num_clusters must be given when label_sets are traced (e.g. under jax.jit)."
            )
        num_clusters = [max(int(np.asarray(lab).max(initial=-1)) + 1, 1) for lab in labels]
    else:
        num_clusters = [
            _checks.check_positive_int(k, f"num_clusters[{i}]") for i, k in enumerate(num_clusters)
        ]
        if len(num_clusters) != len(labels):
            raise ValueError(
                f"num_clusters must have one entry per labelling ({len(labels)}), got "
                f"{len(num_clusters)}."
            )
    e = jnp.asarray(eps_sq, z.dtype)
    lengths = jnp.stack(
        [
            _coding_length(z, jax.nn.one_hot(lab, k, dtype=z.dtype), e, axis_name, None)
            for lab, k in zip(labels, num_clusters)
        ]
    )
    candidates = jnp.asarray(num_clusters, jnp.int32)
    best = jnp.argmin(lengths).astype(jnp.int32)
    return CodingLengthResult(candidates[best], best, lengths, candidates)
