"""Seeding for k-means: greedy k-means++ and uniform random rows."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray
from jaxclust.cluster._distances import compute_dtype, squared_distances, squared_norms


def _check_inputs(x, k, key, sample_weight, axis_name):
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:  # inside shard_map only the global n bounds k, and it is not known from shapes
        k = _checks.check_positive_int(k, "k")
    if key is None:
        raise ValueError("key must be a JAX PRNG key (e.g. jax.random.key(0)), got None.")
    w = _weights(sample_weight, x)
    return x.astype(compute_dtype(x.dtype)), k, w


def _weights(sample_weight, x) -> Float[Array, " n"]:
    """Validated sample weights in the compute dtype (ones when ``sample_weight`` is None)."""
    dtype = compute_dtype(x.dtype)
    if sample_weight is None:
        return jnp.ones(x.shape[0], dtype)
    w = _checks.as_float_array(sample_weight, "sample_weight", ndim=1, shape="[n]")
    _checks.check_same_leading([x, w], ["x", "sample_weight"])
    if _checks.is_concrete(w) and bool((np.asarray(w) < 0).any()):
        raise ValueError("sample_weight must be non-negative.")
    return w.astype(dtype)


def check_init_array(init, k: int, x) -> Float[Array, "k d"]:
    """Validates explicit initial centres of shape [k, d] and casts them to ``x``'s dtype."""
    init = _checks.as_float_array(init, "init", ndim=2, shape="[k, d]")
    if init.shape != (k, x.shape[1]):
        raise ValueError(
            f"init must have shape [k, d] = {(k, x.shape[1])}, got {tuple(init.shape)}."
        )
    return init.astype(x.dtype)


def _safe_log(p):
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def _sample_indices(key, logits, num: int):
    """``num`` i.i.d. indices with probability ∝ ``exp(logits)``, in O(n + num · log n) memory.

    Inverse-CDF sampling (cumulative sum, then binary search of uniforms), because
    ``jax.random.categorical(..., shape=(num,))`` materialises a [num, n] Gumbel array, which for
    k-means|| (num = 2k candidates) over millions of points would need tens of GiB.
    """
    # The barrier stops XLA from constant-folding the cumulative sum when the weights are the
    # constant ones (it spends seconds folding a reduce-window over n at compile time).
    p = lax.optimization_barrier(jnp.exp(logits - jnp.max(logits)))
    cdf = jnp.cumsum(p)
    u = jax.random.uniform(key, (num,), cdf.dtype) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    return jnp.minimum(idx, logits.shape[0] - 1)


def _draw_rows(key, logits, x, num: int, axis_name):
    """``num`` i.i.d. rows of ``x`` drawn with probability ∝ ``exp(logits)`` over all shards.

    Two-level sampling under ``axis_name`` (METHODS.md §1.1, sharding): every shard draws the same
    shard index from the shard totals (same key), each shard draws a local row (its own key), and
    the owner's row is broadcast with a masked ``psum``.
    """
    if axis_name is None:
        return x[_sample_indices(key, logits, num)]
    key_shard, key_row = jax.random.split(key)
    shard_logits = _collectives.all_gather(jax.nn.logsumexp(logits), axis_name)
    shard = _sample_indices(key_shard, shard_logits, num)
    rows = x[_sample_indices(_collectives.fold_in_shard(key_row, axis_name), logits, num)]
    mine = shard == lax.axis_index(axis_name)
    return lax.psum(jnp.where(mine[:, None], rows, 0.0), axis_name)


