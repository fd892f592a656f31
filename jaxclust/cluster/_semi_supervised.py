"""Semi-supervised (novel-class-discovery) k-means: known classes from labels, novel ones found."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import _init
from jaxclust.cluster._distances import DEFAULT_DISTANCE_BUDGET, compute_dtype
from jaxclust.cluster._kmeans import _lloyd

_MODES = ("clamp", "fixed")


class SemiSupervisedKMeansResult(NamedTuple):
    """Output of :func:`semi_supervised_kmeans`.

    Attributes:
      centroids: cluster centres, shape [k, d]; rows ``0 .. num_known − 1`` belong to the known
        classes (label ``j`` is class ``j``), the remaining rows are the novel clusters.
      labels: cluster of each sample, int32, shape [n]; labelled samples keep their class, rows
        masked out by ``where`` get -1.
      inertia: ``Σ_i w_i ‖x_i − μ_{labels_i}‖²`` over all valid samples, labelled ones included,
        scalar.
      num_steps: Lloyd iterations run, int32 scalar.
      converged: False when ``max_steps`` was reached before the stopping rule held.
      counts: total sample weight per cluster, shape [k]. A zero marks a cluster that ended empty;
        for a known class it means no sample was labelled with it (visible only under ``jit``,
        where it cannot be checked eagerly).
      known: whether each centre is a known class, bool [k].
    """

    centroids: Float[Array, "k d"]
    labels: Int[Array, " n"]
    inertia: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    counts: Float[Array, " k"]
    known: Bool[Array, " k"]


def semi_supervised_kmeans(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    k: int,
    key: KeyArray,
    num_known: int | None = None,
    mode: str = "clamp",
    sample_weight: Float[Array, " n"] | None = None,
    where: Bool[Array, " n"] | None = None,
    max_steps: int = 300,
    tol: ScalarLike = 1e-4,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
    axis_name: str | None = None,
) -> SemiSupervisedKMeansResult:
    """k-means with some samples labelled by known classes and ``k − num_known`` novel clusters.

    The setting of novel class discovery / generalized category discovery (METHODS.md §1.4):
    ``labels[i] ∈ {0, …, num_known − 1}`` for the labelled samples and ``-1`` for the rest.

    Seeding (both modes): the known centres are the weighted means of each class's labelled
    samples; the ``k − num_known`` novel centres continue greedy k-means++ on the unlabelled
    samples, with ``D_i`` starting as the squared distance to the nearest known centre, so novel
    centres are drawn away from the known classes.

    Lloyd iterations then run with scikit-learn's stopping rule, as :func:`kmeans`:

    - ``mode="clamp"`` (Vaze et al., 2022, the semi-supervised k-means of GCD): labelled samples
      always keep their class; every centre is the mean of its labelled and unlabelled members.
    - ``mode="fixed"`` (the usual NCD adaptation): the known centres stay at the class means;
      Lloyd runs on the unlabelled samples only and updates only the novel centres. Unlabelled
      samples may still join a known centre (they are then "known").

    Empty-cluster relocation (scikit-learn's rule) applies to novel centres only and never moves
    a labelled sample. With no labelled sample, ``mode="clamp"`` is :func:`kmeans` with
    ``init="k-means++"`` and the same key, bit for bit.

    Peak memory is that of :func:`kmeans` plus an [n, num_known] distance block during seeding.

    Args:
      x: data, shape [n, d], labelled and unlabelled samples together.
      labels: class of each labelled sample in ``[0, num_known)``, ``-1`` for unlabelled ones,
        int, shape [n].
      k: total number of clusters, known plus novel (static).
      key: PRNG key for the novel-centre seeding.
      num_known: number of known classes (static); inferred as ``max(labels) + 1`` when
        ``labels`` is concrete, required under ``jit``.
      mode: ``"clamp"`` or ``"fixed"`` (static), as above.
      sample_weight: non-negative weights, shape [n]; ones if None.
      where: validity mask, shape [n]; masked rows are ignored and labelled -1.
      max_steps: maximum Lloyd iterations (static).
      tol: relative centre-shift tolerance (scaled by the mean feature variance), as in
        :func:`kmeans`.
      distance_budget: largest number of distance-matrix entries held at once (static).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count and class means, seeding and Lloyd sums are global.
        Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      A :class:`SemiSupervisedKMeansResult`; score it with
      :func:`jaxclust.metrics.novel_class_accuracy` (ACC on all / known / novel classes).

    Raises:
      TypeError: if ``x`` is not floating point or ``labels`` not integer.
      ValueError: if shapes differ, ``k`` is not in ``[max(num_known, 1), n]``, ``labels`` holds
        a value outside ``[-1, num_known)``, a known class has no labelled sample (when concrete),
        ``num_known`` is missing under ``jit``, ``mode`` is unknown or ``key`` is None.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import semi_supervised_kmeans
      >>> x = jnp.array([[0.0], [0.2], [5.0], [5.2], [10.0], [10.2]])
      >>> y = jnp.array([0, -1, 1, -1, -1, -1])  # two known classes, one novel cluster
      >>> result = semi_supervised_kmeans(x, y, k=3, key=jax.random.key(0))
      >>> result.labels.tolist()
      [0, 0, 1, 1, 2, 2]

    References:
      Vaze, Han, Vedaldi, Zisserman, "Generalized Category Discovery", CVPR 2022,
      https://arxiv.org/abs/2201.02609 (semi-supervised k-means, Section 3.2).
      Han, Vedaldi, Zisserman, "Learning to Discover Novel Visual Categories via Deep Transfer
      Clustering", ICCV 2019, https://arxiv.org/abs/1908.09884 (novel class discovery).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    labels = _checks.as_int_array(labels, "labels")
    _checks.check_same_leading([x, labels], ["x", "labels"])
    mode = _checks.check_choice(mode, "mode", _MODES)
    if key is None:
        raise ValueError("key must be a JAX PRNG key (e.g. jax.random.key(0)), got None.")
    concrete = _checks.is_concrete(labels)
    if num_known is None:
        if not concrete:
            raise ValueError("num_known is required when labels is traced (e.g. under jax.jit).")
        num_known = int(np.max(np.asarray(labels), initial=-1)) + 1
    num_known = _checks.check_positive_int(num_known, "num_known", minimum=0)
    if concrete:
        values = np.asarray(labels)
        bad = (values < -1) | (values >= num_known)
        if bad.any():
            raise ValueError(
                f"labels must lie in [-1, num_known) = [-1, {num_known}), got {values[bad][0]}."
            )
        if axis_name is None:
            valid = values >= 0 if where is None else (values >= 0) & np.asarray(where, bool)
            missing = sorted(set(range(num_known)) - set(values[valid].tolist()))
            if missing:
                raise ValueError(
                    f"every known class needs a labelled sample; class(es) {missing[:5]} of "
                    f"num_known={num_known} have none."
                )
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:
        k = _checks.check_positive_int(k, "k")
    if k < num_known:
        raise ValueError(f"k must be >= num_known={num_known} (known plus novel), got k={k}.")
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    _checks.check_nonnegative_scalar(tol, "tol")
    if distance_budget is not None:
        distance_budget = _checks.check_positive_int(distance_budget, "distance_budget")

    x = x.astype(compute_dtype(x.dtype))
    w = _init._weights(sample_weight, x)
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=x.shape[0], other="x")
        w = jnp.where(where, w, 0.0)
    labelled = labels >= 0
    clamp = jnp.where(labelled, labels, -1).astype(jnp.int32)
    known = jnp.arange(k) < num_known

    # Known centres: weighted class means of the labelled samples.
    w_l = jnp.where(labelled, w, 0.0)
    cls = jnp.clip(clamp, 0, max(num_known, 1) - 1)
    sums = _collectives.psum(_collectives.segment_sum(w_l[:, None] * x, cls, max(num_known, 1)),
                             axis_name)
    mass = _collectives.psum(_collectives.segment_sum(w_l, cls, max(num_known, 1)), axis_name)
    total = _collectives.psum(jnp.sum(w), axis_name)
    data_mean = _collectives.psum(jnp.sum(w[:, None] * x, axis=0), axis_name) / jnp.where(
        total > 0, total, 1.0)
    # A class without labelled samples (possible only when traced) sits at the data mean; its
    # zero count is reported in ``counts``.
    class_means = jnp.where(mass[:, None] > 0, sums / jnp.where(mass > 0, mass, 1.0)[:, None],
                            data_mean[None, :])[:num_known]

    w_u = jnp.where(labelled, 0.0, w)
    if num_known < k:
        centroids = _init.plusplus(
            x, w_u, key, k=k, num_local_trials=2 + int(math.log(k)), axis_name=axis_name,
            known=class_means,
        )
    else:
        centroids = class_means

    if mode == "clamp":
        result = _lloyd(
            x, w, centroids, max_steps=max_steps, tol=tol, distance_budget=distance_budget,
            axis_name=axis_name, where=where, clamp=clamp, frozen=None,
        )
    else:
        result = _lloyd(
            x, w_u, centroids, max_steps=max_steps, tol=tol, distance_budget=distance_budget,
            axis_name=axis_name, where=where, clamp=None, frozen=known,
        )
    out_labels = jnp.where(labelled, clamp, result.labels)
    if where is not None:
        out_labels = jnp.where(where, out_labels, -1)
    safe = jnp.maximum(out_labels, 0)
    dist = jnp.sum((x - result.centroids[safe]) ** 2, axis=1)
    inertia = _collectives.psum(jnp.sum(jnp.where(out_labels >= 0, w * dist, 0.0)), axis_name)
    counts = _collectives.psum(_collectives.segment_sum(jnp.where(out_labels >= 0, w, 0.0),
                                                        safe, k), axis_name)
    if mode == "clamp":  # identical by construction; keep the Lloyd values bit for bit
        inertia, counts = result.inertia, result.counts
    return SemiSupervisedKMeansResult(
        centroids=result.centroids,
        labels=out_labels,
        inertia=inertia,
        num_steps=result.num_steps,
        converged=result.converged,
        counts=counts,
        known=known,
    )
