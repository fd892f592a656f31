"""Supervised contrastive loss (SupCon, the ``L_out`` variant)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import ScalarLike
from jaxclust.losses._contrastive import (
    _check_temperature,
    _dot,
    _gather,
    _global_offset,
    _mask,
    _normalize,
    _positive_cross_entropy,
)


class SupConResult(NamedTuple):
    """Output of :func:`supcon`.

    Attributes:
      loss: mean of ``per_anchor`` over the anchors that have a positive, over the global batch;
        a scalar (0 when no anchor has a positive).
      per_anchor: ``L_out,i`` for every (sample, view) anchor, shape [n, v]; 0 for anchors that are
        excluded (invalid, or without a positive).
      has_positive: whether each anchor is valid and has at least one positive, bool [n, v].
      num_anchors: global number of anchors that enter ``loss``, int32 scalar.
    """

    loss: Float[Array, ""]
    per_anchor: Float[Array, "n v"]
    has_positive: Bool[Array, "n v"]
    num_anchors: Int[Array, ""]


def supcon(
    z: Float[Array, "n v d"],
    labels: Int[Array, " n"] | None = None,
    *,
    temperature: ScalarLike = 0.1,
    base_temperature: ScalarLike | None = None,
    normalize: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> SupConResult:
    r"""Supervised contrastive loss ``L_out`` over a multi-view batch.

    The batch ``I`` holds the ``N·V`` (sample, view) items. For anchor ``i``, ``A(i) = I∖{i}`` and
    ``P(i) = {p ∈ A(i): y_p = y_i}`` (other views of the same sample and every view of samples
    with the same label); with ``s_ij = ⟨ẑ_i, ẑ_j⟩/τ``,

    ``L_out,i = −(1/|P(i)|) Σ_{p∈P(i)} [s_ip − LSE_{a∈A(i)} s_ia]`` (Eq. 2 of the paper), and
    ``L = mean_{i: |P(i)|>0} L_out,i`` (METHODS.md §3.14). Anchors without a positive (a single
    view of a singleton label) are excluded and reported in ``has_positive``. With
    ``labels=None`` every sample is its own class and, with two views, the loss is NT-Xent.

    The loss is batch-coupled (a scalar over the global batch).

    Args:
      z: embeddings, shape [n, v, d] (``v`` views per sample; ``v = 1`` is allowed when labels
        provide positives).
      labels: integer class of each sample, shape [n]; negative labels mark padding (like
        ``where=False``). None: each sample is its own class (self-supervised SimCLR).
      temperature: ``τ > 0``, default 0.1 as in the paper. May be traced.
      base_temperature: if given, the loss is multiplied by ``τ / base_temperature``, as in the
        authors' code (which uses 0.07); None (default) leaves it unscaled.
      normalize: L2-normalise the embeddings first (the paper's projections are unit-norm).
      where: optional validity mask [n]; invalid samples are neither anchors nor candidates.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then ``n`` is the per-shard count, candidates and labels are gathered from every
        shard (differentiably) and ``loss``/``num_anchors`` are global, equal to the
        single-device values on the global batch. Under plain ``jax.jit`` on sharded arrays
        leave it None.

    Returns:
      A :class:`SupConResult`.

    Raises:
      TypeError: non-floating ``z``, non-integer ``labels``, non-boolean ``where``.
      ValueError: bad ranks or lengths, a non-positive temperature.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import supcon
      >>> z = jnp.array([[[1.0, 0.0]], [[1.0, 0.1]], [[0.0, 1.0]], [[0.1, 1.0]]])
      >>> out = supcon(z, jnp.array([0, 0, 1, 1]), temperature=0.5)
      >>> float(out.loss.round(4)), int(out.num_anchors)
      (0.2899, 4)

    References:
      Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
      https://arxiv.org/abs/2004.11362.
    """
    z = _checks.as_float_array(z, "z", 3, "[n, v, d]")
    n, v, _ = z.shape
    if labels is None:
        labels = _global_offset(n, axis_name) + jnp.arange(n, dtype=jnp.int32)
    else:
        labels = _checks.as_int_array(labels, "labels", 1, "[n]")
        _checks.check_same_leading([z, labels], ["z", "labels"])
    _check_temperature(temperature)
    if base_temperature is not None:
        _check_temperature(base_temperature, "base_temperature")
    valid = _mask(where, n, "where", "z") & (labels >= 0)
    if normalize:
        z = _normalize(z)
    z_all = _gather(z, axis_name)
    labels_all = _gather(labels, axis_name)
    valid_all = _gather(valid, axis_name)
    num = z_all.shape[0]
    anchors = z.reshape(n * v, -1)  # sample-major: item (i, a) is row i·v + a
    candidates = z_all.reshape(num * v, -1)
    anchor_label = jnp.repeat(labels, v)
    anchor_valid = jnp.repeat(valid, v)
    cand_label = jnp.repeat(labels_all, v)
    cand_valid = jnp.repeat(valid_all, v)
    self_col = _global_offset(n, axis_name) * v + jnp.arange(n * v)
    not_self = jnp.arange(num * v)[None, :] != self_col[:, None]
    keep = cand_valid[None, :] & not_self
    logits = jnp.where(keep, _dot(anchors, candidates) / temperature, -jnp.inf)
    positives = keep & (cand_label[None, :] == anchor_label[:, None])
    per_anchor, has_pos = _positive_cross_entropy(logits, positives, "mean")
    has_pos = has_pos & anchor_valid
    per_anchor = jnp.where(has_pos, per_anchor, 0.0)
    if base_temperature is not None:
        per_anchor = per_anchor * (temperature / base_temperature)
    total = _collectives.psum(jnp.sum(per_anchor), axis_name)
    count = _collectives.psum(jnp.sum(has_pos, dtype=jnp.int32), axis_name)
    loss = total / jnp.maximum(count, 1).astype(total.dtype)
    return SupConResult(loss, per_anchor.reshape(n, v), has_pos.reshape(n, v), count)