def kmeans_plusplus(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    sample_weight: Float[Array, " n"] | None = None,
    num_local_trials: int | None = None,
    axis_name: str | None = None,
) -> Float[Array, "k d"]:
    """Greedy k-means++ seeding (the variant of scikit-learn and ott-jax).

    The first centre is drawn with probability ∝ ``w_i``; each next one is the best of
    ``num_local_trials`` candidates drawn with probability ∝ ``w_i D_i`` (``D_i`` the squared distance
    to the nearest chosen centre), "best" meaning the lowest resulting potential
    ``Σ_i w_i min(D_i, ‖x_i − c‖²)``. If every ``D_i`` is 0 (fewer distinct points than ``k``), the
    draw falls back to ``p_i ∝ w_i``. Memory is ``O(n · num_local_trials)``; no ``n × n`` matrix.

    Args:
      x: data, shape [n, d].
      k: number of centres (static: changing it recompiles).
      key: PRNG key; the result is deterministic given the key.
      sample_weight: non-negative weights, shape [n]; ones if None.
      num_local_trials: candidates per step (static); ``2 + floor(ln k)`` if None, as scikit-learn.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count, sampling is global (two-level) and the centres are
        replicated. Under plain ``jax.jit`` on sharded arrays leave it None.

    Returns:
      Initial centres, shape [k, d], rows of ``x``.

    Raises:
      TypeError: if ``x`` is not floating point or ``k`` not an int.
      ValueError: if ``x`` is not [n, d], holds NaN/Inf, ``k`` is not in [1, n] or ``key`` is None.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import kmeans_plusplus
      >>> x = jnp.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
      >>> c = kmeans_plusplus(x, k=2, key=jax.random.key(0))
      >>> sorted(float(v) > 2 for v in c[:, 0])
      [False, True]

    References:
      Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007.
    """
    x, k, w = _check_inputs(x, k, key, sample_weight, axis_name)
    if num_local_trials is None:
        num_local_trials = 2 + int(math.log(k))
    num_local_trials = _checks.check_positive_int(num_local_trials, "num_local_trials")
    return plusplus(x, w, key, k=k, num_local_trials=num_local_trials, axis_name=axis_name)


def plusplus(x, w, key, *, k: int, num_local_trials: int, axis_name, known=None):
    """Greedy k-means++ on validated inputs, optionally *continued* from ``known`` centres.

    With ``known`` of shape [k_known, d], the first ``k_known`` centres are ``known`` and ``D_i``
    starts as the squared distance to the nearest of them; only ``k − k_known`` centres are drawn
    (the novel-class seeding of METHODS.md §1.4). ``known=None`` is :func:`kmeans_plusplus`.
    """
    x_sq = squared_norms(x)
    log_w = _safe_log(w)

    key, first_key = jax.random.split(key)
    if known is None or known.shape[0] == 0:
        first = _draw_rows(first_key, log_w, x, 1, axis_name)
        d_min = squared_distances(x, first, x_sq)[:, 0]
        centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first[0])
        start = 1
    else:
        start = known.shape[0]
        d_min = jnp.min(squared_distances(x, known, x_sq), axis=1)
        centres = jnp.zeros((k, x.shape[1]), x.dtype).at[:start].set(known)

    def step(i, carry):
        centres, d_min = carry
        wd = w * d_min
        total = _collectives.psum(jnp.sum(wd), axis_name)
        logits = jnp.where(total > 0, _safe_log(wd), log_w)
        candidates = _draw_rows(jax.random.fold_in(key, i), logits, x, num_local_trials, axis_name)
        dist = squared_distances(x, candidates, x_sq)  # [n, L]
        new_d = jnp.minimum(d_min[:, None], dist)
        potential = _collectives.psum(jnp.sum(w[:, None] * new_d, axis=0), axis_name)
        best = jnp.argmin(potential)
        return centres.at[i].set(candidates[best]), new_d[:, best]

    centres, _ = lax.fori_loop(start, k, step, (centres, d_min))
    return centres


def random_init(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    sample_weight: Float[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, "k d"]:
    """``k`` distinct rows of ``x`` drawn without replacement with probability ∝ ``sample_weight``.

    Uses the Gumbel-top-k trick (Kool et al., ICML 2019, arXiv 1903.06059), which is exactly
    sequential weighted sampling without replacement and shards naturally: each shard keeps its
    local top ``k`` perturbed log-weights and the global top ``k`` is taken over the gathered ones.

    Args:
      x: data, shape [n, d].
      k: number of centres (static).
      key: PRNG key.
      sample_weight: non-negative weights, shape [n]; ones if None. Zero-weight rows are never drawn
        while enough positive-weight rows remain.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis.

    Returns:
      Initial centres, shape [k, d].

    Raises:
      TypeError, ValueError: as :func:`kmeans_plusplus`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import random_init
      >>> random_init(jnp.eye(5), k=3, key=jax.random.key(0)).shape
      (3, 5)
    """
    x, k, w = _check_inputs(x, k, key, sample_weight, axis_name)
    gumbel = jax.random.gumbel(_collectives.fold_in_shard(key, axis_name), w.shape, x.dtype)
    scores = _safe_log(w) + gumbel
    local = min(k, x.shape[0])
    top, idx = lax.top_k(scores, local)
    if axis_name is None:
        return x[idx]
    top = _collectives.all_gather(top, axis_name).reshape(-1)
    rows = _collectives.all_gather(x[idx], axis_name).reshape(-1, x.shape[1])
    return rows[lax.top_k(top, k)[1]]
