"""Lloyd's k-means with k-means++ or random seeding, sharded over samples."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import _init
from jaxclust.cluster._distances import (
    DEFAULT_DISTANCE_BUDGET,
    compute_dtype,
    nearest_centroid,
    squared_norms,
)

_INITS = ("k-means++", "k-means||", "random")


class KMeansResult(NamedTuple):
    """Output of :func:`kmeans`.

    Attributes:
      centroids: cluster centres, shape [k, d]. A cluster left empty keeps its previous centre.
      labels: index of the nearest centroid for every sample, int32, shape [n]; ``-1`` where
        ``where`` is False.
      inertia: ``Σ_i w_i ‖x_i − μ_{c_i}‖²`` at the returned centroids and labels, scalar.
      num_steps: Lloyd iterations run (by the returned run when ``n_init > 1``), int32 scalar.
      converged: True when the loop stopped because the labels stopped changing or the centre shift
        fell below the tolerance, False when it hit ``max_steps``.
      counts: total sample weight of each cluster at the returned labels, shape [k]; a zero marks a
        cluster that is empty (possible only when fewer than ``k`` distinct points exist).
    """

    centroids: Float[Array, "k d"]
    labels: Int[Array, " n"]
    inertia: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    counts: Float[Array, " k"]


class _LloydState(NamedTuple):
    centroids: Float[Array, "k d"]
    labels: Int[Array, " n"]
    step: Int[Array, ""]
    done: Bool[Array, ""]


def _centroid_sums(x, w, labels, k, axis_name):
    sums = _collectives.segment_sum(w[:, None] * x, labels, k)
    weights = _collectives.segment_sum(w, labels, k)
    return _collectives.psum(sums, axis_name), _collectives.psum(weights, axis_name)


def _relocate_empty(sums, weights, x, w, labels, dist, axis_name, movable=None, frozen=None):
    """scikit-learn's empty-cluster rule (METHODS.md §1.1), on the summed (not averaged) centres.

    The e-th empty cluster (in index order) takes the e-th farthest point from its own centre; that
    point's weight and coordinates move out of its previous cluster's sums. Points at distance 0
    are never moved, so a cluster stays empty only when no point lies away from its centre.
    ``movable`` (bool [n]) excludes points from relocation (e.g. clamped labelled points) and
    ``frozen`` (bool [k]) centres are never re-seeded (METHODS.md §1.4).
    """
    k = sums.shape[0]
    local = min(k, x.shape[0])
    ok = w > 0 if movable is None else (w > 0) & movable
    far = jnp.where(ok, dist, -1.0)
    far_d, far_i = lax.top_k(far, local)
    cand_d = _collectives.all_gather(far_d, axis_name).reshape(-1)
    cand_x = _collectives.all_gather(x[far_i], axis_name).reshape(-1, x.shape[1])
    cand_w = _collectives.all_gather(w[far_i], axis_name).reshape(-1)
    cand_l = _collectives.all_gather(labels[far_i], axis_name).reshape(-1)
    if cand_d.shape[0] > k:  # sharded: keep the global top k of the per-shard candidates
        order = lax.top_k(cand_d, k)[1]
        cand_d, cand_x, cand_w, cand_l = cand_d[order], cand_x[order], cand_w[order], cand_l[order]

    empty = weights <= 0 if frozen is None else (weights <= 0) & ~frozen
    rank = jnp.clip(jnp.cumsum(empty) - 1, 0, cand_d.shape[0] - 1)
    move = empty & (cand_d[rank] > 0) & (jnp.cumsum(empty) - 1 < cand_d.shape[0])
    moved_w = jnp.where(move, cand_w[rank], 0.0)
    moved_x = cand_x[rank]
    old = cand_l[rank]
    sums = sums.at[old].add(-moved_w[:, None] * moved_x)
    weights = weights.at[old].add(-moved_w)
    sums = jnp.where(move[:, None], moved_w[:, None] * moved_x, sums)
    weights = jnp.where(move, moved_w, weights)
    return sums, weights


def _lloyd_update(x, w, centroids, labels, dist, axis_name, spherical: bool = False,
                  movable=None, frozen=None):
    """M-step: weighted means (or, if ``spherical``, re-normalised sums) with empty-cluster
    relocation; ``frozen`` centres (bool [k]) keep their position, and points where ``movable``
    is False are never relocated."""
    k = centroids.shape[0]
    sums, weights = _centroid_sums(x, w, labels, k, axis_name)
    empty = weights <= 0 if frozen is None else (weights <= 0) & ~frozen
    # Relocation needs a top-k over all samples: skip it unless a cluster is empty (the predicate
    # is global, so every shard takes the same branch).
    sums, weights = lax.cond(
        jnp.any(empty),
        lambda s, c: _relocate_empty(s, c, x, w, labels, dist, axis_name, movable, frozen),
        lambda s, c: (s, c),
        sums,
        weights,
    )
    if spherical:  # Dhillon & Modha (2001): the concept vector is the normalised sum
        norms = jnp.linalg.norm(sums, axis=1)
        ok = (weights > 0) & (norms > 0)
        new = jnp.where(ok[:, None], sums / jnp.where(ok, norms, 1.0)[:, None], centroids)
    else:
        safe = jnp.where(weights > 0, weights, 1.0)
        new = jnp.where((weights > 0)[:, None], sums / safe[:, None], centroids)
    return new if frozen is None else jnp.where(frozen[:, None], centroids, new)


def _normalize_rows(x, name: str):
    """Rows scaled to unit norm; a concrete zero row raises (its direction is undefined)."""
    norms = jnp.linalg.norm(x, axis=1)
    if _checks.is_concrete(x):
        zero = int((np.asarray(norms) == 0).sum())
        if zero:
            raise ValueError(
                f"{name} has {zero} row(s) of zero norm; spherical k-means needs nonzero rows."
            )
    return x / jnp.where(norms > 0, norms, 1.0)[:, None]


def _tolerance(x, w, tol, axis_name):
    """``tol · mean_j Var(x_{:, j})``, scikit-learn's scaling of the centre-shift tolerance.

    The variance is unweighted, as in scikit-learn, over the rows with positive weight, so rows
    padded with zero weight (e.g. to divide evenly over devices) leave the result unchanged.
    """
    valid = (w > 0).astype(x.dtype)[:, None]
    n = _collectives.psum(jnp.sum(valid), axis_name)
    mean = _collectives.psum(jnp.sum(valid * x, axis=0), axis_name) / n
    var = _collectives.psum(jnp.sum(valid * (x - mean[None, :]) ** 2, axis=0), axis_name) / n
    return tol * jnp.mean(var)


def _initial_centroids(x, k, init, key, w, axis_name):
    if isinstance(init, str):
        if init == "k-means++":
            return _init.kmeans_plusplus(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
        if init == "k-means||":
            from jaxclust.cluster._kmeans_parallel import kmeans_parallel

            return kmeans_parallel(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
        return _init.random_init(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
    return _init.check_init_array(init, k, x)


def kmeans(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray | None = None,
    init: str | Float[Array, "k d"] = "k-means++",
    sample_weight: Float[Array, " n"] | None = None,
    where: Bool[Array, " n"] | None = None,
    n_init: int = 1,
    max_steps: int = 300,
    tol: ScalarLike = 1e-4,
    spherical: bool = False,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
    axis_name: str | None = None,
) -> KMeansResult:
    """Lloyd's k-means: alternate nearest-centre assignment and weighted means.

    Follows scikit-learn's ``algorithm="lloyd"`` semantics (METHODS.md §1.1): the loop stops when
    the labels no longer change or when the squared centre shift ``Σ_k ‖μ_k' − μ_k‖²`` is at most
    ``tol · mean_j Var(x_{:, j})``; a final assignment step makes labels and centres consistent.
    Empty clusters are re-seeded from the points farthest from their centre, as scikit-learn does.
    The loop is a ``lax.while_loop``: there are no host syncs, and the result is not
    differentiable (use the losses in :mod:`jaxclust.losses` for gradients).

    Data are centred before the loop, as scikit-learn does, to reduce cancellation in
    ``‖x‖² − 2⟨x, μ⟩ + ‖μ‖²``. Half-precision inputs are computed in float32.

    Peak memory beyond the inputs is ``O(n·d + min(n·k, distance_budget))``: when ``n·k`` exceeds
    ``distance_budget`` the distance matrix is built in row blocks (by default 2**20 entries on
    CPU, where cache-sized blocks are fastest, and 2**27 on accelerators).

    Args:
      x: data, shape [n, d], floating point, finite.
      k: number of clusters (static: changing it recompiles).
      key: PRNG key for seeding; required unless ``init`` is an array.
      init: ``"k-means++"`` (greedy, ``2 + floor(ln k)`` local trials), ``"k-means||"`` (a few
        oversampling passes, for large ``n`` and ``k``: :func:`kmeans_parallel`), ``"random"``
        (``k`` distinct rows) or an explicit array of initial centres, shape [k, d] (static choice).
      sample_weight: non-negative sample weights, shape [n]; ones if None. Rows of weight 0 do not
        affect the result (they still get a label), so padding with zero-weight rows is exact.
      where: validity mask, shape [n]; rows where it is False are ignored (weight 0) and labelled
        ``-1``. With ``jax.vmap`` this clusters padded sets (e.g. documents of different lengths
        padded to one shape): each set's result equals clustering its valid rows alone from the
        same initial centres.
      n_init: number of seedings (static); the run with the lowest inertia is returned. Runs are
        sequential (``lax.scan`` carrying the best result), so peak memory does not grow with it.
        Must be 1 when ``init`` is an array.
      max_steps: maximum Lloyd iterations per run (static).
      tol: relative tolerance on the centre shift (scaled by the mean feature variance); 0 stops
        only when the labels stop changing.
      spherical: cosine (spherical) k-means (static): rows and centroids are normalised to unit
        length, points join the centre of highest cosine, centres are normalised weighted sums,
        and ``inertia`` is ``Σ_i w_i (1 − cos(x_i, μ_{c_i}))`` (Dhillon & Modha, 2001).
      distance_budget: largest number of entries of the [n, k] distance matrix held at once
        (static); None picks the backend default described above.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count, sums and inertia are global and the centroids are
        replicated. Under plain ``jax.jit`` on sharded arrays leave it None: XLA inserts the
        collectives.

    Returns:
      A :class:`KMeansResult`.

    Raises:
      TypeError: if ``x``, ``init`` or ``sample_weight`` is not floating point, or ``k`` is not an int.
      ValueError: if shapes are wrong, ``x`` holds NaN/Inf, ``k`` is not in [1, n], ``init`` is an
        unknown string, or ``key`` is missing.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import kmeans
      >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
      >>> result = kmeans(x, k=2, key=jax.random.key(0))
      >>> print(float(result.inertia), bool(result.converged))
      1.0 True
      >>> bool(result.labels[0] == result.labels[1]) and bool(result.labels[0] != result.labels[2])
      True

    References:
      Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982.
      Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007.
      Dhillon & Modha, "Concept decompositions for large sparse text data using clustering",
      Machine Learning 42, 2001 (spherical k-means).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:
        k = _checks.check_positive_int(k, "k")
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    n_init = _checks.check_positive_int(n_init, "n_init")
    if distance_budget is not None:
        distance_budget = _checks.check_positive_int(distance_budget, "distance_budget")
    _checks.check_nonnegative_scalar(tol, "tol")
    if n_init > 1 and not isinstance(init, str):
        raise ValueError(f"n_init must be 1 when init is an array of centres, got n_init={n_init}.")
    x = x.astype(compute_dtype(x.dtype))
    w = _init._weights(sample_weight, x)
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=x.shape[0], other="x")
        w = jnp.where(where, w, 0.0)
    if spherical:
        x = _normalize_rows(x if where is None else jnp.where(where[:, None], x, 1.0), "x")
    if isinstance(init, str):
        _checks.check_choice(init, "init", _INITS + ("an array of shape [k, d]",))
        if key is None:
            raise ValueError(f"key is required when init={init!r}; pass e.g. key=jax.random.key(0).")
    else:
        init = _initial_centroids(x, k, init, key, w, axis_name)
        if spherical:
            init = _normalize_rows(init, "init")
    solve = functools.partial(
        _solve, k=k, init=init if isinstance(init, str) else None, n_init=n_init,
        max_steps=max_steps, tol=tol, distance_budget=distance_budget, spherical=spherical,
    )
    start = key if isinstance(init, str) else init  # a key to seed from, or the centres
    explicit_axis = _collectives.explicit_sample_axis(x) if axis_name is None else None
    if explicit_axis is None:
        return solve(x, w, where, start, axis_name=axis_name)
    mask = jnp.ones(x.shape[0], bool) if where is None else where
    labels_spec = jax.sharding.PartitionSpec(explicit_axis)
    replicated = jax.sharding.PartitionSpec()
    return _collectives.map_over_samples(
        solve, explicit_axis, (x, w, mask), (start,),
        out_specs=KMeansResult(replicated, labels_spec, *(replicated,) * 4),
    )


