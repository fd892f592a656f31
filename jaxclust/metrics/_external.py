"""External clustering metrics: agreement between predicted clusters and ground-truth classes.

Every metric here is a function of the contingency table ``W`` (see
:func:`jaxclust.metrics.contingency_matrix`), with row sums ``a_r`` (class sizes), column sums
``b_c`` (cluster sizes) and total ``N`` (METHODS.md §4).

Labels are handled in one of two ways, chosen per labeling:

* ``num_classes`` / ``num_clusters`` None (the default): labels may be any integers, for example
  ``{3, 7, 100}`` or negative ones, as in scikit-learn. They are remapped to ``0..u-1`` on the
  host with ``np.unique``, which needs concrete arrays: inside ``jax.jit``, ``jax.vmap`` or
  ``jax.shard_map`` a ``ValueError`` asks for ``num_classes`` / ``num_clusters`` instead.
* ``num_classes`` / ``num_clusters`` given (static Python ints): labels are used as they are and
  values outside ``[0, num)`` (for example ``-1`` padding of a fixed-size batch) are dropped.
  With both given the metrics are jit-able and do not retrace for fixed shapes.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special
from jaxtyping import Array, Bool, Float, Int

from .._checks import check_choice, check_positive_int
from ._contingency import check_labelings, contingency_core, encode_labels, host_contingency

__all__ = [
    "accuracy",
    "many_to_one_accuracy",
    "purity",
    "match_clusters_to_classes",
    "NovelClassAccuracy",
    "novel_class_accuracy",
    "nmi",
    "ami",
    "ari",
]

_AVERAGE_METHODS = ("arithmetic", "geometric", "min", "max")


def _float_dtype():
    """float64 when ``jax_enable_x64`` is on, else float32."""
    return jnp.result_type(float)


def _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name):
    """Checked, remapped labels -> int32 contingency table."""
    labels_true, labels_pred, where = check_labelings(labels_true, labels_pred, where)
    enc, keep = encode_labels(
        {"labels_true": labels_true, "labels_pred": labels_pred},
        {"labels_true": num_classes, "labels_pred": num_clusters},
        {"labels_true": "num_classes", "labels_pred": "num_clusters"},
        where,
    )
    t, p = enc["labels_true"], enc["labels_pred"]
    if keep is None:
        return contingency_core(t.labels, p.labels, t.num, p.num, where, axis_name)
    # Labels were remapped, so every input is concrete and the table is counted on the host.
    # It is padded to power-of-two sizes of at least 8 (empty rows and columns change no
    # metric) so that eager calls on new label sets reuse the compiled metric.
    table = host_contingency(t.labels, p.labels, t.num, p.num, keep)
    rows, cols = (max(8, 1 << (size - 1).bit_length()) for size in table.shape)
    table = np.pad(table, ((0, rows - table.shape[0]), (0, cols - table.shape[1])))
    return jnp.asarray(table, jnp.int32)


# --------------------------------------------------------------------------------------------
# Matching accuracies.


def _hungarian_host(table: np.ndarray) -> np.ndarray:
    """Cluster -> class map maximising the matched count (-1 for clusters left unmatched)."""
    rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(table), maximize=True)
    mapping = np.full((table.shape[1],), -1, np.int32)
    mapping[cols] = rows
    return mapping


def _hungarian(table: Int[Array, "r c"]) -> Int[Array, " c"]:
    if not isinstance(table, jax.core.Tracer):
        # Eager call: solve on the host directly (a callback on a sharded array cannot be lowered).
        return jnp.asarray(_hungarian_host(np.asarray(table)))
    return jax.pure_callback(
        _hungarian_host,
        jax.ShapeDtypeStruct((table.shape[1],), jnp.int32),
        table,
        vmap_method="sequential",
    )


@jax.jit
def _matched_fraction(table: Int[Array, "r c"], mapping: Int[Array, " c"]) -> Float[Array, ""]:
    hits = jnp.take_along_axis(table, jnp.maximum(mapping, 0)[None, :], axis=0)[0]
    hits = jnp.where(mapping >= 0, hits, 0)
    dtype = _float_dtype()
    # max(total, 1): a fully masked input scores 0 rather than NaN.
    return jnp.sum(hits).astype(dtype) / jnp.maximum(jnp.sum(table), 1).astype(dtype)


def accuracy(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Clustering accuracy (ACC) under the best one-to-one cluster-to-class matching.

    ``ACC = max_σ (1/N) Σ_c W[σ(c), c]`` over injective maps ``σ`` from clusters to classes.
    When there are more clusters than classes, the clusters left unmatched count as errors; use
    :func:`many_to_one_accuracy` to score over-clustering instead.

    The matching (Kuhn's Hungarian method) runs on the host:
    ``scipy.optimize.linear_sum_assignment`` is called through ``jax.pure_callback`` on the small
    ``[num_classes, num_clusters]`` contingency table, so it works under ``jit``, ``vmap`` and
    ``shard_map`` (the table, not the samples, crosses to the host) but needs a Python host at
    run time and is not differentiable.

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar in [0, 1]; 0 when ``where`` masks out every sample.

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if an array is not of rank 1, the lengths differ, or labels that need
        remapping are traced (pass ``num_classes`` / ``num_clusters``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 2, 2])
      >>> y_hat = jnp.array([7, 7, 3, 3, 5, 3])
      >>> print(f"{float(jaxclust.metrics.accuracy(y, y_hat)):.3f}")
      0.833

    References:
      Kuhn, "The Hungarian method for the assignment problem", Naval Research Logistics
      Quarterly 2 (1955), https://doi.org/10.1002/nav.3800020109. Xie, Girshick and Farhadi,
      "Unsupervised deep embedding for clustering analysis", ICML 2016 (ACC as used in deep
      clustering), https://arxiv.org/abs/1511.06335.
    """
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _matched_fraction(table, _hungarian(table))


