"""Agglomerative clustering (Ward, average, complete, single linkage) with fixed shapes."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks

_LINKAGES = ("ward", "average", "complete", "single")


class AgglomerativeResult(NamedTuple):
    """Output of :func:`agglomerative`.

    Attributes:
      labels: cluster of every point, int32, shape [t], numbered ``0 .. num_clusters − 1`` in the
        order of each cluster's first point; ``-1`` where ``where`` is False.
      num_clusters: number of clusters in ``labels``, int32 scalar: ``min(num_clusters,
        n_valid)`` (0 for a fully masked set).
      linkage: the merges performed, in SciPy's format, shape [t − 1, 4]: row ``s`` is
        ``[id_a, id_b, height, size]`` with ``id_a < id_b``; points are numbered ``0 ..
        n_valid − 1`` in order among the valid ones and the cluster made at merge ``s`` is
        ``n_valid + s``. Rows from ``num_merges`` on are ``[-1, -1, 0, 0]``. With
        ``num_clusters=1`` this is the whole tree, equal to ``scipy.cluster.hierarchy.linkage``.
      num_merges: number of merges performed, int32 scalar: ``n_valid − num_clusters``.
    """

    labels: Int[Array, " t"]
    num_clusters: Int[Array, ""]
    linkage: Float[Array, "t_minus_1 4"]
    num_merges: Int[Array, ""]


class _State(NamedTuple):
    dist: Float[Array, "t t"]  # Lance–Williams dissimilarities; +inf off the active clusters
    nn_val: Float[Array, " t"]  # lower bound on each row's minimum (exact where not stale)
    nn_idx: Int[Array, " t"]
    stale: Bool[Array, " t"]
    size: Float[Array, " t"]  # 0 for inactive rows
    rep: Int[Array, " t"]  # representative row of each point's cluster
    cid: Int[Array, " t"]  # SciPy id of the cluster held by each active row
    linkage: Float[Array, "t_minus_1 4"]


def _lance_williams(linkage, d_ki, d_kj, d_ij, n_i, n_j, n_k):
    """Dissimilarity from every cluster k to the union of clusters i and j (METHODS.md §1.8)."""
    if linkage == "ward":  # on δ = squared distances; the height is √δ
        total = n_i + n_j + n_k
        total = jnp.where(total > 0, total, 1.0)
        return ((n_i + n_k) * d_ki + (n_j + n_k) * d_kj - n_k * d_ij) / total
    if linkage == "average":
        return (n_i * d_ki + n_j * d_kj) / (n_i + n_j)
    if linkage == "complete":
        return jnp.maximum(d_ki, d_kj)
    return jnp.minimum(d_ki, d_kj)


def _initial_dissimilarities(x, valid, linkage):
    mean = jnp.sum(jnp.where(valid[:, None], x, 0), 0) / jnp.maximum(jnp.sum(valid), 1)
    x = x - mean[None, :]
    sq = jnp.sum(x * x, axis=1)
    gram = jnp.matmul(x, x.T, precision=lax.Precision.HIGHEST)
    dist = jnp.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0)
    if linkage != "ward":
        dist = jnp.sqrt(dist)
    t = x.shape[0]
    ok = valid[:, None] & valid[None, :] & ~jnp.eye(t, dtype=bool)
    return jnp.where(ok, dist, jnp.inf)


def _agglomerate(x, valid, num_clusters, linkage: str, max_merges: int) -> AgglomerativeResult:
    """Greedy merging with a cached (lazily refreshed) nearest neighbour per row.

    Every step merges the globally closest pair (argmin of the row minima), so the merge sequence
    is the sequential greedy one, which for the reducible linkages here equals SciPy's sorted
    nearest-neighbour-chain result. Row minima never decrease (reducibility: d(k, i∪j) ≥
    min(d(k, i), d(k, j))), so a row whose cached neighbour was merged keeps its old minimum as a
    valid lower bound and is refreshed only when it reaches the top: O(t) work per merge instead
    of an O(t²) argmin, and no per-row loop whose length depends on the data.
    """
    t = x.shape[0]
    dtype = x.dtype
    dist = _initial_dissimilarities(x, valid, linkage)
    n_valid = jnp.sum(valid.astype(jnp.int32))
    target = jnp.clip(num_clusters, 1, jnp.maximum(n_valid, 1))
    num_merges = jnp.maximum(n_valid - target, 0)
    ids = jnp.cumsum(valid.astype(jnp.int32)) - 1
    rows = jnp.arange(t, dtype=jnp.int32)
    state = _State(
        dist=dist,
        nn_val=jnp.min(dist, axis=1),
        nn_idx=jnp.argmin(dist, axis=1).astype(jnp.int32),
        stale=jnp.zeros(t, bool),
        size=valid.astype(dtype),
        rep=rows,
        cid=jnp.where(valid, ids, -1),
        linkage=jnp.tile(jnp.asarray([-1.0, -1.0, 0.0, 0.0], dtype), (max(t - 1, 1), 1))[: t - 1],
    )

    def merge(step, s: _State) -> _State:
        active = step < num_merges

        # The refresh loop reads the matrix from its carry and returns it unchanged (not from a
        # closure): the scatters below then update the loop's output in place. A closure would
        # stay live after the loop and force XLA to copy the [t, t] matrix on every merge.
        live = s.size > 0

        def refresh(c):
            dist, nn_val, nn_idx, stale = c
            a = jnp.argmin(nn_val)
            row = jnp.where(live, dist[a], jnp.inf)
            return (
                dist,
                nn_val.at[a].set(jnp.min(row)),
                nn_idx.at[a].set(jnp.argmin(row).astype(jnp.int32)),
                stale.at[a].set(False),
            )

        def needs_refresh(c):
            _, nn_val, _, stale = c
            return active & stale[jnp.argmin(nn_val)]

        dist, nn_val, nn_idx, stale = lax.while_loop(
            needs_refresh, refresh, (s.dist, s.nn_val, s.nn_idx, s.stale)
        )
        s = s._replace(dist=dist, nn_val=nn_val, nn_idx=nn_idx, stale=stale)
        a = jnp.argmin(s.nn_val).astype(jnp.int32)
        b = s.nn_idx[a]
        i, j = jnp.minimum(a, b), jnp.maximum(a, b)
        d_ij = s.nn_val[a]
        row_i, row_j = s.dist[i], s.dist[j]
        n_i, n_j = s.size[i], s.size[j]
        new = _lance_williams(linkage, row_i, row_j, d_ij, n_i, n_j, s.size)
        keep = live & (rows != i) & (rows != j)
        new = jnp.where(keep, new, jnp.inf)
        new_i = jnp.where(active, new, row_i)
        # Row and column j are left as they are: every reader masks inactive clusters (size 0),
        # which saves a strided column scatter per merge.
        dist = s.dist.at[i].set(new_i).at[:, i].set(new_i)

        # Cached neighbours: rows pointing at i or j become stale (their old minimum stays a lower
        # bound); a row whose distance to the new cluster beats its cache points there instead.
        hit = (s.nn_idx == i) | (s.nn_idx == j)
        better = keep & (new < s.nn_val)
        nn_val = jnp.where(better, new, s.nn_val)
        nn_idx = jnp.where(better, i, s.nn_idx)
        stale = s.stale | (hit & ~better & keep)
        nn_val = nn_val.at[i].set(jnp.min(new)).at[j].set(jnp.inf)
        nn_idx = nn_idx.at[i].set(jnp.argmin(new).astype(jnp.int32))
        stale = stale.at[i].set(False).at[j].set(False)

        height = jnp.sqrt(jnp.maximum(d_ij, 0.0)) if linkage == "ward" else d_ij
        id_i, id_j = s.cid[i], s.cid[j]
        record = jnp.stack(
            [jnp.minimum(id_i, id_j), jnp.maximum(id_i, id_j), height, n_i + n_j]
        ).astype(dtype)
        merged = _State(
            dist=dist,
            nn_val=nn_val,
            nn_idx=nn_idx,
            stale=stale,
            size=s.size.at[i].add(n_j).at[j].set(0.0),
            rep=jnp.where(s.rep == j, i, s.rep),
            cid=s.cid.at[i].set((n_valid + step).astype(jnp.int32)).at[j].set(-1),
            linkage=s.linkage.at[step].set(record),
        )
        # Only O(t) fields are selected here; the [t, t] matrix was written conditionally above.
        small = jax.tree.map(lambda n, o: jnp.where(active, n, o), merged._replace(dist=s.dist), s)
        return small._replace(dist=dist)

    if max_merges > 0:
        state = lax.fori_loop(0, max_merges, merge, state)
    is_root = valid & (state.rep == rows)
    rank = jnp.cumsum(is_root.astype(jnp.int32)) - 1
    labels = jnp.where(valid, rank[state.rep], -1).astype(jnp.int32)
    return AgglomerativeResult(
        labels=labels,
        num_clusters=jnp.sum(is_root.astype(jnp.int32)),
        linkage=state.linkage,
        num_merges=num_merges.astype(jnp.int32),
    )


def _check_inputs(x, num_clusters, linkage, where):
    x = _checks.as_float_array(x, "x", ndim=2, shape="[t, d]")
    _checks.check_choice(linkage, "linkage", _LINKAGES)
    t = x.shape[0]
    if t == 0:
        raise ValueError("x must hold at least one point, got shape (0, d).")
    if isinstance(num_clusters, (int, np.integer)) and not isinstance(num_clusters, bool):
        _checks.check_num_clusters(num_clusters, t, "num_clusters")
    else:
        if isinstance(num_clusters, bool) or not jnp.issubdtype(
            jnp.result_type(num_clusters), jnp.integer
        ):
            raise TypeError(
                f"num_clusters must be an int or an integer scalar array, got "
                f"{type(num_clusters).__name__}."
            )
        if jnp.ndim(num_clusters) != 0:
            raise ValueError(f"num_clusters must be a scalar, got shape {jnp.shape(num_clusters)}.")
        if _checks.is_concrete(num_clusters):
            _checks.check_num_clusters(int(num_clusters), t, "num_clusters")
    if where is None:
        where = jnp.ones(t, bool)
    else:
        where = _checks.as_bool_array(where, "where", n=t, other="x")
    if not jnp.issubdtype(x.dtype, jnp.float64):
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return x, where


def agglomerative(
    x: Float[Array, "t d"],
    num_clusters: int | Int[Array, ""],
    *,
    linkage: str = "ward",
    where: Bool[Array, " t"] | None = None,
    max_merges: int | None = None,
) -> AgglomerativeResult:
    """Agglomerative (hierarchical) clustering cut at a given number of clusters.

    Starting from singletons, merges the two closest clusters until ``num_clusters`` remain
    (METHODS.md §1.8). Dissimilarities follow SciPy: ``"ward"`` works on squared Euclidean
    distances with the Lance–Williams update ``δ(k, i∪j) = [(n_i+n_k) δ_ki + (n_j+n_k) δ_kj −
    n_k δ_ij] / (n_i+n_j+n_k)`` and reports heights ``√δ``; ``"average"``, ``"complete"`` and
    ``"single"`` work on Euclidean distances. All four are reducible, so the greedy sequence of
    merges equals SciPy's linkage and the cut equals ``fcluster(Z, num_clusters, "maxclust")``
    when there are no ties in the distances.

    Ward is Euclidean: for cosine-type embeddings pass L2-normalised rows (``‖x̂ − ŷ‖² = 2 − 2
    cos``); never feed ``1 − cos`` as a distance.

    The loop is a ``lax.fori_loop`` of ``max_merges`` steps on fixed shapes, each ``O(t)``: a
    cached nearest neighbour per row, refreshed lazily, replaces the ``O(t²)`` argmin of the
    naive algorithm. Peak memory is the ``[t, t]`` dissimilarity matrix. ``jax.vmap`` clusters
    many padded sets at once (e.g. the token vectors of documents), each with its own
    ``num_clusters`` and ``where``. Labels are integers: nothing here is differentiable.

    Args:
      x: points, shape [t, d], floating point, finite. Half precision is computed in float32.
      num_clusters: number of clusters to stop at, ``1 <= num_clusters <= t``; a Python int or a
        traced int32 scalar (so it may differ between sets under ``jax.vmap``). Sets with fewer
        valid points keep every point as its own cluster.
      linkage: ``"ward"`` (default), ``"average"``, ``"complete"`` or ``"single"`` (static).
      where: validity mask, shape [t]; points where it is False take no part and get label
        ``-1``. Clustering a masked set equals clustering its valid rows alone.
      max_merges: static number of loop steps, at least the merges needed (``n_valid −
        num_clusters``); default ``t − num_clusters`` for a Python int ``num_clusters``, else
        ``t − 1``. A smaller bound makes batches that need few merges (e.g. token pooling with a
        known pool factor) faster; too small a bound stops early with more clusters.

    Returns:
      An :class:`AgglomerativeResult` with ``labels`` [t], ``num_clusters``, the SciPy-style
      ``linkage`` [t − 1, 4] of the merges performed, and ``num_merges``.

    Raises:
      TypeError: if ``x`` is not floating point, ``where`` is not boolean, or ``num_clusters``
        is not an integer.
      ValueError: if ``x`` is not [t, d] or holds NaN/Inf, ``num_clusters`` is outside ``[1,
        t]``, ``linkage`` is unknown, ``where`` has the wrong length, or ``max_merges`` is
        negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import agglomerative
      >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.5], [9.0, 0.0]])
      >>> agglomerative(x, 3).labels
      Array([0, 0, 1, 1, 2], dtype=int32)
      >>> agglomerative(x, 1).linkage[:, :2].astype(int).tolist()
      [[0, 1], [2, 3], [4, 6], [5, 7]]

    References:
      Ward, "Hierarchical grouping to optimize an objective function", JASA 58 (1963).
      Lance & Williams, "A general theory of classificatory sorting strategies", The Computer
      Journal 9 (1967). Müllner, "Modern hierarchical, agglomerative clustering algorithms",
      arXiv:1109.2378 (https://arxiv.org/abs/1109.2378).
    """
    x, where = _check_inputs(x, num_clusters, linkage, where)
    t = x.shape[0]
    if max_merges is None:
        static = isinstance(num_clusters, (int, np.integer))
        max_merges = t - int(num_clusters) if static else t - 1
    else:
        max_merges = _checks.check_positive_int(max_merges, "max_merges", minimum=0)
        max_merges = min(max_merges, t - 1)
    num_clusters = jnp.asarray(num_clusters, jnp.int32)
    return _agglomerate(x, where, num_clusters, linkage, max_merges)
