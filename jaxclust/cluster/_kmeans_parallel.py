"""k-means|| seeding (Bahmani et al., 2012) for large n."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray
from jaxclust.cluster import _init
from jaxclust.cluster._distances import DEFAULT_DISTANCE_BUDGET, nearest_centroid, squared_norms


def kmeans_parallel(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    sample_weight: Float[Array, " n"] | None = None,
    rounds: int = 5,
    oversampling: float = 2.0,
    refine_steps: int = 20,
    distance_budget: int | None = DEFAULT_DISTANCE_BUDGET,
    axis_name: str | None = None,
) -> Float[Array, "k d"]:
    """k-means|| seeding: a few passes over the data instead of k, then k-means++ on candidates.

    1. One centre drawn with probability ∝ ``w_i``.
    2. ``rounds`` times: draw ``ℓ = ceil(oversampling · k)`` candidates i.i.d. with probability
       ∝ ``w_i D_i`` (``D_i`` the squared distance to the nearest candidate so far) and update ``D``.
       Bahmani et al. include each point independently with probability ``min(1, ℓ w_i D_i / φ)``,
       whose random count cannot have a static shape; drawing exactly ℓ points per round (with
       replacement) has the same expected count and keeps shapes static.
    3. Each candidate is weighted by the total weight of the points nearest to it.
    4. The ``1 + rounds · ℓ`` weighted candidates are reduced to ``k`` centres by greedy k-means++
       and ``refine_steps`` weighted Lloyd iterations (as Spark MLlib does).

    Cost: ``rounds + 1`` passes over ``x`` of ``O(n · ℓ · d)`` each, against ``k`` passes for
    k-means++; memory ``O(n · d + min(n · ℓ, distance_budget))``.

    Args:
      x: data, shape [n, d].
      k: number of centres (static).
      key: PRNG key.
      sample_weight: non-negative weights, shape [n]; ones if None.
      rounds: oversampling rounds (static); the paper finds 5 enough.
      oversampling: candidates per round as a multiple of ``k`` (static); the paper uses 0.5–2.
      refine_steps: weighted Lloyd iterations on the candidates after k-means++ (static).
      distance_budget: largest number of distance-matrix entries held at once (static); None
        picks the backend default (see :func:`jaxclust.cluster.kmeans`).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        candidates are drawn globally (two-level sampling) and the result is replicated.

    Returns:
      Initial centres, shape [k, d].

    Raises:
      TypeError, ValueError: as :func:`jaxclust.cluster.kmeans_plusplus`, and for ``rounds < 1`` or
        too few candidates (``1 + rounds · ℓ < k``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import kmeans_parallel
      >>> x = jax.random.normal(jax.random.key(0), (1000, 2))
      >>> kmeans_parallel(x, k=8, key=jax.random.key(1)).shape
      (8, 2)

    References:
      Bahmani, Moseley, Vattani, Kumar, Vassilvitskii, "Scalable K-Means++", VLDB 2012,
      arXiv 1203.6402.
    """
    from jaxclust.cluster._kmeans import _lloyd

    x, k, w = _init._check_inputs(x, k, key, sample_weight, axis_name)
    rounds = _checks.check_positive_int(rounds, "rounds")
    refine_steps = _checks.check_positive_int(refine_steps, "refine_steps", minimum=0)
    if not oversampling > 0:
        raise ValueError(f"oversampling must be > 0, got {oversampling}.")
    ell = max(1, -(-int(round(oversampling * k * 1e6)) // 1_000_000))
    num_candidates = 1 + rounds * ell
    if num_candidates < k:
        raise ValueError(
            f"k-means|| draws 1 + rounds * ceil(oversampling * k) = {num_candidates} candidates, "
            f"fewer than k={k}; increase rounds or oversampling."
        )
    x_sq = squared_norms(x)
    log_w = _init._safe_log(w)
    key, first_key, reduce_key = jax.random.split(key, 3)
    first = _init._draw_rows(first_key, log_w, x, 1, axis_name)
    d_min = nearest_centroid(x, first, x_sq=x_sq, budget=distance_budget)[1]
    candidates = jnp.zeros((num_candidates, x.shape[1]), x.dtype).at[0].set(first[0])

    def round_fn(r, carry):
        candidates, d_min = carry
        wd = w * d_min
        total = _collectives.psum(jnp.sum(wd), axis_name)
        logits = jnp.where(total > 0, _init._safe_log(wd), log_w)
        new = _init._draw_rows(jax.random.fold_in(key, r), logits, x, ell, axis_name)
        d_new = nearest_centroid(x, new, x_sq=x_sq, budget=distance_budget)[1]
        candidates = lax.dynamic_update_slice(candidates, new, (1 + r * ell, 0))
        return candidates, jnp.minimum(d_min, d_new)

    candidates, _ = lax.fori_loop(0, rounds, round_fn, (candidates, d_min))
    nearest = nearest_centroid(x, candidates, x_sq=x_sq, budget=distance_budget)[0]
    weights = _collectives.psum(
        _collectives.segment_sum(w, nearest, num_candidates), axis_name
    )
    # The reduction runs on the (replicated) weighted candidates: no collectives needed.
    centres = _init.kmeans_plusplus(candidates, k=k, key=reduce_key, sample_weight=weights)
    if refine_steps == 0:
        return centres
    return _lloyd(
        candidates, weights, centres, max_steps=refine_steps, tol=0.0,
        distance_budget=distance_budget, axis_name=None,
    ).centroids