def _solve(x, w, where, start, *, k, init, n_init, max_steps, tol, distance_budget, spherical,
           axis_name) -> KMeansResult:
    """Seeding (``n_init`` times, from the key ``start``) then Lloyd, or Lloyd from the centres
    ``start`` when ``init`` is None; inputs are validated."""
    lloyd = functools.partial(
        _lloyd, max_steps=max_steps, tol=tol, distance_budget=distance_budget,
        axis_name=axis_name, spherical=spherical, where=where,
    )
    if init is None:
        return lloyd(x, w, start)

    def run(run_key):
        return lloyd(x, w, _initial_centroids(x, k, init, run_key, w, axis_name))

    if n_init == 1:
        return run(start)
    # Restarts run one after another, carrying only the best result, so peak memory does not
    # grow with n_init (a vmap over keys would multiply it).
    keys = jax.random.split(start, n_init)

    def restart(best: KMeansResult, run_key) -> tuple[KMeansResult, None]:
        result = run(run_key)
        better = result.inertia < best.inertia
        return jax.tree.map(lambda a, b: jnp.where(better, a, b), result, best), None

    best, _ = lax.scan(restart, run(keys[0]), keys[1:])
    return best


def _lloyd(
    x, w, centroids, *, max_steps, tol, distance_budget, axis_name, spherical=False, where=None,
    clamp=None, frozen=None,
) -> KMeansResult:
    """Lloyd iterations from ``centroids`` (validated inputs; see :func:`kmeans`).

    ``clamp`` (int [n], -1 = free) fixes the labels of some points and ``frozen`` (bool [k]) fixes
    some centres: the semi-supervised variants of METHODS.md §1.4. With neither, this is §1.1.
    """
    k = centroids.shape[0]
    if spherical:  # unit vectors: centring would break the cosine geometry
        shift = jnp.zeros(x.shape[1], x.dtype)
    else:
        # Centre the data (weighted mean), as scikit-learn does; the shift is undone at the end.
        total_w = _collectives.psum(jnp.sum(w), axis_name)
        total_w = jnp.where(total_w > 0, total_w, 1.0)
        shift = _collectives.psum(jnp.sum(w[:, None] * x, axis=0), axis_name) / total_w
    x = x - shift[None, :]
    centroids = centroids - shift[None, :]
    x_sq = squared_norms(x)
    tol_scaled = _tolerance(x, w, jnp.asarray(tol, x.dtype), axis_name)

    movable = None if clamp is None else clamp < 0

    def assign(c):
        labels, dist = nearest_centroid(x, c, x_sq=x_sq, budget=distance_budget)
        if clamp is None:
            return labels, dist
        fixed = jnp.maximum(clamp, 0)
        fixed_dist = jnp.maximum(jnp.sum((x - c[fixed]) ** 2, axis=1), 0.0)
        return jnp.where(movable, labels, clamp), jnp.where(movable, dist, fixed_dist)

    def cond(state: _LloydState):
        return (~state.done) & (state.step < max_steps)

    def body(state: _LloydState) -> _LloydState:
        labels, dist = assign(state.centroids)
        new = _lloyd_update(
            x, w, state.centroids, labels, dist, axis_name, spherical, movable, frozen
        )
        changed = _collectives.psum(jnp.sum((labels != state.labels) & (w > 0)), axis_name)
        center_shift = jnp.sum((new - state.centroids) ** 2)
        done = (changed == 0) | (center_shift <= tol_scaled)
        return _LloydState(new, labels, state.step + 1, done)

    init_state = _LloydState(
        centroids,
        _collectives.pvary(jnp.full(x.shape[0], -1, jnp.int32), axis_name),
        jnp.int32(0),
        jnp.asarray(False),
    )
    state = lax.while_loop(cond, body, init_state)
    labels, dist = assign(state.centroids)
    if spherical:  # ‖x̂ − μ̂‖² = 2 − 2 cos
        dist = 0.5 * dist
    inertia = _collectives.psum(jnp.sum(w * dist), axis_name)
    counts = _collectives.psum(_collectives.segment_sum(w, labels, k), axis_name)
    if where is not None:
        labels = jnp.where(where, labels, -1)
    return KMeansResult(
        centroids=state.centroids + shift[None, :],
        labels=labels,
        inertia=inertia,
        num_steps=state.step,
        converged=state.done,
        counts=counts,
    )