def match_clusters_to_classes(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Int[Array, " num_clusters"]:
    """The one-to-one cluster-to-class matching that :func:`accuracy` scores.

    ``mapping[c]`` is the class matched to cluster ``c``, or ``-1`` when there are more clusters
    than classes and ``c`` is left unmatched. ``mapping[labels_pred]`` (where ``labels_pred >= 0``)
    translates predictions into classes, e.g. to draw a confusion matrix whose diagonal is the
    matched part. Ties, including empty clusters, are broken by SciPy's solver.

    ``num_classes`` and ``num_clusters`` are required here, unlike in the metrics, because the
    result is indexed by cluster label and holds class labels: both must already be
    ``0..num-1``. The matching runs on the host through ``jax.pure_callback`` (see
    :func:`accuracy`).

    Args:
      labels_true: ground-truth classes in ``[0, num_classes)``, integer array of shape [n];
        other values are dropped as padding.
      labels_pred: predicted clusters in ``[0, num_clusters)``, integer array of shape [n];
        other values are dropped as padding.
      num_classes: number of classes (static: changing it recompiles).
      num_clusters: number of clusters (static: changing it recompiles).
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the matching uses every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      int32 array of shape [num_clusters] with values in ``[-1, num_classes)``.

    Raises:
      TypeError: if labels are not integer, ``where`` is not boolean, or ``num_classes`` /
        ``num_clusters`` is not a Python int.
      ValueError: if an array is not of rank 1, the lengths differ, or ``num_classes`` /
        ``num_clusters`` is < 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 1])
      >>> y_hat = jnp.array([2, 2, 0, 0, 1])
      >>> jaxclust.metrics.match_clusters_to_classes(
      ...     y, y_hat, num_classes=2, num_clusters=3).tolist()
      [1, -1, 0]

    References:
      Kuhn, "The Hungarian method for the assignment problem", Naval Research Logistics
      Quarterly 2 (1955), https://doi.org/10.1002/nav.3800020109.
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    num_clusters = check_positive_int(num_clusters, "num_clusters")
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _hungarian(table)


class NovelClassAccuracy(NamedTuple):
    """Output of :func:`novel_class_accuracy`: Hungarian accuracy on three sample subsets.

    Attributes:
      all: accuracy over every sample, scalar.
      known: accuracy over the samples whose true class is known (``< num_known``), scalar.
      novel: accuracy over the samples whose true class is novel (``>= num_known``), scalar.
    """

    all: Float[Array, ""]
    known: Float[Array, ""]
    novel: Float[Array, ""]


@functools.partial(jax.jit, static_argnames="num_known")
def _split_accuracy(table, mapping, *, num_known: int) -> NovelClassAccuracy:
    dtype = _float_dtype()
    hits = jnp.take_along_axis(table, jnp.maximum(mapping, 0)[None, :], axis=0)[0]
    hits = jnp.where(mapping >= 0, hits, 0)
    matched_known = jnp.maximum(mapping, 0) < num_known
    class_sizes = jnp.sum(table, axis=1)
    known_size = jnp.sum(class_sizes[:num_known])
    novel_size = jnp.sum(class_sizes[num_known:])
    known_hits = jnp.sum(jnp.where(matched_known, hits, 0))
    novel_hits = jnp.sum(hits) - known_hits

    def frac(a, b):  # max(b, 1): an empty subset scores 0 rather than NaN
        return a.astype(dtype) / jnp.maximum(b, 1).astype(dtype)

    return NovelClassAccuracy(
        frac(jnp.sum(hits), jnp.sum(table)), frac(known_hits, known_size),
        frac(novel_hits, novel_size),
    )


def novel_class_accuracy(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_known: int,
    num_classes: int,
    num_clusters: int,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> NovelClassAccuracy:
    """Clustering accuracy on all, known and novel classes, as generalized category discovery reports.

    One Hungarian matching of clusters to classes is computed over *all* samples (the "v2"
    protocol of Vaze et al.); the accuracy of that single matching is then reported over every
    sample, over the samples of the known classes ``[0, num_known)`` and over those of the novel
    classes ``[num_known, num_classes)``. ``all`` equals :func:`accuracy`.

    Args:
      labels_true: ground-truth classes in ``[0, num_classes)``, int, shape [n]; known classes
        come first.
      labels_pred: predicted clusters in ``[0, num_clusters)``, int, shape [n].
      num_known: number of known classes, ``0 <= num_known <= num_classes`` (static).
      num_classes: number of classes (static).
      num_clusters: number of clusters (static).
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; the matching uses every shard. Under plain ``jax.jit`` leave it None.

    Returns:
      A :class:`NovelClassAccuracy` of three scalars in ``[0, 1]`` (0 for an empty subset).

    Raises:
      TypeError: if labels are not integer or a count is not a Python int.
      ValueError: if shapes differ or ``num_known`` is not in ``[0, num_classes]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 2, 2])      # class 0 known, classes 1 and 2 novel
      >>> y_hat = jnp.array([1, 1, 0, 0, 2, 0])
      >>> acc = jaxclust.metrics.novel_class_accuracy(
      ...     y, y_hat, num_known=1, num_classes=3, num_clusters=3)
      >>> print(f"{float(acc.all):.3f} {float(acc.known):.3f} {float(acc.novel):.3f}")
      0.833 1.000 0.750

    References:
      Vaze, Han, Vedaldi, Zisserman, "Generalized Category Discovery", CVPR 2022,
      https://arxiv.org/abs/2201.02609 (Section 4, evaluation protocol).
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    num_clusters = check_positive_int(num_clusters, "num_clusters")
    num_known = check_positive_int(num_known, "num_known", minimum=0)
    if num_known > num_classes:
        raise ValueError(
            f"num_known must be in [0, num_classes] = [0, {num_classes}], got {num_known}."
        )
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _split_accuracy(table, _hungarian(table), num_known=num_known)


