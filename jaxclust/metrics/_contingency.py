"""Contingency table of two labelings, the sufficient statistic of every count-based metric."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, Bool, Int

from .. import _collectives
from .._checks import (
    as_bool_array,
    as_int_array,
    check_positive_int,
    check_same_leading,
    is_concrete,
)

__all__ = ["contingency_matrix"]


def contingency_matrix(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, "num_classes num_clusters"]:
    """Counts of samples for every (class, cluster) pair.

    ``W[r, c] = #{i : labels_true[i] == r and labels_pred[i] == c}``, built with one
    ``segment_sum`` over the flat index ``r * num_clusters + c``. Samples whose class is outside
    ``[0, num_classes)`` or whose cluster is outside ``[0, num_clusters)`` (for example ``-1``
    padding) are dropped, as are samples with ``where[i] == False``.

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of rows R of the table (static: changing it recompiles).
      num_clusters: number of columns of the table (static: changing it recompiles).
      where: optional boolean mask of shape [n]; samples where it is False are not counted.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the table counts the samples of every shard
        (a ``psum``). Under plain ``jax.jit`` on sharded arrays leave it None and XLA inserts
        the collectives.

    Returns:
      The table, int32 of shape [num_classes, num_clusters]. Its row sums are the class sizes,
      its column sums the cluster sizes and its total the number of samples counted.

    Raises:
      TypeError: if a label array is not integer, ``where`` is not boolean, or ``num_classes``
        / ``num_clusters`` is not a Python int.
      ValueError: if an array is not of rank 1, the lengths differ, or ``num_classes`` /
        ``num_clusters`` is < 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 1, -1])
      >>> y_hat = jnp.array([1, 1, 1, 0, 0, 0])
      >>> jaxclust.metrics.contingency_matrix(y, y_hat, num_classes=2, num_clusters=2).tolist()
      [[0, 2], [2, 1]]
    """
    labels_true, labels_pred, where = check_labelings(labels_true, labels_pred, where)
    num_classes = check_positive_int(num_classes, "num_classes")
    num_clusters = check_positive_int(num_clusters, "num_clusters")
    return contingency_core(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)


def check_labelings(labels_true, labels_pred, where):
    """Checks dtypes, ranks and lengths of two labelings and an optional mask."""
    labels_true = as_int_array(labels_true, "labels_true")
    labels_pred = as_int_array(labels_pred, "labels_pred")
    check_same_leading([labels_true, labels_pred], ["labels_true", "labels_pred"])
    if labels_true.shape[0] == 0:
        raise ValueError("labels_true and labels_pred must be non-empty, got 0 samples.")
    if where is not None:
        where = check_where(where, labels_true.shape[0], "labels_true")
    return labels_true, labels_pred, where


def check_where(where, n: int, other: str):
    """Checks that ``where`` is a boolean mask of shape [n] (``other`` names the [n] array)."""
    return as_bool_array(where, "where", n=n, other=other)


def in_range(labels: Array, num: int) -> Array:
    """Whether each label lies in ``[0, num)``, compared in the labels' own dtype."""
    return (labels >= 0) & (labels < num)


@functools.partial(jax.jit, static_argnums=(2, 3, 5))
def contingency_core(labels_true, labels_pred, num_classes, num_clusters, where, axis_name):
    """The table from checked labels; ``num_classes`` and ``num_clusters`` are Python ints."""
    keep = in_range(labels_true, num_classes) & in_range(labels_pred, num_clusters)
    if where is not None:
        keep = keep & where
    # Dropped samples go to segment R*C, which is out of range and therefore discarded; the
    # comparison above ran in the labels' dtype, so huge int64 labels cannot wrap into range.
    r = jnp.where(keep, labels_true, 0).astype(jnp.int32)
    c = jnp.where(keep, labels_pred, 0).astype(jnp.int32)
    flat = jnp.where(keep, r * num_clusters + c, num_classes * num_clusters)
    counts = _segment_count(keep.astype(jnp.int32), flat, num_classes * num_clusters)
    counts = counts.reshape(num_classes, num_clusters)
    if axis_name is not None:
        counts = jax.lax.psum(counts, axis_name)
    return counts


