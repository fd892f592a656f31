"""Spectral clustering (Ng, Jordan & Weiss) on RBF, kNN-graph or precomputed affinities."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import sparse
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster._distances import compute_dtype, squared_distances
from jaxclust.cluster._kmeans import KMeansResult, kmeans
from jaxclust.cluster._neighbors import knn

_AFFINITIES = ("rbf", "nearest_neighbors", "precomputed")
_SOLVERS = ("auto", "dense", "lobpcg")
_EMBEDDINGS = ("njw", "rw")
#: Largest n for which ``eigen_solver="auto"`` picks the dense ``eigh`` (static).
DENSE_MAX_N = 300
#: Degree floor for isolated nodes (METHODS.md §1.7).
_DEGREE_FLOOR = 1e-12


class SpectralResult(NamedTuple):
    """Output of :func:`spectral_clustering`.

    Attributes:
      labels: cluster of every sample, int32, shape [n], in ``0..k-1``.
      embedding: the spectral embedding that k-means clustered, shape [n, k]: the top ``k``
        eigenvectors of ``D^{-1/2} A D^{-1/2}`` with unit rows (``embedding="njw"``), or divided
        by ``√degree`` (``embedding="rw"``, scikit-learn's embedding). Column signs and, for
        repeated eigenvalues, the basis are arbitrary.
      eigenvalues: the ``k`` smallest eigenvalues of the normalised Laplacian
        ``L = I − D^{-1/2} A D^{-1/2}``, ascending, shape [k]; ``k`` values near 0 and a gap
        after them indicate ``k`` well-separated clusters.
      inertia: k-means inertia of the returned labels in the embedding, scalar.
      num_steps: LOBPCG iterations run, int32 scalar (0 for the dense solver).
      converged: True when every returned eigenpair has a relative residual
        ``‖Ãu − λu‖ ≤ eigen_tol`` (always checked, also for the dense solver).
      kmeans: the full :class:`~jaxclust.cluster.KMeansResult` on the embedding.
    """

    labels: Int[Array, " n"]
    embedding: Float[Array, "n k"]
    eigenvalues: Float[Array, " k"]
    inertia: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    kmeans: KMeansResult


def rbf_affinity(x: Float[Array, "n d"], *, gamma: ScalarLike = 1.0) -> Float[Array, "n n"]:
    """Dense Gaussian (RBF) affinity ``A_ij = exp(−γ‖x_i − x_j‖²)``.

    The diagonal is 1, as in ``sklearn.metrics.pairwise.rbf_kernel``; :func:`spectral_clustering`
    ignores it (see there). Memory is ``O(n²)``: for large ``n`` use :func:`knn_affinity`.

    Args:
      x: data, shape [n, d], floating point, finite.
      gamma: kernel width ``γ = 1/(2σ²)``, ``>= 0``; may be traced.

    Returns:
      The symmetric affinity matrix, shape [n, n].

    Raises:
      TypeError: if ``x`` is not floating point.
      ValueError: if ``x`` is not [n, d] or holds NaN/Inf, or ``gamma`` is negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import rbf_affinity
      >>> rbf_affinity(jnp.array([[0.0], [1.0]]), gamma=0.5).round(4).tolist()
      [[1.0, 0.6065], [0.6065, 1.0]]
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    _checks.check_nonnegative_scalar(gamma, "gamma")
    return _rbf(x.astype(compute_dtype(x.dtype)), gamma)


def _rbf(x, gamma):
    x = x - jnp.mean(x, axis=0, keepdims=True)  # centring limits cancellation in the expansion
    return jnp.exp(-jnp.asarray(gamma, x.dtype) * squared_distances(x, x))


def knn_affinity(
    x: Float[Array, "n d"],
    *,
    n_neighbors: int = 10,
    include_self: bool = True,
    block_size: int | None = None,
    where: Bool[Array, " n"] | None = None,
) -> sparse.BCOO:
    """Symmetrised kNN connectivity ``A = ½(M + Mᵀ)`` as a sparse [n, n] matrix.

    ``M_ij = 1`` when ``j`` is among the ``n_neighbors`` nearest rows of ``i`` (Euclidean), as
    ``sklearn.neighbors.kneighbors_graph(mode="connectivity")``; with ``include_self=True`` (the
    default of scikit-learn's ``SpectralClustering``) a row counts as its own nearest neighbour,
    so it gets ``n_neighbors − 1`` others. ``A_ij`` is 1 for mutual neighbours, ½ for one-sided
    ones, 0 otherwise (METHODS.md §1.7).

    The neighbours come from :func:`knn` in row blocks and the result is a
    ``jax.experimental.sparse.BCOO`` with ``2·n·(n_neighbors − include_self) + n·include_self``
    stored entries (duplicates add up), so memory is ``O(n·n_neighbors)``, never ``O(n²)``;
    ``.todense()`` gives the dense matrix.

    Args:
      x: data, shape [n, d], floating point, finite.
      n_neighbors: neighbours per row, self included when ``include_self`` (static).
      include_self: whether each row is its own neighbour (static).
      block_size: query rows per block of the neighbour search (static); see :func:`knn`.
      where: validity mask, shape [n]; rows where it is False are neither neighbours nor have
        any (their row and column are zero), so a padded set gives the graph of its valid rows.

    Returns:
      A symmetric ``BCOO`` matrix of shape [n, n] with entries in {0, ½, 1}.

    Raises:
      TypeError: if ``x`` is not floating point, ``n_neighbors`` is not an int or ``where`` is
        not boolean.
      ValueError: if ``x`` is not [n, d] or holds NaN/Inf, ``n_neighbors`` is out of range, or
        ``where`` has the wrong length.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import knn_affinity
      >>> a = knn_affinity(jnp.array([[0.0], [1.0], [5.0]]), n_neighbors=2)
      >>> a.todense().tolist()
      [[1.0, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.5, 1.0]]
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    n = x.shape[0]
    n_neighbors = _checks.check_positive_int(n_neighbors, "n_neighbors")
    limit = n if include_self else n - 1
    if n_neighbors > limit:
        raise ValueError(f"n_neighbors must be <= {limit} for n={n} samples, got {n_neighbors}.")
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=n, other="x")
    x = x.astype(compute_dtype(x.dtype))
    return _knn_graph(x, n_neighbors, bool(include_self), block_size, where)


def _knn_graph(x, n_neighbors, include_self, block_size, where=None):
    """The kNN graph's COO entries; with ``where``, entries touching invalid rows are 0."""
    n = x.shape[0]
    others = n_neighbors - int(include_self)
    rows_list, cols_list, data_list = [], [], []
    if others > 0:
        idx = knn(x, k=others, block_size=block_size, where=where).indices
        rows = jnp.repeat(jnp.arange(n, dtype=jnp.int32), others)
        cols = idx.reshape(-1)
        # knn marks missing neighbours (invalid rows, or fewer valid rows than k) with -1.
        half = jnp.where(cols >= 0, 0.5, 0.0).astype(x.dtype)
        cols = jnp.maximum(cols, 0)
        rows_list += [rows, cols]
        cols_list += [cols, rows]
        data_list += [half, half]
    if include_self:
        diag = jnp.arange(n, dtype=jnp.int32)
        rows_list.append(diag)
        cols_list.append(diag)
        data_list.append(jnp.ones(n, x.dtype) if where is None else where.astype(x.dtype))
    indices = jnp.stack([jnp.concatenate(rows_list), jnp.concatenate(cols_list)], axis=1)
    return sparse.BCOO((jnp.concatenate(data_list), indices), shape=(n, n))


class _Operator(NamedTuple):
    """``Ã = D^{-1/2} A₀ D^{-1/2}`` with ``A₀`` the affinity without its diagonal."""

    dense: Float[Array, "n n"] | None  # Ã itself (dense path)
    rows: Int[Array, " e"] | None  # sparse path: COO entries of A₀, scaled to Ã
    cols: Int[Array, " e"] | None
    data: Float[Array, " e"] | None
    inv_sqrt_degree: Float[Array, " n"]
    shift: Float[Array, " n"] | None = None  # sparse path: a diagonal added to Ã (padding rows)

    def matmul(self, v):
        if self.dense is not None:
            return jnp.matmul(self.dense, v, precision=lax.Precision.HIGHEST)
        contrib = self.data[:, None] * v[self.cols]
        out = jax.ops.segment_sum(contrib, self.rows, num_segments=v.shape[0])
        return out if self.shift is None else out + self.shift[:, None] * v

    def todense(self):
        if self.dense is not None:
            return self.dense
        n = self.inv_sqrt_degree.shape[0]
        dense = jnp.zeros((n, n), self.data.dtype).at[self.rows, self.cols].add(self.data)
        return dense if self.shift is None else dense + jnp.diag(self.shift)

    def push_down(self, where, floor: float):
        """Gives the rows outside ``where`` the eigenvalue ``floor``, at or below Ã's spectrum.

        Padding rows are isolated nodes (zero rows of Ã, eigenvalue 0). A valid graph can have
        negative eigenvalues among its top ``k`` (a triangle has 1, −½, −½), which the padding's
        zeros would then displace. The dense solver uses −2, below the whole spectrum [−1, 1].
        LOBPCG runs on Ã + I, which must stay positive semi-definite (jax's ``lobpcg_standard``
        returns NaN otherwise), so it uses −1: only an eigenvalue of exactly −1 (a bipartite
        valid graph, e.g. two points, with ``k`` reaching it) can then tie with the padding.
        """
        shift = jnp.where(where, 0.0, floor).astype(self.inv_sqrt_degree.dtype)
        if self.dense is not None:
            return self._replace(dense=self.dense + jnp.diag(shift))
        return self._replace(shift=shift)


def _normalized_operator(affinity, densify: bool) -> _Operator:
    """Drops self-loops and normalises symmetrically (NJW step 1, with the degree floor).

    The diagonal of ``A`` is ignored, as ``scipy.sparse.csgraph.laplacian(normed=True)`` (used by
    scikit-learn) ignores it: NJW's ``A_ii = 0``.
    """
    if isinstance(affinity, sparse.BCOO):
        n = affinity.shape[0]
        rows, cols = affinity.indices[:, 0], affinity.indices[:, 1]
        # Padding entries of a BCOO carry out-of-range indices; they are dropped here.
        keep = (rows != cols) & (rows < n) & (cols < n)
        data = jnp.where(keep, affinity.data, 0.0)
        rows, cols = jnp.where(keep, rows, 0), jnp.where(keep, cols, 0)
        degree = jax.ops.segment_sum(data, rows, num_segments=n)
        s = lax.rsqrt(jnp.maximum(degree, _DEGREE_FLOOR))
        data = s[rows] * data * s[cols]
        op = _Operator(None, rows, cols, data, s)
        if densify:
            op = _Operator(op.todense(), None, None, None, s)
        return op
    n = affinity.shape[0]
    a = jnp.where(jnp.eye(n, dtype=bool), 0.0, affinity)
    degree = jnp.sum(a, axis=1)
    s = lax.rsqrt(jnp.maximum(degree, _DEGREE_FLOOR))
    return _Operator(s[:, None] * a * s[None, :], None, None, None, s)


def _top_eigenvectors(op: _Operator, k, solver, key, max_steps, dtype, tol):
    """Top-``k`` eigenpairs of Ã (descending) and the LOBPCG iteration count."""
    n = op.inv_sqrt_degree.shape[0]
    if solver == "dense":
        w, v = jnp.linalg.eigh(op.todense())
        return w[::-1][:k], v[:, ::-1][:, :k], jnp.int32(0)
    # LOBPCG finds the largest eigenvalues; Ã + I has spectrum in [0, 2], so the residual test
    # of lobpcg_standard (relative to λ + ‖Av‖) is well scaled. A block larger than k speeds up
    # convergence when λ_k and λ_{k+1} are close (rate ~ λ_{p+1}/λ_k for block size p).
    block = _lobpcg_block(n, k)
    x0 = jax.random.normal(key, (n, block), dtype)
    # lobpcg_standard stops when ‖Av − θv‖ < tol_l · 10·n·(θ + ‖Av‖) ≈ tol_l · 40·n for A = Ã + I;
    # this tol_l makes that match our test ‖Ãu − λu‖ ≤ eigen_tol · (1 + |λ|) ≈ 2 · eigen_tol.
    # (Its default, float epsilon, is far too loose in float32 for large n: it stops after a
    # few steps with residuals of 1e-2, larger than the eigengaps of kNN graphs.)
    theta, u, steps = sparse.linalg.lobpcg_standard(
        lambda v: op.matmul(v) + v, x0, m=max_steps, tol=tol / (20.0 * n)
    )
    order = jnp.argsort(-theta)[:k]
    return theta[order] - 1.0, u[:, order], jnp.asarray(steps, jnp.int32)


def _lobpcg_block(n: int, k: int) -> int:
    return max(k, min(k + max(k, 4), (n - 1) // 5))


def spectral_clustering(
    x: Float[Array, "n d"] | Float[Array, "n n"] | sparse.BCOO,
    *,
    k: int,
    key: KeyArray,
    affinity: str = "rbf",
    gamma: ScalarLike = 1.0,
    n_neighbors: int = 10,
    eigen_solver: str = "auto",
    embedding: str = "njw",
    n_init: int = 10,
    eigen_max_steps: int = 300,
    eigen_tol: ScalarLike | None = None,
    kmeans_max_steps: int = 300,
    block_size: int | None = None,
    where: Bool[Array, " n"] | None = None,
) -> SpectralResult:
    """Spectral clustering of Ng, Jordan & Weiss (2001): k-means on the top eigenvectors.

    Steps (METHODS.md §1.7): build the affinity ``A`` (ignoring its diagonal, as both NJW and
    scikit-learn's normalised Laplacian do), normalise ``Ã = D^{-1/2} A D^{-1/2}`` with
    ``D = diag(A1)`` (degrees floored at 1e-12 so isolated points give zero rows, not NaN), take
    the eigenvectors ``U`` [n, k] of the ``k`` largest eigenvalues of ``Ã`` (the ``k`` smallest of
    ``L = I − Ã``), row-normalise them (``embedding="njw"``) and run k-means++ with ``n_init``
    restarts on the rows.

    The dense solver is ``jnp.linalg.eigh`` (``O(n³)`` time, ``O(n²)`` memory). The ``"lobpcg"``
    solver runs ``jax.experimental.sparse.linalg.lobpcg_standard`` on matrix products with ``Ã``;
    with the kNN affinity these are sparse gathers and segment sums, so the whole pipeline uses
    ``O(n·(d + n_neighbors + k))`` memory plus one [block, n] distance block of the neighbour
    search, never an [n, n] matrix. The result is not differentiable.

    Sharding: under ``jax.jit`` on inputs whose rows are sharded over a mesh, XLA partitions the
    whole pipeline (tested on 8 devices: same labels and eigenvalues as one device). Rows
    sharded over an ``AxisType.Explicit`` axis run with that axis in Auto mode
    (``jax.sharding.auto_axes``) and the per-sample outputs come back sharded like ``x``. There
    is no ``axis_name`` for ``jax.shard_map``: the eigensolver needs the whole operator.

    Differences from ``sklearn.cluster.SpectralClustering``: scikit-learn divides the eigenvectors
    by ``√degree`` and does not row-normalise (``embedding="rw"`` does the same); the partitions
    agree on well-separated data. Parameters map one to one: ``n_clusters → k``,
    ``affinity``, ``gamma``, ``n_neighbors``, ``n_init``, ``eigen_tol``, ``random_state → key``,
    ``eigen_solver`` ("arpack"/"amg" have no equivalent: use "lobpcg" or "dense");
    ``assign_labels="kmeans"`` is the only labelling.

    Args:
      x: data [n, d]; or, with ``affinity="precomputed"``, a non-negative affinity matrix
        [n, n], dense or ``jax.experimental.sparse.BCOO`` (used as ``½(A + Aᵀ)``).
      k: number of clusters, and of eigenvectors (static: changing it recompiles).
      key: PRNG key for the LOBPCG start and k-means++ seeding.
      affinity: ``"rbf"`` (dense Gaussian kernel, :func:`rbf_affinity`),
        ``"nearest_neighbors"`` (sparse symmetrised kNN graph, :func:`knn_affinity`) or
        ``"precomputed"`` (static).
      gamma: RBF width ``γ`` for ``affinity="rbf"``; may be traced.
      n_neighbors: neighbours per point, self included, for ``affinity="nearest_neighbors"``
        (static).
      eigen_solver: ``"dense"``, ``"lobpcg"`` (needs ``5·(k + max(k, 4)) < n`` or at least
        ``5k < n``) or ``"auto"``: dense when ``n <= 300`` or the problem is too small for
        LOBPCG, else LOBPCG (dense ``eigh`` is ``O(n³)`` and already takes seconds on a CPU
        at n = 1000; LOBPCG on the kNN graph takes milliseconds) (static).
      embedding: ``"njw"`` (unit rows, the paper) or ``"rw"`` (``U / √degree``, scikit-learn)
        (static).
      n_init: k-means restarts (static).
      eigen_max_steps: maximum LOBPCG iterations (static).
      eigen_tol: tolerance on the relative residual ``‖Ãu − λu‖ / (1 + |λ|)`` of every
        returned eigenpair behind ``converged`` and LOBPCG's stopping rule; None means 1e-8 in
        float64 and 1e-5 in float32. Eigenvector errors scale like the residual divided by the
        eigengap, and kNN graphs of elongated clusters have gaps near 1e-4: keep it small.
      kmeans_max_steps: maximum Lloyd iterations per k-means run (static).
      block_size: query rows per block of the kNN search (static); see :func:`knn`.
      where: validity mask, shape [n]; rows where it is False are cut out of the graph (zero
        affinity to everything) and given an eigenvalue below the valid graph's spectrum, so
        the top ``k`` eigenvectors are the valid graph's, with zero rows for padding. They get a
        zero embedding row, are ignored by k-means and are labelled ``-1``. With ``jax.vmap``
        this clusters padded sets of different sizes. The valid rows must number at least
        ``k`` (checked when ``where`` is concrete); ``eigen_solver="auto"`` decides on the padded
        ``n``.

    Returns:
      A :class:`SpectralResult`.

    Raises:
      TypeError: if ``x`` is not floating point or a static option has the wrong type.
      ValueError: if shapes are wrong, values are not finite, a precomputed affinity is not
        square or has negative entries, ``k`` is out of range (also against the valid rows of a
        concrete ``where``), or an option is unknown.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import spectral_clustering
      >>> x = jnp.array([[0.0, 0.0], [0.0, 0.5], [5.0, 5.0], [5.0, 5.5]])
      >>> result = spectral_clustering(x, k=2, key=jax.random.key(0), n_init=1)
      >>> labels = result.labels.tolist()
      >>> labels[0] == labels[1] != labels[2] == labels[3]
      True

    References:
      A. Ng, M. Jordan and Y. Weiss, "On Spectral Clustering: Analysis and an algorithm",
      NeurIPS 2001.
      U. von Luxburg, "A Tutorial on Spectral Clustering", Statistics and Computing 17(4), 2007.
      https://arxiv.org/abs/0711.0189
      A. Knyazev, "Toward the Optimal Preconditioned Eigensolver: Locally Optimal Block
      Preconditioned Conjugate Gradient Method", SIAM J. Sci. Comput. 23(2), 2001 (LOBPCG).
    """
    affinity = _checks.check_choice(affinity, "affinity", _AFFINITIES)
    eigen_solver = _checks.check_choice(eigen_solver, "eigen_solver", _SOLVERS)
    embedding = _checks.check_choice(embedding, "embedding", _EMBEDDINGS)
    n_init = _checks.check_positive_int(n_init, "n_init")
    eigen_max_steps = _checks.check_positive_int(eigen_max_steps, "eigen_max_steps")
    kmeans_max_steps = _checks.check_positive_int(kmeans_max_steps, "kmeans_max_steps")
    if key is None:
        raise ValueError("key is required; pass e.g. key=jax.random.key(0).")
    if eigen_tol is not None:
        _checks.check_nonnegative_scalar(eigen_tol, "eigen_tol")
    if affinity == "precomputed":
        a = _check_precomputed(x)
        n, dtype = a.shape[0], a.dtype
    else:
        x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
        x = x.astype(compute_dtype(x.dtype))
        n, dtype = x.shape[0], x.dtype
        if affinity == "rbf":
            _checks.check_nonnegative_scalar(gamma, "gamma")
        else:
            n_neighbors = _checks.check_positive_int(n_neighbors, "n_neighbors")
            if n_neighbors > n:
                raise ValueError(
                    f"n_neighbors must be <= the number of samples n={n}, got {n_neighbors}."
                )
    k = _checks.check_num_clusters(k, n)
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=n, other="x")
        if _checks.is_concrete(where) and k > int(np.sum(np.asarray(where))):
            raise ValueError(
                f"k must be <= the number of valid samples (where=True), got k={k} and "
                f"{int(np.sum(np.asarray(where)))} valid samples."
            )
    if eigen_solver == "auto":
        eigen_solver = "dense" if n <= DENSE_MAX_N or 5 * k >= n else "lobpcg"
    if eigen_solver == "lobpcg" and 5 * _lobpcg_block(n, k) >= n:
        raise ValueError(
            f"eigen_solver='lobpcg' needs 5·k < n, got k={k} and n={n}; use eigen_solver='dense'."
        )
    tol = eigen_tol if eigen_tol is not None else (1e-8 if dtype == jnp.float64 else 1e-5)
    run = functools.partial(
        _spectral, affinity=affinity, n_neighbors=n_neighbors, block_size=block_size, k=k,
        solver=eigen_solver, embedding=embedding, n_init=n_init,
        eigen_max_steps=eigen_max_steps, kmeans_max_steps=kmeans_max_steps,
    )
    data = a if affinity == "precomputed" else x
    args = (data, where, jnp.asarray(gamma, dtype), jnp.asarray(tol, dtype), key)
    axis = None if isinstance(data, sparse.BCOO) else _collectives.explicit_sample_axis(data)
    if axis is None:
        return run(*args)
    # Rows explicitly sharded (AxisType.Explicit): the [n, n] affinity and the eigensolver have
    # no single natural per-op sharding, so the pipeline runs with the axis in Auto mode and
    # XLA's partitioner places it; per-sample outputs come back sharded like ``x``.
    rows, replicated = jax.sharding.PartitionSpec(axis), jax.sharding.PartitionSpec()
    out = SpectralResult(rows, rows, replicated, replicated, replicated, replicated,
                         KMeansResult(replicated, rows, *(replicated,) * 4))
    return jax.sharding.auto_axes(run, axes=axis, out_sharding=out)(*args)


def _spectral(data, where, gamma, tol, key, *, affinity, n_neighbors, block_size, k, solver,
              embedding, n_init, eigen_max_steps, kmeans_max_steps) -> SpectralResult:
    """Graph, normalisation, eigenvectors and k-means on validated inputs."""
    if affinity == "rbf":
        a = _rbf(data, gamma)
    elif affinity == "nearest_neighbors":
        a = _knn_graph(data, n_neighbors, True, block_size, where)
    else:
        a = data
    if where is not None:
        a = _mask_affinity(a, where)
    op = _normalized_operator(a, densify=solver == "dense")
    if where is not None:
        op = op.push_down(where, floor=-2.0 if solver == "dense" else -1.0)
    return _embed_and_cluster(
        op, key, tol, k=k, solver=solver, embedding=embedding, n_init=n_init,
        eigen_max_steps=eigen_max_steps, kmeans_max_steps=kmeans_max_steps, where=where,
    )


def _mask_affinity(a, where):
    """Zeroes every affinity that touches an invalid row (dense or BCOO)."""
    if isinstance(a, sparse.BCOO):
        rows, cols = a.indices[:, 0], a.indices[:, 1]
        n = a.shape[0]
        ok = where[jnp.clip(rows, 0, n - 1)] & where[jnp.clip(cols, 0, n - 1)]
        return sparse.BCOO((jnp.where(ok, a.data, 0.0), a.indices), shape=a.shape)
    return jnp.where(where[:, None] & where[None, :], a, 0.0)


def _check_precomputed(a):
    if isinstance(a, sparse.BCOO):
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.n_batch or a.n_dense:
            raise ValueError(
                f"a precomputed sparse affinity must be an unbatched BCOO of shape [n, n], got "
                f"shape {a.shape} with n_batch={a.n_batch}, n_dense={a.n_dense}."
            )
        data = _checks.as_float_array(a.data, "x.data", ndim=1, shape="[nse]")
        _check_nonnegative(data)
        data = data.astype(compute_dtype(data.dtype))
        # ½(A + Aᵀ): both orientations, each at half weight.
        idx = jnp.concatenate([a.indices, a.indices[:, ::-1]])
        return sparse.BCOO((jnp.concatenate([0.5 * data, 0.5 * data]), idx), shape=a.shape)
    a = _checks.as_float_array(a, "x", ndim=2, shape="[n, n]")
    if a.shape[0] != a.shape[1]:
        raise ValueError(
            f"x must be a square affinity matrix [n, n] when affinity='precomputed', got shape "
            f"{tuple(a.shape)}."
        )
    _check_nonnegative(a)
    a = a.astype(compute_dtype(a.dtype))
    return 0.5 * (a + a.T)


def _check_nonnegative(a):
    if _checks.is_concrete(a):
        low = float(np.min(np.asarray(a))) if np.size(a) else 0.0
        if low < 0:
            raise ValueError(f"a precomputed affinity must be non-negative, got a minimum of {low}.")


def _embed_and_cluster(op, key, tol, *, k, solver, embedding, n_init, eigen_max_steps,
                       kmeans_max_steps, where=None) -> SpectralResult:
    key_eig, key_km = jax.random.split(key)
    dtype = op.inv_sqrt_degree.dtype
    lam, u, steps = _top_eigenvectors(op, k, solver, key_eig, eigen_max_steps, dtype, tol)
    residual = jnp.linalg.norm(op.matmul(u) - u * lam[None, :], axis=0) / (1.0 + jnp.abs(lam))
    converged = jnp.all(residual <= tol)
    if embedding == "njw":  # NJW step 3: Y_i = U_i / ‖U_i‖ (zero rows of isolated points stay 0)
        norms = jnp.linalg.norm(u, axis=1, keepdims=True)
        y = u / jnp.where(norms > 0, norms, 1.0)
    else:  # scikit-learn's spectral_embedding: eigenvectors of L_sym divided by √degree
        y = u * op.inv_sqrt_degree[:, None]
    if where is not None:  # isolated padding rows: exact zeros, not rounding noise (or 1e6·noise)
        y = jnp.where(where[:, None], y, 0.0)
    result = kmeans(y, k=k, key=key_km, n_init=n_init, max_steps=kmeans_max_steps, where=where)
    return SpectralResult(
        labels=result.labels,
        embedding=y,
        eigenvalues=1.0 - lam,
        inertia=result.inertia,
        num_steps=steps,
        converged=converged,
        kmeans=result,
    )


__all__ = ["SpectralResult", "knn_affinity", "rbf_affinity", "spectral_clustering"]