def kmeans_predict(
    x: Float[Array, "n d"],
    centroids: Float[Array, "k d"],
    *,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
) -> Int[Array, " n"]:
    """Index of the nearest centroid for each row of ``x`` (ties to the lowest index).

    Args:
      x: data, shape [n, d].
      centroids: cluster centres, shape [k, d], e.g. ``kmeans(...).centroids``.
      distance_budget: largest number of distance-matrix entries held at once (static); None
        picks the backend default (see :func:`kmeans`).

    Returns:
      Labels, int32, shape [n].

    Raises:
      TypeError: if ``x`` or ``centroids`` is not floating point.
      ValueError: if shapes are wrong or the feature dimensions differ, or values are not finite.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import kmeans_predict
      >>> kmeans_predict(jnp.array([[0.1], [9.0]]), jnp.array([[0.0], [10.0]])).tolist()
      [0, 1]
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    centroids = _checks.as_float_array(centroids, "centroids", ndim=2, shape="[k, d]")
    if centroids.shape[1] != x.shape[1]:
        raise ValueError(
            f"centroids must have shape [k, d] with d={x.shape[1]} to match x, got "
            f"{tuple(centroids.shape)}."
        )
    if distance_budget is not None:
        distance_budget = _checks.check_positive_int(distance_budget, "distance_budget")
    dtype = compute_dtype(jnp.result_type(x.dtype, centroids.dtype))
    return nearest_centroid(x.astype(dtype), centroids.astype(dtype), budget=distance_budget)[0]