@jax.jit
def _many_to_one(table: Int[Array, "r c"]) -> Float[Array, ""]:
    dtype = _float_dtype()
    return jnp.sum(jnp.max(table, axis=0)).astype(dtype) / jnp.maximum(jnp.sum(table), 1).astype(dtype)


def many_to_one_accuracy(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Accuracy when every cluster is mapped to its majority class (for over-clustering).

    ``(1/N) Σ_c max_r W[r, c]``: several clusters may map to the same class, so it never
    decreases when clusters are split and equals 1 for all-singleton clusters. It is the same
    quantity as :func:`purity`. Fully jit-able when both ``num_*`` are given (no host callback).

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar in [0, 1]; 0 when ``where`` masks out every sample.

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if an array is not of rank 1, the lengths differ, or labels that need
        remapping are traced (pass ``num_classes`` / ``num_clusters``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 0, 1, 1, 1])
      >>> y_hat = jnp.array([0, 1, 1, 2, 2, 3])
      >>> print(f"{float(jaxclust.metrics.many_to_one_accuracy(y, y_hat)):.3f}")
      1.000

    References:
      Ji, Henriques and Vedaldi, "Invariant information clustering for unsupervised image
      classification and segmentation", ICCV 2019 (over-clustering evaluation),
      https://arxiv.org/abs/1807.06653.
    """
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _many_to_one(table)


def purity(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Cluster purity ``(1/N) Σ_c max_r W[r, c]``, identical to :func:`many_to_one_accuracy`.

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar in [0, 1]; 0 when ``where`` masks out every sample.

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if an array is not of rank 1, the lengths differ, or labels that need
        remapping are traced (pass ``num_classes`` / ``num_clusters``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 1, 2])
      >>> y_hat = jnp.array([0, 0, 0, 1, 1, 1])
      >>> print(f"{float(jaxclust.metrics.purity(y, y_hat)):.3f}")
      0.667

    References:
      Manning, Raghavan and Schütze, "Introduction to Information Retrieval", Cambridge
      University Press (2008), §16.3, https://nlp.stanford.edu/IR-book/.
    """
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _many_to_one(table)


