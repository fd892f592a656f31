"""Balanced k-means: an entropic optimal-transport E-step with prescribed cluster masses."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.assign import hard_assign, plan, sinkhorn
from jaxclust.cluster import _init
from jaxclust.cluster._distances import compute_dtype, squared_distances, squared_norms
from jaxclust.cluster._kmeans import _tolerance

_ROUNDINGS = ("greedy", "argmax")


class BalancedKMeansResult(NamedTuple):
    """Output of :func:`balanced_kmeans`.

    Attributes:
      centroids: cluster centres, shape [k, d]: the means of the hard clusters (the loop itself
        moves plan-weighted means).
      labels: hard cluster of each sample, int32, shape [n].
      inertia: ``Σ_i ‖x_i − μ_{labels_i}‖²`` of the hard labels, scalar.
      counts: number of samples per cluster under ``labels``, int32, shape [k].
      num_steps: outer (centre-update) iterations run, int32 scalar.
      converged: False when ``max_steps`` was reached before the centre shift fell below the
        tolerance.
      plan_converged: whether the final Sinkhorn solve met ``sinkhorn_tol`` (a False here means the
        soft assignment's marginals are off by more than that).
      balanced: whether ``counts`` equals the prescribed sizes exactly; always True for
        ``rounding="greedy"``, checked for ``"argmax"``.
    """

    centroids: Float[Array, "k d"]
    labels: Int[Array, " n"]
    inertia: Float[Array, ""]
    counts: Int[Array, " k"]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    plan_converged: Bool[Array, ""]
    balanced: Bool[Array, ""]


class _State(NamedTuple):
    centroids: Float[Array, "k d"]
    step: Int[Array, ""]
    done: Bool[Array, ""]


def _target_counts(n: int, mass: np.ndarray) -> tuple[int, ...]:
    """Integer cluster sizes summing to ``n`` closest to ``n · mass`` (largest remainders)."""
    ideal = n * mass / mass.sum()
    counts = np.floor(ideal).astype(int)
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return tuple(int(c) for c in counts)


def balanced_kmeans(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray | None = None,
    init: str | Float[Array, "k d"] = "k-means++",
    column_mass: Float[Array, " k"] | None = None,
    epsilon: ScalarLike = 0.05,
    max_steps: int = 100,
    tol: ScalarLike = 1e-4,
    sinkhorn_tol: ScalarLike = 1e-4,
    sinkhorn_max_steps: int = 2000,
    rounding: str = "greedy",
    axis_name: str | None = None,
) -> BalancedKMeansResult:
    """k-means whose clusters have prescribed sizes (equal by default), via optimal transport.

    Each iteration (METHODS.md §1.3) replaces Lloyd's nearest-centre step by an entropic OT
    assignment with cluster masses ``β`` and then takes plan-weighted means::

        C_ik = ‖x_i − μ_k‖² / s,        s = mean(C)  (makes ε scale-free)
        P    = Sinkhorn(C, a = 1/n, b = β, ε)
        μ_k  = Σ_i P_ik x_i / Σ_i P_ik

    until ``Σ_k ‖μ_k' − μ_k‖² ≤ tol · mean feature variance`` (scikit-learn's rule). Hard labels
    come from the final plan: ``rounding="greedy"`` uses :func:`jaxclust.assign.hard_assign`,
    which gives every cluster exactly its prescribed size ``round(n · β_k)``; ``"argmax"`` takes the
    most likely cluster per sample, which is not guaranteed to be balanced (``balanced`` says
    whether it is). As ``ε → 0`` the assignment tends to the exact equal-size assignment.

    Each outer step runs :func:`jaxclust.assign.sinkhorn` to ``sinkhorn_tol``; memory is
    ``O(n·k)`` (the cost matrix and the plan). Under ``axis_name`` the greedy rounding gathers the
    ``[n_global, k]`` plan onto every shard (the sort is global). Not differentiable: use
    :mod:`jaxclust.losses` for gradients. Sample weights and masks are not supported, because the
    prescribed sizes count samples.

    Args:
      x: data, shape [n, d], floating point, finite.
      k: number of clusters (static).
      key: PRNG key for seeding; required unless ``init`` is an array.
      init: ``"k-means++"``, ``"random"`` or initial centres of shape [k, d].
      column_mass: target mass per cluster ``β``, shape [k], positive (normalised to sum to one);
        uniform ``1/k`` if None. Must be concrete (it fixes the integer sizes of the rounding).
      epsilon: entropic regularisation relative to the mean cost.
      max_steps: maximum outer iterations (static).
      tol: relative tolerance on the centre shift.
      sinkhorn_tol: marginal error ``‖P1 − a‖₁`` at which each Sinkhorn solve stops.
      sinkhorn_max_steps: Sinkhorn iteration budget per outer step (static).
      rounding: ``"greedy"`` (exact sizes) or ``"argmax"`` (static).
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count, the marginals and centres are global. Under plain
        ``jax.jit`` on sharded arrays leave it None.

    Returns:
      A :class:`BalancedKMeansResult`.

    Raises:
      TypeError: if ``x`` or ``column_mass`` is not floating point.
      ValueError: if shapes are wrong, values are not finite, ``k`` is not in [1, n],
        ``column_mass`` is not positive or traced, ``epsilon <= 0``, ``rounding`` or ``init`` is
        unknown, or ``key`` is missing.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import balanced_kmeans
      >>> x = jnp.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.1]])
      >>> result = balanced_kmeans(x, k=2, key=jax.random.key(0))
      >>> result.counts.tolist(), bool(result.balanced)
      ([3, 3], True)

    References:
      Malinen & Fränti, "Balanced K-Means for Clustering", S+SSPR 2014 (the equal-size problem).
      Cuturi, "Sinkhorn Distances", NeurIPS 2013, https://arxiv.org/abs/1306.0895.
      Asano, Rupprecht, Vedaldi, "Self-labelling via simultaneous clustering and representation
      learning", ICLR 2020, https://arxiv.org/abs/1911.05371 (equipartition by Sinkhorn).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    n_local = x.shape[0]
    k = (_checks.check_num_clusters(k, n_local) if axis_name is None
         else _checks.check_positive_int(k, "k"))
    rounding = _checks.check_choice(rounding, "rounding", _ROUNDINGS)
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    sinkhorn_max_steps = _checks.check_positive_int(sinkhorn_max_steps, "sinkhorn_max_steps")
    _checks.check_nonnegative_scalar(tol, "tol")
    _checks.check_nonnegative_scalar(sinkhorn_tol, "sinkhorn_tol")
    if _checks.is_concrete(epsilon) and not float(np.asarray(epsilon)) > 0:
        raise ValueError(f"epsilon must be > 0, got {float(np.asarray(epsilon))}.")
    if column_mass is None:
        mass = np.full(k, 1.0 / k)
    else:
        given = column_mass  # as passed: concrete unless traced by the caller
        column_mass = _checks.as_float_array(column_mass, "column_mass", ndim=1, shape="[k]")
        if column_mass.shape[0] != k:
            raise ValueError(
                f"column_mass must have shape [k] = ({k},), got {tuple(column_mass.shape)}."
            )
        if not _checks.is_concrete(given):
            raise ValueError("column_mass must be concrete: it fixes the integer cluster sizes.")
        mass = np.asarray(given, np.float64)
        if (mass <= 0).any():
            raise ValueError("column_mass must be strictly positive.")
        mass = mass / mass.sum()

    x = x.astype(compute_dtype(x.dtype))
    if isinstance(init, str):
        _checks.check_choice(init, "init", ("k-means++", "random", "an array of shape [k, d]"))
        if key is None:
            raise ValueError(f"key is required when init={init!r}; pass e.g. key=jax.random.key(0).")
        w = jnp.ones(n_local, x.dtype)
        seed = _init.kmeans_plusplus if init == "k-means++" else _init.random_init
        centroids = seed(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
    else:
        centroids = _init.check_init_array(init, k, x)

    # Centre the data (as k-means does) to reduce cancellation in the distance expansion.
    n_global = _collectives.psum(jnp.asarray(n_local, x.dtype), axis_name)
    shift = _collectives.psum(jnp.sum(x, axis=0), axis_name) / n_global
    x = x - shift[None, :]
    centroids = centroids - shift[None, :]
    x_sq = squared_norms(x)
    b = jnp.asarray(mass, x.dtype)
    tol_scaled = _tolerance(x, jnp.ones(n_local, x.dtype), jnp.asarray(tol, x.dtype), axis_name)
    epsilon = jnp.asarray(epsilon, x.dtype)

    def solve(c):
        cost = squared_distances(x, c, x_sq)
        scale = _collectives.psum(jnp.sum(cost), axis_name) / (n_global * k)
        cost = cost / jnp.where(scale > 0, scale, 1.0)
        result = sinkhorn(cost, None, b, epsilon=epsilon, tol=sinkhorn_tol,
                          max_steps=sinkhorn_max_steps, axis_name=axis_name)
        return plan(result, cost), result.converged

    def cond(state: _State):
        return (~state.done) & (state.step < max_steps)

    def body(state: _State) -> _State:
        p, _ = solve(state.centroids)
        mass_k = _collectives.psum(jnp.sum(p, axis=0), axis_name)
        sums = _collectives.psum(p.T @ x, axis_name)
        new = jnp.where(mass_k[:, None] > 0, sums / jnp.where(mass_k > 0, mass_k, 1.0)[:, None],
                        state.centroids)
        shift_sq = jnp.sum((new - state.centroids) ** 2)
        return _State(new, state.step + 1, shift_sq <= tol_scaled)

    state = lax.while_loop(cond, body, _State(centroids, jnp.int32(0), jnp.asarray(False)))
    p, plan_ok = solve(state.centroids)
    # Shard count is static inside shard_map, so the prescribed sizes are Python ints.
    num_shards = 1 if axis_name is None else int(lax.psum(1, axis_name))
    target = _target_counts(num_shards * n_local, mass)
    if rounding == "argmax":
        labels = jnp.argmax(p, axis=1).astype(jnp.int32)
    elif axis_name is None:
        labels = hard_assign(p, column_counts=target)
    else:
        # The greedy sort is global: gather the plan, round it, keep this shard's rows.
        full = _collectives.all_gather(p, axis_name).reshape(num_shards * n_local, k)
        all_labels = hard_assign(full, column_counts=target)
        labels = lax.dynamic_slice_in_dim(
            all_labels, _collectives.shard_index(axis_name) * n_local, n_local)
    counts = _collectives.psum(jnp.zeros(k, jnp.int32).at[labels].add(1), axis_name)
    # Final centres are the means of the hard clusters, so centres, labels and inertia agree (an
    # empty cluster, possible only with argmax rounding, keeps its plan-weighted centre).
    sums = _collectives.psum(_collectives.segment_sum(x, labels, k), axis_name)
    centroids = jnp.where((counts > 0)[:, None],
                          sums / jnp.maximum(counts, 1).astype(x.dtype)[:, None], state.centroids)
    dist = jnp.maximum(jnp.sum((x - centroids[labels]) ** 2, axis=1), 0.0)
    inertia = _collectives.psum(jnp.sum(dist), axis_name)
    return BalancedKMeansResult(
        centroids=centroids + shift[None, :],
        labels=labels,
        inertia=inertia,
        counts=counts,
        num_steps=state.step,
        converged=state.done,
        plan_converged=plan_ok,
        balanced=jnp.all(counts == jnp.asarray(target, jnp.int32)),
    )