def _segment_count(weights: Array, segments: Array, size: int) -> Array:
    """``segment_sum`` of ``weights``; out-of-range segment ids are dropped."""
    return _collectives.segment_sum(weights, segments, size)


class Encoded(NamedTuple):
    """A labeling as values in ``[0, num)``, anything else being dropped as padding."""

    labels: Array | np.ndarray  # NumPy int32 codes when remapped on the host
    num: int


def _traced_error(names: list[str], num_names: list[str]) -> ValueError:
    nums = " and ".join(f"{k}=<int>" for k in num_names)
    ranges = ", ".join(f"{a} in [0, {k})" for a, k in zip(names, num_names))
    return ValueError(
        f"{' and '.join(names)} can only be remapped to 0..u-1 (np.unique) when the inputs are "
        f"concrete, but they are traced (e.g. inside jax.jit, jax.vmap or jax.shard_map); pass "
        f"{nums} (static) with {ranges} (values outside are dropped as padding)."
    )


def encode_labels(
    arrays: dict[str, Array],
    nums: dict[str, int | None],
    num_names: dict[str, str],
    where: Array | None,
) -> tuple[dict[str, Encoded], np.ndarray | None]:
    """Maps each labeling whose ``num`` is None to ``0..u-1`` with ``np.unique`` on the host.

    Labelings with a given ``num`` are kept as they are (values outside ``[0, num)`` are
    padding). The distinct values are those of the samples that are counted: ``where`` is True
    and every labeling with a given ``num`` is in range, so that masking equals slicing.
    Remapping needs concrete arrays; traced ones raise ``ValueError`` naming the labelings and
    the ``num_*`` arguments to pass instead.

    Returns the encoded labelings (remapped ones as NumPy int32 codes, -1 where not counted)
    and the NumPy mask of counted samples, or None when nothing was remapped (then nothing was
    read on the host and the inputs may be traced).
    """
    out: dict[str, Encoded | None] = {}
    for name, labels in arrays.items():
        num = nums[name]
        if num is not None:
            num = check_positive_int(num, num_names[name])
        out[name] = None if num is None else Encoded(labels, num)
    missing = [name for name, enc in out.items() if enc is None]
    if not missing:
        return out, None
    inputs = list(arrays.values()) + ([] if where is None else [where])
    if not all(is_concrete(v) for v in inputs):
        raise _traced_error(missing, [num_names[name] for name in missing])
    n = next(iter(arrays.values())).shape[0]
    keep = np.ones((n,), bool) if where is None else np.array(where, bool)
    for name, enc in out.items():
        if enc is not None:
            values = np.asarray(arrays[name])
            keep &= (values >= 0) & (values < enc.num)
    for name, labels in arrays.items():
        if out[name] is not None:
            continue
        values = np.asarray(labels)
        uniques = np.unique(values[keep])
        codes = np.searchsorted(uniques, values).astype(np.int32)
        codes = np.where(keep, codes, -1).astype(np.int32)
        # An empty selection still gets one (empty) row or column so shapes stay non-zero.
        out[name] = Encoded(codes, max(int(uniques.size), 1))
    return out, keep


def host_contingency(
    labels_true: np.ndarray,
    labels_pred: np.ndarray,
    num_classes: int,
    num_clusters: int,
    keep: np.ndarray,
) -> np.ndarray:
    """The table of the samples in ``keep`` (whose labels are in range), counted with NumPy."""
    r = np.asarray(labels_true)[keep].astype(np.int64)
    c = np.asarray(labels_pred)[keep].astype(np.int64)
    counts = np.bincount(r * num_clusters + c, minlength=num_classes * num_clusters)
    return counts.reshape(num_classes, num_clusters)