# --------------------------------------------------------------------------------------------
# Information-theoretic scores.


def _generalized_average(u, v, average_method: str):
    """The mean ``M(u, v)`` of METHODS.md §4.2; works on NumPy floats and JAX arrays alike."""
    xp = jnp if isinstance(u, jax.Array) else np
    if average_method == "arithmetic":
        return (u + v) / 2
    if average_method == "geometric":
        return xp.sqrt(u * v)
    if average_method == "min":
        return xp.minimum(u, v)
    return xp.maximum(u, v)


def _entropy(counts: Float[Array, " k"], total: Float[Array, ""]) -> Float[Array, ""]:
    """``-Σ p ln p`` with ``p = counts / total`` over the non-zero counts."""
    pos = counts > 0
    p = jnp.where(pos, counts, 1) / total
    return -jnp.sum(jnp.where(pos, p * jnp.log(p), 0))


@functools.partial(jax.jit, static_argnums=1)
def _nmi_from_table(table: Int[Array, "r c"], average_method: str) -> Float[Array, ""]:
    w = table.astype(_float_dtype())
    a, b = jnp.sum(w, axis=1), jnp.sum(w, axis=0)
    total = jnp.sum(a)
    pos = w > 0
    # ln(N W / (a b)) as ln(W / a) - ln(b / N): both ratios are O(1), so float32 keeps ~1e-7
    # absolute accuracy per term instead of losing digits to ln N - ln a cancellation.
    safe = jnp.where(pos, w, 1)
    log_ratio = jnp.log(safe / jnp.where(pos, a[:, None], 1)) - jnp.log(
        jnp.where(pos, b[None, :], 1) / total
    )
    mi = jnp.maximum(jnp.sum(jnp.where(pos, (safe / total) * log_ratio, 0)), 0)
    h_true, h_pred = _entropy(a, total), _entropy(b, total)
    normalizer = _generalized_average(h_true, h_pred, average_method)
    rows, cols = jnp.sum(a > 0), jnp.sum(b > 0)
    # I <= min(H(Y), H(Ŷ)) <= M, so NMI <= 1; clipping removes an ulp of rounding above 1.
    value = jnp.minimum(mi / jnp.where(normalizer > 0, normalizer, 1), 1)
    # A single-cluster labeling has zero entropy, so I = 0 exactly (scikit-learn's conventions).
    value = jnp.where((rows <= 1) | (cols <= 1) | (mi == 0), 0.0, value)
    return jnp.where((rows <= 1) & (cols <= 1), 1.0, value).astype(w.dtype)


