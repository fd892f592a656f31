"""Self-expressive subspace clustering with the closed-form ridge (least-squares) representation."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_factor, cho_solve
from jaxtyping import Array, Float, Int

from jaxclust import _checks
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster._distances import compute_dtype
from jaxclust.cluster._spectral import SpectralResult, spectral_clustering

_DIAGONALS = ("exact", "posthoc")
#: Floor on the relative regularisation (METHODS.md §1.9: λ ≥ 1e-6 · mean(diag ZᵀZ)).
_MIN_REGULARIZATION = 1e-6


class SubspaceResult(NamedTuple):
    """Output of :func:`subspace_clustering`.

    Attributes:
      labels: cluster of every sample, int32, shape [n].
      coefficients: self-expressive coefficients ``C``, shape [n, n], with zero diagonal. Column
        ``j`` represents sample ``j``: ``x_j ≈ Σ_i C_ij x_i``, i.e. ``x ≈ Cᵀ x`` with rows as
        samples (after ``top_r`` truncation when it is set).
      affinity: ``W = |C| + |C|ᵀ``, shape [n, n], the input of the spectral step.
      regularization: the absolute ridge weight ``λ`` used, scalar.
      spectral: the full :class:`~jaxclust.cluster.SpectralResult` of the spectral step.
    """

    labels: Int[Array, " n"]
    coefficients: Float[Array, "n n"]
    affinity: Float[Array, "n n"]
    regularization: Float[Array, ""]
    spectral: SpectralResult


def self_expression(
    x: Float[Array, "n d"],
    *,
    regularization: ScalarLike = 1e-2,
    diagonal: str = "exact",
) -> tuple[Float[Array, "n n"], Float[Array, ""]]:
    """Closed-form ridge self-expression ``C = argmin ‖Z − ZC‖² + λ‖C‖²`` with ``diag(C) = 0``.

    Rows of ``x`` are samples; METHODS.md §1.9 writes the problem with columns as samples,
    ``Z = xᵀ`` [d, n]. With ``B = (ZᵀZ + λI)^{-1} = (x xᵀ + λI)^{-1}``:

    - ``diagonal="exact"`` (default) solves each column's problem under the constraint
      ``C_jj = 0``: ``C_ij = −B_ij / B_jj`` for ``i ≠ j`` (the Lagrange multiplier of the
      constraint is ``1/B_jj − λ``);
    - ``diagonal="posthoc"`` takes the unconstrained ridge solution ``C = I − λB`` and zeroes its
      diagonal afterwards.

    Regularisation is relative, so that scaling ``x`` does not change ``C``:
    ``λ = max(regularization, 1e-6) · mean_i ‖x_i‖²`` (the floor of METHODS.md §1.9). Small values
    approach the least-squares representation of Lu et al. (block diagonal for independent
    noise-free subspaces); larger values trade fit for robustness to noise. ``B`` comes from a
    Cholesky solve of ``x xᵀ + λI`` [n, n] when ``n <= d`` and otherwise from Woodbury's identity
    ``B = λ^{-1}(I − x(xᵀx + λI_d)^{-1}xᵀ)`` with a [d, d] Cholesky: ``O(n²·min(n, d) + min(n, d)³)``
    time and ``O(n²)`` memory. No inverse is formed explicitly. Differentiable in ``x``.

    Args:
      x: data, shape [n, d], rows are samples, floating point, finite.
      regularization: relative ridge weight (see above), ``>= 0``; may be traced.
      diagonal: ``"exact"`` or ``"posthoc"`` (static).

    Returns:
      ``(C, lam)``: the coefficients [n, n] with zero diagonal (column ``j`` represents sample
      ``j``: ``x ≈ Cᵀ x``) and the absolute ``λ`` used (scalar).

    Raises:
      TypeError: if ``x`` is not floating point.
      ValueError: if ``x`` is not [n, d] or holds NaN/Inf, ``regularization`` is negative, or
        ``diagonal`` is unknown.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import self_expression
      >>> x = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
      >>> c, lam = self_expression(x, regularization=1e-6)
      >>> jnp.abs(c).round(3).tolist()  # x_1 = 2 x_0, x_0 = x_1 / 2; x_2 is alone in its span
      [[0.0, 2.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]

    References:
      C. Lu, H. Min, Z. Zhao, L. Zhu, D. Huang and S. Yan, "Robust and Efficient Subspace
      Segmentation via Least Squares Regression", ECCV 2012. https://arxiv.org/abs/1404.6736
      E. Elhamifar and R. Vidal, "Sparse Subspace Clustering: Algorithm, Theory, and
      Applications", IEEE TPAMI 35(11), 2013. https://arxiv.org/abs/1203.1005
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    _checks.check_nonnegative_scalar(regularization, "regularization")
    _checks.check_choice(diagonal, "diagonal", _DIAGONALS)
    return _self_expression(x.astype(compute_dtype(x.dtype)), regularization, diagonal)


def _self_expression(x, regularization, diagonal):
    n, d = x.shape
    hi = lax.Precision.HIGHEST
    scale = jnp.mean(jnp.sum(x * x, axis=1))
    scale = jnp.where(scale > 0, scale, 1.0)  # all-zero data: any λ > 0 works
    lam = jnp.maximum(jnp.asarray(regularization, x.dtype), _MIN_REGULARIZATION) * scale
    if n <= d:
        gram = jnp.matmul(x, x.T, precision=hi) + lam * jnp.eye(n, dtype=x.dtype)
        b = cho_solve(cho_factor(gram, lower=True), jnp.eye(n, dtype=x.dtype))
    else:  # Woodbury: (x xᵀ + λI_n)^{-1} = λ^{-1}(I − x (xᵀx + λI_d)^{-1} xᵀ)
        small = jnp.matmul(x.T, x, precision=hi) + lam * jnp.eye(d, dtype=x.dtype)
        solved = cho_solve(cho_factor(small, lower=True), x.T)  # [d, n]
        b = (jnp.eye(n, dtype=x.dtype) - jnp.matmul(x, solved, precision=hi)) / lam
    b = 0.5 * (b + b.T)  # symmetric in exact arithmetic
    off = ~jnp.eye(n, dtype=bool)
    if diagonal == "exact":
        # B is SPD, so B_jj > 0; the guard only keeps round-off from dividing by zero.
        bjj = jnp.diagonal(b)
        bjj = jnp.where(bjj > 0, bjj, jnp.finfo(x.dtype).tiny)
        c = -b / bjj[None, :]
    else:
        c = -lam * b  # I − λB off the diagonal
    return jnp.where(off, c, 0.0), lam


def _keep_top(c, top_r: int):
    """Keeps the ``top_r`` largest-magnitude entries of every column of ``c``."""
    mag = jnp.abs(c)
    _, idx = lax.top_k(mag.T, top_r)  # [n, top_r]: rows of each column's largest entries
    cols = jnp.broadcast_to(jnp.arange(c.shape[1])[:, None], idx.shape)
    keep = jnp.zeros(c.shape, bool).at[idx, cols].set(True)
    return jnp.where(keep, c, 0.0)


def subspace_clustering(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray,
    regularization: ScalarLike = 1e-2,
    diagonal: str = "exact",
    top_r: int | None = None,
    eigen_solver: str = "dense",
    embedding: str = "njw",
    n_init: int = 10,
) -> SubspaceResult:
    """Clusters points drawn from a union of linear subspaces by self-expression.

    Every sample is written as a ridge-regularised linear combination of the others
    (:func:`self_expression`, METHODS.md §1.9); samples from the same subspace use each other,
    so ``W = |C| + |C|ᵀ`` is (nearly) block diagonal and spectral clustering with
    ``affinity="precomputed"`` (:func:`spectral_clustering`) recovers the subspaces.

    Convention: rows of ``x`` are samples, ``x`` [n, d]; the subspace-clustering literature
    (and METHODS.md §1.9) uses the columns of ``Z = xᵀ``. ``coefficients[:, j]`` represents
    sample ``j``.

    Regularisation: ``λ = max(regularization, 1e-6) · mean_i ‖x_i‖²`` (scale invariant). The
    default 1e-2 separates noise-free independent subspaces exactly and tolerates moderate noise;
    raise it for noisier data.

    Memory is ``O(n²)`` (the coefficient and affinity matrices) and time ``O(n²·min(n, d))``
    plus the eigen-solver's.

    Args:
      x: data, shape [n, d], rows are samples, floating point, finite.
      k: number of subspaces (clusters) (static: changing it recompiles).
      key: PRNG key of the spectral step.
      regularization: relative ridge weight (see above), ``>= 0``; may be traced.
      diagonal: ``"exact"`` (constrained ``C_jj = 0``, default) or ``"posthoc"`` (ridge, then zero
        the diagonal) (static).
      top_r: if set, keep only the ``top_r`` largest ``|C_ij|`` of every column before
        symmetrising (static); None keeps all.
      eigen_solver: passed to :func:`spectral_clustering` (static).
      embedding: passed to :func:`spectral_clustering` (static).
      n_init: k-means restarts of the spectral step (static).

    Returns:
      A :class:`SubspaceResult`.

    Raises:
      TypeError: if ``x`` is not floating point or a static option has the wrong type.
      ValueError: if ``x`` is not [n, d] or holds NaN/Inf, ``k`` or ``top_r`` is out of range,
        ``regularization`` is negative, or an option is unknown.

    Examples:
      >>> import jax
      >>> from jaxclust.cluster import subspace_clustering
      >>> from jaxclust.data import make_subspaces
      >>> from jaxclust.metrics import accuracy
      >>> ds = make_subspaces(key=jax.random.key(0), n=60, k=3, d=9, rank=2)
      >>> result = subspace_clustering(ds.x, k=3, key=jax.random.key(1), n_init=2)
      >>> float(accuracy(ds.y, result.labels))
      1.0

    References:
      C. Lu, H. Min, Z. Zhao, L. Zhu, D. Huang and S. Yan, "Robust and Efficient Subspace
      Segmentation via Least Squares Regression", ECCV 2012. https://arxiv.org/abs/1404.6736
      E. Elhamifar and R. Vidal, "Sparse Subspace Clustering: Algorithm, Theory, and
      Applications", IEEE TPAMI 35(11), 2013. https://arxiv.org/abs/1203.1005
      P. Ji, M. Salzmann and H. Li, "Efficient Dense Subspace Clustering", WACV 2014.
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    n = x.shape[0]
    k = _checks.check_num_clusters(k, n)
    _checks.check_nonnegative_scalar(regularization, "regularization")
    _checks.check_choice(diagonal, "diagonal", _DIAGONALS)
    if top_r is not None:
        top_r = _checks.check_positive_int(top_r, "top_r")
        if top_r > n:
            raise ValueError(f"top_r must be <= the number of samples n={n}, got top_r={top_r}.")
    if key is None:
        raise ValueError("key is required; pass e.g. key=jax.random.key(0).")
    c, lam = _self_expression(x.astype(compute_dtype(x.dtype)), regularization, diagonal)
    if top_r is not None:
        c = _keep_top(c, top_r)
    w = jnp.abs(c) + jnp.abs(c).T
    spectral = spectral_clustering(
        w, k=k, key=key, affinity="precomputed", eigen_solver=eigen_solver, embedding=embedding,
        n_init=n_init,
    )
    return SubspaceResult(
        labels=spectral.labels, coefficients=c, affinity=w, regularization=lam, spectral=spectral
    )


__all__ = ["SubspaceResult", "self_expression", "subspace_clustering"]
