"""Mini-batch (streaming) k-means with scikit-learn's update, reassignment and stopping rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import _init
from jaxclust.cluster._distances import DEFAULT_DISTANCE_BUDGET, compute_dtype, nearest_centroid
from jaxclust.cluster._kmeans import KMeansResult, _tolerance

_INITS = ("k-means++", "random")


class KMeansState(NamedTuple):
    """State of streaming mini-batch k-means: made by :func:`minibatch_init`, advanced by
    :func:`minibatch_update`.

    Arrays only (a pytree that ``jax.jit``, ``lax.scan`` and checkpointing take as is). Under
    ``jax.shard_map`` with ``axis_name`` every field is replicated.

    Attributes:
      centroids: cluster centres, shape [k, d].
      counts: cumulative sample weight absorbed by each centre, shape [k]. Starts at 0, as in
        scikit-learn; a reassigned centre's count is reset to the smallest count among the centres
        that were not reassigned.
      step: number of batches seen, int32 scalar.
      samples_since_reassign: batch weight seen since the last time the low-count reassignment
        rule was triggered, scalar.
      ewa_inertia: exponentially weighted average of the per-sample batch inertia (batch inertia
        divided by batch weight), scikit-learn's smoothing; ``inf`` until two batches have been
        seen (the first batch's inertia reflects the seeding and is ignored, as in scikit-learn).
      ewa_inertia_min: smallest ``ewa_inertia`` so far; ``inf`` until it is defined.
      no_improvement: consecutive batches after which ``ewa_inertia`` did not fall below
        ``ewa_inertia_min``, int32 scalar. Stop a stream when it reaches your patience
        (scikit-learn's ``max_no_improvement``, 10 by default).
      batch_inertia: ``Σ_b w_b ‖x_b − μ_{c_b}‖²`` of the last batch with respect to the
        centres *before* its update, scalar; ``inf`` before the first batch.
    """

    centroids: Float[Array, "k d"]
    counts: Float[Array, " k"]
    step: Int[Array, ""]
    samples_since_reassign: Float[Array, ""]
    ewa_inertia: Float[Array, ""]
    ewa_inertia_min: Float[Array, ""]
    no_improvement: Int[Array, ""]
    batch_inertia: Float[Array, ""]


class _MiniBatchLoop(NamedTuple):
    state: KMeansState
    done: Bool[Array, ""]


# ---------------------------------------------------------------------------------------------
# Row sampling shared by seeding and batches.


def _make_sampler(
    x: Float[Array, "n d"], sample_weight: Float[Array, " n"] | None, axis_name: str | None
) -> Callable[[KeyArray, int], Float[Array, "m d"]]:
    """A function ``(key, num) -> rows`` drawing ``num`` rows of ``x`` i.i.d. with p ∝ weight.

    This is scikit-learn's batch sampling (``choice(n, B, p=w / Σw, replace=True)``). The random
    numbers are drawn for the *global* row index with the same key on every shard, so the rows
    match the single-device draw: unweighted rows come from ``randint(0, n_global)`` (exact for
    any ``n``, and bit for bit the single-device rows); weighted rows by inverse-CDF search of a
    uniform number in the global cumulative weights (the same rows up to the rounding of those
    sums, whose resolution is that of the compute dtype; rows of weight 0 are never drawn). The
    drawn rows are replicated: each shard contributes the rows it owns through one ``psum`` of
    ``num × d`` values.
    """
    n = x.shape[0]
    num_shards = 1 if axis_name is None else lax.axis_size(axis_name)
    shard = _collectives.shard_index(axis_name)
    if sample_weight is None:

        def locate(key, num):
            idx = jax.random.randint(key, (num,), 0, n * num_shards, dtype=jnp.int32)
            return idx // n, idx % n

    else:
        # The barrier keeps XLA from constant-folding the cumulative sum when the weights are
        # compile-time constants (slow at compile time for large n).
        cum_w = jnp.cumsum(lax.optimization_barrier(sample_weight))
        shard_totals = _collectives.all_gather(cum_w[-1], axis_name)
        shard_ends = jnp.cumsum(shard_totals)
        total = shard_ends[-1]
        offset = shard_ends[shard] - shard_totals[shard]

        def locate(key, num):
            u = jax.random.uniform(key, (num,), cum_w.dtype) * total
            owner = jnp.minimum(jnp.searchsorted(shard_ends, u, side="right"), num_shards - 1)
            local = jnp.searchsorted(cum_w, u - offset, side="right")
            return owner, jnp.minimum(local, n - 1)

    def sample(key: KeyArray, num: int) -> Float[Array, "m d"]:
        owner, local = locate(key, num)
        rows = x[local]
        if axis_name is None:
            return rows
        return lax.psum(jnp.where((owner == shard)[:, None], rows, 0.0), axis_name)

    return sample


def _step_keys(loop_key: KeyArray, step) -> tuple[KeyArray, KeyArray]:
    """Keys for batch number ``step`` of :func:`minibatch_kmeans`: (batch draw, reassignment)."""
    batch_key, update_key = jax.random.split(jax.random.fold_in(loop_key, step))
    return batch_key, update_key


# ---------------------------------------------------------------------------------------------
# Initial state.


def _seed(x, sample_weight, w, k, key, init, init_size, axis_name):
    """Initial centres (validated inputs): k-means++/random on all of x or on a drawn subset."""
    if not isinstance(init, str):
        return _init.check_init_array(init, k, x)
    seed_fn = _init.kmeans_plusplus if init == "k-means++" else _init.random_init
    num_shards = 1 if axis_name is None else lax.axis_size(axis_name)
    if init_size is None or init_size >= x.shape[0] * num_shards:
        return seed_fn(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
    # Seed on init_size rows drawn with replacement, p ∝ weight (scikit-learn draws them uniformly
    # and keeps their weights; the two agree in expectation). The subset is replicated, so the
    # seeding itself runs unsharded, identically on every shard.
    subset_key, seed_key = jax.random.split(key)
    subset = _make_sampler(x, sample_weight, axis_name)(subset_key, init_size)
    return seed_fn(subset, k=k, key=seed_key)


def _initial_state(centroids: Float[Array, "k d"]) -> KMeansState:
    k, dtype = centroids.shape[0], centroids.dtype
    inf = jnp.asarray(jnp.inf, dtype)
    return KMeansState(
        centroids=centroids,
        counts=jnp.zeros(k, dtype),
        step=jnp.int32(0),
        samples_since_reassign=jnp.zeros((), dtype),
        ewa_inertia=inf,
        ewa_inertia_min=inf,
        no_improvement=jnp.int32(0),
        batch_inertia=inf,
    )


def _check_init_size(init_size, k):
    if init_size is None:
        return None
    init_size = _checks.check_positive_int(init_size, "init_size")
    if init_size < k:
        raise ValueError(
            f"init_size must be >= k={k} to seed k centres, got init_size={init_size}."
        )
    return init_size


def minibatch_init(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray | None = None,
    init: str | Float[Array, "k d"] = "k-means++",
    sample_weight: Float[Array, " n"] | None = None,
    init_size: int | None = None,
    axis_name: str | None = None,
) -> KMeansState:
    """Seeds mini-batch k-means: initial centres with zero counts.

    ``"k-means++"`` and ``"random"`` seed on ``init_size`` rows of ``x`` drawn with replacement
    with probability ∝ ``sample_weight`` (scikit-learn's ``init_size``, which draws them uniformly
    and keeps their weights: the same in expectation), or on all of ``x`` when ``init_size`` is None
    or at least the number of rows. Peak memory is that of the seeding on the rows used:
    ``O(rows · (d + 2 + ln k))``.

    Args:
      x: data (or a representative sample of the stream), shape [n, d], floating point, finite.
      k: number of clusters (static: changing it recompiles).
      key: PRNG key; required unless ``init`` is an array.
      init: ``"k-means++"`` (greedy, ``2 + floor(ln k)`` local trials), ``"random"`` (``k``
        distinct rows drawn ∝ weight) or an array of initial centres, shape [k, d] (static
        choice).
      sample_weight: non-negative weights, shape [n]; ones if None.
      init_size: number of rows to seed on (static); all rows if None. Must be >= ``k``.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count, seeding is global and the state is replicated. Under
        plain ``jax.jit`` on sharded arrays leave it None: XLA inserts the collectives.

    Returns:
      A :class:`KMeansState` at step 0 with zero counts.

    Raises:
      TypeError: if ``x``, ``init`` or ``sample_weight`` is not floating point, or ``k`` or
        ``init_size`` is not an int.
      ValueError: if shapes are wrong, ``x`` holds NaN/Inf, ``k`` is not in [1, n], ``init_size``
        is below ``k``, ``init`` is an unknown string, or ``key`` is missing.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import minibatch_init
      >>> x = jax.random.normal(jax.random.key(0), (100, 3))
      >>> state = minibatch_init(x, k=4, key=jax.random.key(1), init="random")
      >>> state.centroids.shape, state.counts.tolist(), int(state.step)
      ((4, 3), [0.0, 0.0, 0.0, 0.0], 0)

    References:
      Sculley, "Web-scale k-means clustering", WWW 2010.
      Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007.
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:  # inside shard_map only the global n bounds k, and it is not known from shapes
        k = _checks.check_positive_int(k, "k")
    init_size = _check_init_size(init_size, k)
    if isinstance(init, str):
        _checks.check_choice(init, "init", _INITS + ("an array of shape [k, d]",))
        if key is None:
            raise ValueError(
                f"key is required when init={init!r}; pass e.g. key=jax.random.key(0)."
            )
    x = x.astype(compute_dtype(x.dtype))
    w = _init._weights(sample_weight, x)
    sample_weight = None if sample_weight is None else w
    return _initial_state(_seed(x, sample_weight, w, k, key, init, init_size, axis_name))


# ---------------------------------------------------------------------------------------------
# One batch.


def _reassign_low_counts(centroids, counts, x, w, num_rows, ratio, key, axis_name):
    """scikit-learn's low-count reassignment (METHODS.md §1.2), on the updated centres and counts.

    Centres with ``n_k < ratio · max n`` (at most ``⌊num_rows / 2⌋`` of them, lowest counts
    first) move to distinct batch rows drawn uniformly without replacement by Gumbel-top-k. The
    noise is drawn for the global batch position with the same key on every shard, so sharded and
    single-device runs pick the same rows.
    """
    k, n = counts.shape[0], x.shape[0]
    num_shards = 1 if axis_name is None else lax.axis_size(axis_name)
    low = counts < ratio * jnp.max(counts)
    # Rank of each centre by count (stable: ties go to the lower index).
    order = jnp.argsort(counts, stable=True)
    rank = jnp.zeros(k, jnp.int32).at[order].set(jnp.arange(k, dtype=jnp.int32))
    move = low & (rank < jnp.floor(0.5 * num_rows))

    gumbel = jax.random.gumbel(key, (num_shards * n,), x.dtype)
    gumbel = lax.dynamic_slice_in_dim(gumbel, _collectives.shard_index(axis_name) * n, n)
    scores = jnp.where(w > 0, gumbel, -jnp.inf)
    top, idx = lax.top_k(scores, min(k, n))
    cand_x = x[idx]
    if axis_name is not None:  # global top k of the per-shard top k, in one gather
        cand = _collectives.all_gather(jnp.concatenate([top[:, None], cand_x], axis=1), axis_name)
        cand = cand.reshape(-1, cand.shape[-1])
        cand_x = cand[lax.top_k(cand[:, 0], min(k, cand.shape[0]))[1], 1:]
    # The e-th moved centre (in index order) takes the e-th draw; e < ⌊num_rows / 2⌋, so it is a
    # positive-weight row.
    slot = jnp.clip(jnp.cumsum(move) - 1, 0, cand_x.shape[0] - 1)
    centroids = jnp.where(move[:, None], cand_x[slot], centroids)
    # Reset counts to the smallest remaining count, not 0, so the moved centres are not moved again
    # at once (scikit-learn's rule; it also sets their learning rate).
    kept_min = jnp.min(jnp.where(move, jnp.inf, counts))
    kept_min = jnp.where(jnp.isfinite(kept_min), kept_min, 0.0)
    counts = jnp.where(move, kept_min, counts)
    return centroids, counts


def _update(state, x, w, key, ratio, num_samples, distance_budget, axis_name) -> KMeansState:
    """One mini-batch step on validated inputs (see :func:`minibatch_update`)."""
    k, d = state.centroids.shape
    dtype = state.centroids.dtype
    old, counts = state.centroids, state.counts

    # 1. Assign to the nearest *old* centre; Σ w_b x_b and s_k per centre, summed over shards
    # (with the batch inertia, weight and positive-weight row count: one psum per batch).
    labels, dist = nearest_centroid(x, old, budget=distance_budget)
    sums = _collectives.segment_sum(w[:, None] * x, labels, k)
    s = _collectives.segment_sum(w, labels, k)
    totals = jnp.stack([jnp.sum(w * dist), jnp.sum(w), jnp.sum(w > 0).astype(dtype)])
    if axis_name is not None:
        packed = lax.psum(jnp.concatenate([sums.reshape(-1), s, totals]), axis_name)
        sums, s, totals = packed[: k * d].reshape(k, d), packed[k * d : -3], packed[-3:]
    batch_inertia, batch_weight, num_rows = totals[0], totals[1], totals[2]

    # 2. μ_k ← (n_k μ_k + Σ w_b x_b) / (n_k + s_k) where s_k > 0: a step of size
    # s_k / (n_k + s_k) towards the batch mean, Sculley's per-centre 1/count learning rate.
    hit = s > 0
    new_counts = counts + s
    safe = jnp.where(hit, new_counts, 1.0)
    centroids = jnp.where(hit[:, None], (counts[:, None] * old + sums) / safe[:, None], old)

    # 3. Low-count reassignment; the trigger looks at the counts before this batch, as in
    # scikit-learn (some centre never hit, or 10·k samples since the last trigger).
    since = state.samples_since_reassign + batch_weight
    trigger = jnp.any(counts == 0) | (since >= 10 * k)
    since = jnp.where(trigger, 0.0, since).astype(dtype)
    if ratio is not None:
        moved_c, moved_n = _reassign_low_counts(
            centroids, new_counts, x, w, num_rows, ratio, key, axis_name
        )
        active = trigger & (ratio > 0)
        centroids = jnp.where(active, moved_c, centroids)
        new_counts = jnp.where(active, moved_n, new_counts)

    # 4. scikit-learn's stopping statistics: an EWA of the per-sample batch inertia with
    # α = min(2B / (N + 1), 1); the first batch (inertia of the seeding) is skipped.
    active = (state.step >= 1) & (batch_weight > 0)
    per_sample = batch_inertia / jnp.where(batch_weight > 0, batch_weight, 1.0)
    if num_samples is None:
        num_samples = (state.step + 1) * batch_weight
    alpha = jnp.minimum(2.0 * batch_weight / (num_samples + 1.0), 1.0)
    ewa = jnp.where(
        jnp.isinf(state.ewa_inertia),
        per_sample,
        state.ewa_inertia * (1.0 - alpha) + per_sample * alpha,
    )
    improved = ewa < state.ewa_inertia_min
    return KMeansState(
        centroids=centroids,
        counts=new_counts,
        step=state.step + 1,
        samples_since_reassign=since,
        ewa_inertia=jnp.where(active, ewa, state.ewa_inertia).astype(dtype),
        ewa_inertia_min=jnp.where(active & improved, ewa, state.ewa_inertia_min).astype(dtype),
        no_improvement=jnp.where(
            active, jnp.where(improved, 0, state.no_improvement + 1), state.no_improvement
        ).astype(jnp.int32),
        batch_inertia=batch_inertia.astype(dtype),
    )


def _static_ratio(reassignment_ratio, key):
    """``None`` when reassignment is statically off (ratio a concrete 0), else the ratio."""
    _checks.check_nonnegative_scalar(reassignment_ratio, "reassignment_ratio")
    if _checks.is_concrete(reassignment_ratio) and float(reassignment_ratio) == 0.0:
        return None
    if key is None:
        raise ValueError(
            "key is required when reassignment_ratio > 0 (it draws the new centres); pass e.g. "
            "key=jax.random.key(0), or reassignment_ratio=0 for a deterministic update."
        )
    return reassignment_ratio


def minibatch_update(
    state: KMeansState,
    x_batch: Float[Array, "n d"],
    *,
    key: KeyArray | None = None,
    sample_weight: Float[Array, " n"] | None = None,
    reassignment_ratio: ScalarLike = 0.01,
    num_samples: ScalarLike | None = None,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
    axis_name: str | None = None,
) -> KMeansState:
    """One step of mini-batch k-means: scikit-learn's ``partial_fit`` as a pure function.

    Following METHODS.md §1.2 and scikit-learn's ``MiniBatchKMeans``:

    1. every batch row goes to its nearest centre *before* the update (ties to the lowest index);
    2. each centre with batch weight ``s_k = Σ_{c_b = k} w_b > 0`` becomes
       ``(n_k μ_k + Σ_{c_b = k} w_b x_b) / (n_k + s_k)`` and ``n_k += s_k``: a step of size
       ``s_k / (n_k + s_k)`` towards its batch mean (Sculley's per-centre learning rate,
       batched), so a centre with count 0 jumps to its batch mean;
    3. low-count reassignment, when some count *before* the batch is 0 or at least ``10·k`` weight
       has been seen since the last trigger: centres with ``n_k < reassignment_ratio · max n`` (at
       most half the batch rows, lowest counts first) move to distinct batch rows drawn uniformly
       without replacement, and their counts become the smallest count of the other centres;
    4. the EWA stopping statistics of :class:`KMeansState` are updated.

    Differences from scikit-learn: "samples" in the trigger and the half-batch cap count weight and
    positive-weight rows (scikit-learn counts rows), so zero-weight rows, e.g. padding that makes a
    batch divide over devices, change nothing; the random draws differ (use
    ``reassignment_ratio=0`` for bitwise-deterministic updates). Not differentiable (hard
    assignments). Peak memory is ``O(n·d + min(n·k, distance_budget))``.

    Args:
      state: current state, from :func:`minibatch_init` or a previous update.
      x_batch: batch, shape [n, d], floating point, finite; cast to the state's dtype.
      key: PRNG key for the reassignment draw; required unless ``reassignment_ratio`` is 0.
      sample_weight: non-negative weights of the batch rows, shape [n]; ones if None.
      reassignment_ratio: ``r`` above; 0 turns reassignment off, the only random part.
      num_samples: size (total weight) ``N`` of the data set the batches come from, which sets the
        EWA smoothing ``α = min(2B / (N + 1), 1)`` with ``B`` the batch weight (scikit-learn's
        rule). If None (an unbounded stream), ``N = (step + 1)·B``: the batches seen so far.
      distance_budget: largest number of entries of the [n, k] distance matrix held at once
        (static); None picks the backend default (see :func:`kmeans`).
      axis_name: set only inside ``jax.shard_map`` with the batch rows split over this mesh axis;
        then ``n`` is the per-shard count, the per-centre sums are ``psum``-ed and the update is
        replicated (the state must be replicated). Under plain ``jax.jit`` on sharded arrays leave
        it None: XLA inserts the collectives.

    Returns:
      The updated :class:`KMeansState`, ``step`` advanced by one.

    Raises:
      TypeError: if ``x_batch`` or ``sample_weight`` is not floating point.
      ValueError: if ``x_batch`` is not [n, d] with the state's ``d`` or has no rows, holds NaN/Inf,
        ``sample_weight`` has the wrong length or negative values, ``reassignment_ratio`` is
        negative, or ``key`` is missing while ``reassignment_ratio > 0``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import minibatch_init, minibatch_update
      >>> state = minibatch_init(jnp.zeros((1, 2)), k=1, init=jnp.zeros((1, 2)))
      >>> update = jax.jit(minibatch_update)
      >>> for i, batch in enumerate([jnp.ones((4, 2)), 3 * jnp.ones((4, 2))]):
      ...     state = update(state, batch, key=jax.random.key(i))
      >>> state.centroids.tolist(), state.counts.tolist(), int(state.step)
      ([[2.0, 2.0]], [8.0], 2)

    References:
      Sculley, "Web-scale k-means clustering", WWW 2010.
    """
    centroids = state.centroids
    _checks.check_rank(centroids, "state.centroids", 2, "[k, d]")
    x_batch = _checks.as_float_array(x_batch, "x_batch", ndim=2, shape="[n, d]")
    d = centroids.shape[1]
    if x_batch.shape[1] != d:
        raise ValueError(
            f"x_batch must have shape [n, d] with d={d} to match state.centroids, got shape "
            f"{tuple(x_batch.shape)}."
        )
    if x_batch.shape[0] == 0:
        raise ValueError("x_batch must have at least one row, got shape (0, d).")
    if distance_budget is not None:
        distance_budget = _checks.check_positive_int(distance_budget, "distance_budget")
    ratio = _static_ratio(reassignment_ratio, key)
    if sample_weight is not None:
        sample_weight = _checks.as_float_array(sample_weight, "sample_weight", ndim=1, shape="[n]")
        _checks.check_same_leading([x_batch, sample_weight], ["x_batch", "sample_weight"])
    x_batch = x_batch.astype(centroids.dtype)
    w = _init._weights(sample_weight, x_batch).astype(centroids.dtype)
    return _update(state, x_batch, w, key, ratio, num_samples, distance_budget, axis_name)


# ---------------------------------------------------------------------------------------------
# The full solver.


def minibatch_kmeans(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    init: str | Float[Array, "k d"] = "k-means++",
    batch_size: int = 1024,
    max_steps: int = 100,
    max_no_improvement: int | None = 10,
    reassignment_ratio: ScalarLike = 0.01,
    tol: ScalarLike = 0.0,
    init_size: int | None = None,
    sample_weight: Float[Array, " n"] | None = None,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
    axis_name: str | None = None,
) -> KMeansResult:
    """Mini-batch k-means on an in-memory data set, scikit-learn's ``MiniBatchKMeans.fit``.

    Seeds with :func:`minibatch_init` on ``init_size`` rows, then runs :func:`minibatch_update`
    on batches of ``batch_size`` rows drawn i.i.d. *with replacement*, with probability ∝
    ``sample_weight`` and unit weight in the batch (scikit-learn's sampling), inside one
    ``lax.while_loop`` with no host syncs. It stops after ``max_steps`` batches, or earlier
    (``converged``) by scikit-learn's rules, checked from the second batch on:

    - no improvement of the EWA of the per-sample batch inertia (α = ``min(2B / (N + 1), 1)``,
      ``N`` the number of positive-weight rows) for ``max_no_improvement`` consecutive batches;
    - squared centre shift of one batch, ``Σ_k ‖μ_k' − μ_k‖²`` (reassignments included), at
      most ``tol · mean_j Var(x_{:, j})``.

    Labels, inertia and counts of the result come from a final full assignment pass over ``x``.
    The data are centred first (METHODS.md §0.3), which scikit-learn's mini-batch solver does not
    do: results agree to rounding. Not differentiable.

    Peak memory beyond the inputs is ``O(n·d + B·d + min(max(n, B)·k, distance_budget))``.

    Args:
      x: data, shape [n, d], floating point, finite.
      k: number of clusters (static: changing it recompiles).
      key: PRNG key for seeding, batches and reassignment.
      init: ``"k-means++"``, ``"random"`` or an array of initial centres, shape [k, d] (static).
      batch_size: global batch size ``B`` (static), capped at the number of rows as in
        scikit-learn. Under ``axis_name`` each shard assigns ``ceil(B / num_shards)`` rows.
      max_steps: maximum number of batches (static; scikit-learn's ``max_iter`` counts epochs).
      max_no_improvement: patience of the EWA rule (static); None disables it.
      reassignment_ratio: low-count reassignment threshold (see :func:`minibatch_update`); 0
        disables it.
      tol: relative centre-shift tolerance; 0 (default) disables it.
      init_size: rows to seed on (static). None means scikit-learn's default ``3·B`` (``3·k`` if
        that is below ``k``); all rows are used when it reaches the number of rows.
      sample_weight: non-negative weights, shape [n]; ones if None. Rows of weight 0 are never
        drawn, so padding with zero-weight rows leaves the batches unchanged.
      distance_budget: largest number of distance-matrix entries held at once (static); None picks
        the backend default (see :func:`kmeans`).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count; batches, seeding subsets and reassignment draws are
        identical to the single-device run, each shard assigns its slice of every batch, and the
        centroids are replicated. Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      A :class:`KMeansResult`: ``num_steps`` is the number of batches run, ``converged`` whether a
      stopping rule fired before ``max_steps``, ``counts`` the cluster weights of the final labels.

    Raises:
      TypeError: if ``x``, ``init`` or ``sample_weight`` is not floating point, or an int argument
        is not an int.
      ValueError: if shapes are wrong, ``x`` holds NaN/Inf, ``k`` is not in [1, n],
        ``batch_size < 1``, ``reassignment_ratio`` or ``tol`` is negative, or ``init`` is unknown.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import minibatch_kmeans
      >>> x = jnp.concatenate([jnp.zeros((50, 2)), jnp.full((50, 2), 10.0)])
      >>> x = x + 0.1 * jax.random.normal(jax.random.key(0), x.shape)
      >>> fit = jax.jit(
      ...     lambda x, key: minibatch_kmeans(x, k=2, key=key, batch_size=20, init="random")
      ... )
      >>> result = fit(x, jax.random.key(1))
      >>> bool(result.labels[0] != result.labels[-1]), bool(result.inertia < 3.0)
      (True, True)

    References:
      Sculley, "Web-scale k-means clustering", WWW 2010.
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:
        k = _checks.check_positive_int(k, "k")
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    if max_no_improvement is not None:
        max_no_improvement = _checks.check_positive_int(
            max_no_improvement, "max_no_improvement", minimum=0
        )
    if distance_budget is not None:
        distance_budget = _checks.check_positive_int(distance_budget, "distance_budget")
    _checks.check_nonnegative_scalar(tol, "tol")
    if key is None:
        raise ValueError("key is required (it draws the batches); pass e.g. key=jax.random.key(0).")
    ratio = _static_ratio(reassignment_ratio, key)
    if isinstance(init, str):
        _checks.check_choice(init, "init", _INITS + ("an array of shape [k, d]",))

    num_shards = 1 if axis_name is None else lax.axis_size(axis_name)
    n_total = x.shape[0] * num_shards
    batch_size = min(batch_size, n_total)
    local_batch = -(-batch_size // num_shards)
    if init_size is None:
        init_size = 3 * batch_size if 3 * batch_size >= k else 3 * k
    init_size = min(_check_init_size(init_size, k), n_total)

    x = x.astype(compute_dtype(x.dtype))
    dtype = x.dtype
    w = _init._weights(sample_weight, x)
    sample_weight = None if sample_weight is None else w
    # Centre the data (weighted mean) to reduce cancellation in ‖x‖² − 2⟨x, μ⟩ + ‖μ‖²;
    # the shift is undone at the end.
    shift = _collectives.psum(jnp.sum(w[:, None] * x, axis=0), axis_name) / _collectives.psum(
        jnp.sum(w), axis_name
    )
    x = x - shift[None, :]
    if not isinstance(init, str):
        init = _init.check_init_array(init, k, x) - shift[None, :]
    init_key, loop_key = jax.random.split(key)
    state = _initial_state(_seed(x, sample_weight, w, k, init_key, init, init_size, axis_name))

    sample = _make_sampler(x, sample_weight, axis_name)
    num_samples = _collectives.psum(jnp.sum(w > 0), axis_name).astype(dtype)
    tol_scaled = _tolerance(x, w, jnp.asarray(tol, dtype), axis_name)
    # Batch rows past batch_size (padding to a multiple of the shard count) get weight 0.
    position = _collectives.shard_index(axis_name) * local_batch + jnp.arange(local_batch)
    batch_w = (position < batch_size).astype(dtype)

    def cond(carry: _MiniBatchLoop):
        return (~carry.done) & (carry.state.step < max_steps)

    def body(carry: _MiniBatchLoop) -> _MiniBatchLoop:
        old = carry.state
        batch_key, update_key = _step_keys(loop_key, old.step)
        rows = sample(batch_key, local_batch * num_shards)
        if axis_name is not None:
            start = _collectives.shard_index(axis_name) * local_batch
            rows = lax.dynamic_slice_in_dim(rows, start, local_batch)
        new = _update(
            old, rows, batch_w, update_key, ratio, num_samples, distance_budget, axis_name
        )
        center_shift = jnp.sum((new.centroids - old.centroids) ** 2)
        stop = (tol_scaled > 0) & (center_shift <= tol_scaled)
        if max_no_improvement is not None:
            stop = stop | (new.no_improvement >= max_no_improvement)
        return _MiniBatchLoop(new, (new.step > 1) & stop)

    carry = lax.while_loop(cond, body, _MiniBatchLoop(state, jnp.asarray(False)))
    labels, dist = nearest_centroid(x, carry.state.centroids, budget=distance_budget)
    return KMeansResult(
        centroids=carry.state.centroids + shift[None, :],
        labels=labels,
        inertia=_collectives.psum(jnp.sum(w * dist), axis_name),
        num_steps=carry.state.step,
        converged=carry.done,
        counts=_collectives.psum(_collectives.segment_sum(w, labels, k), axis_name),
    )