def nmi(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
    average_method: str = "arithmetic",
) -> Float[Array, ""]:
    """Normalized mutual information ``I(Y; Ŷ) / M(H(Y), H(Ŷ))``.

    ``I = Σ_rc (W_rc/N) ln(N W_rc / (a_r b_c))`` and ``H`` are computed in the default float
    dtype (float64 with ``jax_enable_x64``, else float32, accurate to about 1e-6 for
    ``N < 2**24``) from the exact int32 table; the log base cancels. Conventions follow
    scikit-learn: 1.0 when both labelings have a single (or no) cluster, 0.0 when exactly one
    of them has a single cluster or when ``I = 0``.

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.
      average_method: the mean ``M``, one of "arithmetic" (scikit-learn's default),
        "geometric", "min" or "max".

    Returns:
      Scalar in [0, 1].

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if ``average_method`` is unknown, an array is not of rank 1, the lengths
        differ, or labels that need remapping are traced (pass ``num_classes`` /
        ``num_clusters``).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1, 2, 2])
      >>> print(f"{float(jaxclust.metrics.nmi(y, (y + 1) % 3)):.3f}")
      1.000
      >>> f = jax.jit(lambda a, b: jaxclust.metrics.nmi(a, b, num_classes=3, num_clusters=2))
      >>> print(f"{float(f(y, jnp.array([0, 0, 0, 1, 1, 1]))):.3f}")
      0.516

    References:
      Strehl and Ghosh, "Cluster ensembles: a knowledge reuse framework for combining multiple
      partitions", JMLR 3 (2002), https://www.jmlr.org/papers/v3/strehl02a.html. Vinh, Epps and
      Bailey, "Information theoretic measures for clusterings comparison", JMLR 11 (2010),
      https://jmlr.org/papers/v11/vinhnguyen10a.html.
    """
    check_choice(average_method, "average_method", _AVERAGE_METHODS)
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _nmi_from_table(table, average_method)


def _host_entropy(counts: np.ndarray, total: float) -> float:
    p = counts / total
    return float(-np.sum(p * np.log(p)))


def _expected_mutual_info(a: np.ndarray, b: np.ndarray, total: int) -> float:
    """``E[I]`` under the hypergeometric model (Eq. 24a of Vinh et al. 2010), in float64.

    Rows (columns) of equal size contribute equal terms, so the sum runs over the distinct row
    sizes times the distinct column sizes, weighted by multiplicities: at most ``sqrt(2N)``
    distinct sizes on each side, and for one row size ``s`` the inner range over ``n`` has at
    most ``Σ_{distinct b} min(s, b) <= N`` terms.
    """
    ua, ca = np.unique(a, return_counts=True)
    ub, cb = np.unique(b, return_counts=True)
    big_n = float(total)
    log_n = np.log(big_n)
    gammaln = scipy.special.gammaln
    lg_total = gammaln(big_n + 1)
    emi = 0.0
    for s, mult in zip(ua.astype(np.float64), ca.astype(np.float64)):
        lo = np.maximum(1.0, s + ub - big_n)
        hi = np.minimum(s, ub)
        lengths = np.maximum(hi - lo + 1, 0).astype(np.int64)
        if lengths.sum() == 0:
            continue
        starts = np.cumsum(lengths) - lengths
        bb = np.repeat(ub.astype(np.float64), lengths)
        ww = np.repeat(cb.astype(np.float64), lengths)
        nn = np.repeat(lo, lengths) + (np.arange(lengths.sum()) - np.repeat(starts, lengths))
        # log of the hypergeometric probability of n_rc = nn given margins s, bb and N.
        log_p = (
            gammaln(s + 1)
            + gammaln(bb + 1)
            + gammaln(big_n - s + 1)
            + gammaln(big_n - bb + 1)
            - lg_total
            - gammaln(nn + 1)
            - gammaln(s - nn + 1)
            - gammaln(bb - nn + 1)
            - gammaln(big_n - s - bb + nn + 1)
        )
        terms = (nn / big_n) * (log_n + np.log(nn) - np.log(s) - np.log(bb)) * np.exp(log_p)
        emi += mult * float(np.sum(ww * terms))
    return emi


def _ami_host(table: np.ndarray, average_method: str, dtype) -> np.ndarray:
    """AMI of one contingency table, in float64 NumPy (host side of ``pure_callback``)."""
    w = np.asarray(table, np.int64)
    a_all, b_all = w.sum(axis=1), w.sum(axis=0)
    total = int(a_all.sum())
    a, b = a_all[a_all > 0], b_all[b_all > 0]
    if a.size <= 1 and b.size <= 1:
        return np.asarray(1.0, dtype)
    if a.size <= 1 or b.size <= 1:
        return np.asarray(0.0, dtype)
    h_true, h_pred = _host_entropy(a, total), _host_entropy(b, total)
    if np.all(a == 1) or np.all(b == 1):
        # All-singleton classes (or clusters): every table with these margins is a relabelling
        # of this one, so I is constant and E[I] = I = the other side's entropy, exactly. Using
        # the same float for I, E[I] and that entropy keeps (I - E[I]) / (M - E[I]) from
        # dividing rounding noise by rounding noise (scikit-learn's 0/0 convention gives 1.0).
        mi = h_pred if np.all(a == 1) else h_true
        emi = mi
    else:
        nz = w[w > 0].astype(np.float64)
        rows, cols = np.nonzero(w)
        ratio = np.log(nz / a_all[rows]) - np.log(b_all[cols] / total)
        mi = max(float(np.sum(nz / total * ratio)), 0.0)
        emi = _expected_mutual_info(a, b, total)
    normalizer = float(_generalized_average(h_true, h_pred, average_method))
    eps = np.finfo(np.float64).eps
    # scikit-learn's conventions: E[I] may exceed M (or I) by rounding, so numerator and
    # denominator are pushed away from zero keeping their sign; 0/0 reads as 1.
    denominator = normalizer - emi
    denominator = min(denominator, -eps) if denominator < 0 else max(denominator, eps)
    numerator = mi - emi
    numerator = min(numerator, -eps) if numerator < 0 else max(numerator, eps)
    return np.asarray(numerator / denominator, dtype)


def ami(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
    average_method: str = "arithmetic",
) -> Float[Array, ""]:
    """Adjusted mutual information ``(I - E[I]) / (M(H(Y), H(Ŷ)) - E[I])``.

    ``E[I]`` is the expected mutual information under the hypergeometric (permutation) model
    with the observed class and cluster sizes. Its range of summation depends on the data, so
    after the contingency table is built on device the rest runs on the host: float64 NumPy
    with ``scipy.special.gammaln``, through ``jax.pure_callback`` on the
    ``[num_classes, num_clusters]`` table (works under ``jit``, ``vmap`` and ``shard_map``;
    not differentiable). Host time is ``O(sqrt(N) * N)`` at worst, far less for few clusters.

    Conventions follow scikit-learn: 1.0 when both labelings have a single (or no) cluster,
    0.0 when exactly one does, and near-zero numerator and denominator are clamped to
    ``±eps`` so that a perfect match of all-singleton labelings gives 1.0. With one labeling
    all singletons, ``I = E[I]`` exactly, which gives about 0 (1.0 for ``average_method="min"``,
    where the denominator vanishes too; scikit-learn's answer there depends on rounding).

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.
      average_method: the mean ``M``, one of "arithmetic" (scikit-learn's default),
        "geometric", "min" or "max".

    Returns:
      Scalar, at most 1 and about 0 for independent labelings (it can be negative).

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if ``average_method`` is unknown, an array is not of rank 1, the lengths
        differ, or labels that need remapping are traced (pass ``num_classes`` /
        ``num_clusters``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 0, 1, 1, 1])
      >>> print(f"{float(jaxclust.metrics.ami(y, jnp.array([5, 5, 5, 9, 9, 9]))):.3f}")
      1.000
      >>> print(f"{float(jaxclust.metrics.ami(y, jnp.array([0, 0, 1, 1, 2, 2]))):.3f}")
      0.299

    References:
      Vinh, Epps and Bailey, "Information theoretic measures for clusterings comparison:
      variants, properties, normalization and correction for chance", JMLR 11 (2010),
      https://jmlr.org/papers/v11/vinhnguyen10a.html.
    """
    check_choice(average_method, "average_method", _AVERAGE_METHODS)
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    dtype = _float_dtype()
    return jax.pure_callback(
        functools.partial(_ami_host, average_method=average_method, dtype=dtype),
        jax.ShapeDtypeStruct((), dtype),
        table,
        vmap_method="sequential",
    )


@jax.jit
def _ari_from_table(table: Int[Array, "r c"]) -> Float[Array, ""]:
    w = table.astype(_float_dtype())
    a, b = jnp.sum(w, axis=1), jnp.sum(w, axis=0)
    total = jnp.sum(a)
    sq = w * w
    sum_sq = jnp.sum(sq)
    # Per column (row) differences: for identical partitions each column holds one non-zero
    # entry, so b_c² - Σ_r W_rc² is exactly 0 in any precision and the special case is exact.
    fp = jnp.sum(b * b - jnp.sum(sq, axis=0))
    fn = jnp.sum(a * a - jnp.sum(sq, axis=1))
    tp = sum_sq - total
    tn = total * total - fp - fn - sum_sq
    numerator = 2.0 * (tp * tn - fn * fp)
    denominator = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    special = ((fp == 0) & (fn == 0)) | (denominator == 0)
    return jnp.where(special, 1.0, numerator / jnp.where(special, 1.0, denominator)).astype(
        w.dtype
    )


def ari(
    labels_true: Int[Array, " n"],
    labels_pred: Int[Array, " n"],
    *,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Adjusted Rand index: the Rand index corrected for chance (Hubert and Arabie 1985).

    Computed as scikit-learn does, from the pair-confusion counts (each doubled)
    ``tp = Σ W² - N``, ``fp = Σ_c (b_c² - Σ_r W_rc²)``, ``fn = Σ_r (a_r² - Σ_c W_rc²)``
    and ``tn = N² - tp - fp - fn - N``:
    ``ARI = 2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn))``, which equals
    ``(S_W - E) / (½(S_a + S_b) - E)``. When ``fp = fn = 0`` (identical partitions, a single
    sample, no sample) the denominator vanishes and the result is 1.0. Pair counts reach
    ``N²``, so they are formed in the default float dtype (float64 with ``jax_enable_x64``,
    exact for ``N < 9e7``; float32 otherwise, about 1e-6 accurate for ``N < 2**24``), never in
    int32.

    Args:
      labels_true: ground-truth classes, integer array of shape [n].
      labels_pred: predicted clusters, integer array of shape [n].
      num_classes: number of classes (static: changing it recompiles). If None, labels_true may
        hold any integers and is remapped on the host (needs a concrete array); if given, values
        outside ``[0, num_classes)`` are dropped as padding.
      num_clusters: the same for labels_pred.
      where: optional boolean mask of shape [n]; samples where it is False are ignored.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh
        axis; then n is the per-shard count and the metric covers every shard. Under plain
        ``jax.jit`` on sharded arrays leave it None and XLA inserts the collectives.

    Returns:
      Scalar in [-0.5, 1]; about 0 for independent labelings.

    Raises:
      TypeError: if labels are not integer or ``where`` is not boolean.
      ValueError: if an array is not of rank 1, the lengths differ, or labels that need
        remapping are traced (pass ``num_classes`` / ``num_clusters``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxclust.metrics
      >>> y = jnp.array([0, 0, 1, 1])
      >>> print(f"{float(jaxclust.metrics.ari(y, y)):.3f}")
      1.000
      >>> print(f"{float(jaxclust.metrics.ari(y, jnp.array([0, 0, 1, 2]))):.3f}")
      0.571

    References:
      Hubert and Arabie, "Comparing partitions", Journal of Classification 2 (1985),
      https://doi.org/10.1007/BF01908075.
    """
    table = _table(labels_true, labels_pred, num_classes, num_clusters, where, axis_name)
    return _ari_from_table(table)
