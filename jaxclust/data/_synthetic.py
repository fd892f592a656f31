"""Synthetic clustering benchmarks: Gaussian blobs (optionally long-tailed), unions of subspaces,
two moons and two circles.

Every generator takes a keyword-only PRNG ``key`` and is deterministic given it. Sizes (``n``,
``k``, ``d``, ``rank``, ``imbalance_ratio``) and ``dtype`` are static: changing them recompiles.
Scalar hyperparameters (``cluster_std``, ``center_box``, ``noise``, ``factor``) may be traced. All
work under ``jax.jit`` (static arguments in ``static_argnames``) and ``jax.vmap`` over keys.
Points are shuffled, so labels are not sorted.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from .._checks import (
    check_nonnegative_scalar,
    check_num_clusters,
    check_positive_int,
    is_concrete,
)
from .._typing import KeyArray, ScalarLike
from ._dataset import Dataset

__all__ = ["make_blobs", "make_subspaces", "make_moons", "make_circles"]


# ------------------------------------------------------------------ argument checks


def _check_key(key) -> None:
    """Raises unless ``key`` is one PRNG key: typed (``jax.random.key``) or legacy ``uint32[2]``."""
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        raise TypeError(
            f"key must be a JAX PRNG key such as jax.random.key(0), got {type(key).__name__}."
        )
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if jnp.shape(key) != ():
            raise ValueError(
                f"key must be a single PRNG key of shape (), got shape {jnp.shape(key)}; "
                f"use jax.vmap to generate several datasets."
            )
    elif dtype != jnp.uint32 or jnp.shape(key) != (2,):
        raise TypeError(
            f"key must be a JAX PRNG key such as jax.random.key(0) (or a legacy uint32[2] key), "
            f"got dtype {dtype} and shape {jnp.shape(key)}."
        )


def _check_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype!r}.") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype such as jnp.float32, got {dtype}.")
    return dtype


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    # Sample and factorise in at least float32 (QR has no bfloat16 kernel); cast at the end.
    return jnp.promote_types(dtype, jnp.float32)


def _check_factor(factor) -> None:
    if not is_concrete(factor):
        return
    v = np.asarray(factor)
    if v.ndim != 0:
        raise ValueError(f"factor must be a scalar, got shape {v.shape}.")
    if not 0 < v < 1:
        raise ValueError(f"factor must satisfy 0 < factor < 1, got {v.item()}.")


def _check_center_box(center_box):
    try:
        low, high = center_box
    except (TypeError, ValueError):
        raise ValueError(f"center_box must be a pair (low, high), got {center_box!r}.") from None
    if is_concrete(low) and is_concrete(high):
        if np.ndim(low) != 0 or np.ndim(high) != 0:
            raise ValueError(f"center_box must hold two scalars, got {center_box!r}.")
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(
                f"center_box must be a finite pair with low <= high, got ({low}, {high})."
            )
    return low, high


# ------------------------------------------------------------------ static cluster sizes


def _balanced_sizes(n: int, k: int) -> tuple[int, ...]:
    """``n`` split into ``k`` integers differing by at most one, the larger ones first."""
    q, r = divmod(n, k)
    return tuple(q + (j < r) for j in range(k))


def _long_tail_sizes(n: int, k: int, imbalance_ratio: float) -> tuple[int, ...]:
    """Integer sizes ``n_j ∝ r^(-j/(k-1))``, ``j = 0..k-1``, summing to ``n``, each ``>= 1``.

    The exponential profile of long-tailed benchmarks (CIFAR-LT; Cui et al. 2019, P²OT): the
    largest over the smallest target is exactly ``r``. Targets are rounded by largest remainder;
    targets below one are raised to one and the excess is taken from the clusters furthest above
    their targets, so the integer ratio matches ``r`` only up to rounding (closely once the
    smallest cluster holds several points).
    """
    if k == 1 or imbalance_ratio == 1:
        return _balanced_sizes(n, k)
    profile = imbalance_ratio ** (-np.arange(k) / (k - 1))
    target = n * profile / profile.sum()
    sizes = np.maximum(np.floor(target).astype(np.int64), 1)
    short = n - int(sizes.sum())
    if short > 0:  # fewer than k points lost to flooring: give them to the largest remainders.
        order = np.argsort(-(target - sizes), kind="stable")
        sizes[order[:short]] += 1
    while short < 0:  # clusters raised to one point: take back from the most over-served.
        excess = np.where(sizes > 1, sizes - target, -np.inf)
        sizes[int(np.argmax(excess))] -= 1
        short += 1
    return tuple(sorted((int(s) for s in sizes), reverse=True))


def _labels_sorted(sizes: tuple[int, ...]) -> jax.Array:
    """``[0]*sizes[0] + [1]*sizes[1] + ...`` as int32 [n], built on device (no n-sized constant)."""
    n = sum(sizes)
    ends = jnp.asarray(np.cumsum(sizes), jnp.int32)
    return jnp.searchsorted(ends, jnp.arange(n, dtype=jnp.int32), side="right").astype(jnp.int32)


def _shuffled(key: KeyArray, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    perm = jax.random.permutation(key, y.shape[0])
    return x[perm], y[perm]


# ------------------------------------------------------------------ generators


def make_blobs(
    *,
    key: KeyArray,
    n: int,
    k: int,
    d: int,
    cluster_std: ScalarLike = 1.0,
    center_box: tuple[ScalarLike, ScalarLike] = (-10.0, 10.0),
    imbalance_ratio: float = 1.0,
    dtype: DTypeLike = jnp.float32,
) -> Dataset:
    """Isotropic Gaussian blobs, balanced or long-tailed.

    Centres ``mu_j`` are drawn uniformly from the box ``center_box ** d``; point ``i`` of cluster
    ``j`` is ``mu_j + cluster_std * N(0, I_d)``, as in ``sklearn.datasets.make_blobs``. With
    ``imbalance_ratio = r > 1`` the cluster sizes follow the exponential long-tail profile of
    CIFAR-LT and P²OT, ``n_j ∝ r^(-j/(k-1))`` for ``j = 0..k-1`` (Cui et al.'s
    ``n_j = n_0 mu^j`` with ``mu = r^(-1/(k-1))``), so that ``n_0 / n_{k-1} ≈ r``. Sizes are
    Python integers summing exactly to ``n``, each within one point of ``n * profile``, except
    that every cluster gets at least one point: when ``n`` is too small for the smallest cluster
    to hold a few points, the realised ratio falls below ``r``.

    Args:
      key: PRNG key; the result is a deterministic function of it.
      n: number of points (static: changing it recompiles).
      k: number of clusters, ``1 <= k <= n`` (static).
      d: number of features (static).
      cluster_std: standard deviation of every blob, ``>= 0``; may be traced.
      center_box: ``(low, high)`` bounds of the uniform centre distribution; may be traced.
      imbalance_ratio: largest over smallest cluster size, ``>= 1``; ``1`` splits ``n`` as evenly
        as possible (static: a Python number, it fixes the sizes).
      dtype: floating dtype of ``x`` (static).

    Returns:
      ``Dataset(x, y, name="blobs")``: ``x`` [n, d] of ``dtype``, ``y`` int32 [n] in ``0..k-1``
      where label ``j`` has the ``j``-th largest size.

    Raises:
      TypeError: if ``key`` is not a PRNG key, ``n``/``k``/``d`` are not ints,
        ``imbalance_ratio`` is not a Python number, or ``dtype`` is not floating point.
      ValueError: if ``n``, ``k`` or ``d`` is below one, ``k > n``, ``imbalance_ratio < 1``,
        ``cluster_std < 0``, or ``center_box`` is not a finite pair with ``low <= high``.

    Examples:
      >>> import jax
      >>> import numpy as np
      >>> from jaxclust.data import make_blobs
      >>> ds = make_blobs(key=jax.random.key(0), n=1000, k=5, d=2, imbalance_ratio=10.0)
      >>> ds.x.shape, ds.x.dtype, ds.y.dtype
      ((1000, 2), dtype('float32'), dtype('int32'))
      >>> np.bincount(ds.y).tolist()
      [464, 261, 147, 82, 46]

      Under ``jax.jit`` the sizes are static; the returned ``Dataset`` keeps its name:

      >>> blobs = jax.jit(make_blobs, static_argnames=("n", "k", "d"))
      >>> ds = blobs(key=jax.random.key(1), n=8, k=2, d=3, cluster_std=0.5)
      >>> ds.x.shape, ds.name
      ((8, 3), 'blobs')

    References:
      Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced Loss Based on
      Effective Number of Samples", CVPR 2019. https://arxiv.org/abs/1901.05555

      C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal Transport for Deep
      Imbalanced Clustering", ICLR 2024. https://arxiv.org/abs/2401.09266
    """
    _check_key(key)
    n = check_positive_int(n, "n")
    k = check_num_clusters(k, n)
    d = check_positive_int(d, "d")
    check_nonnegative_scalar(cluster_std, "cluster_std")
    low, high = _check_center_box(center_box)
    if isinstance(imbalance_ratio, bool) or not isinstance(imbalance_ratio, numbers.Real):
        raise TypeError(
            f"imbalance_ratio must be a Python number (static: it fixes the cluster sizes), got "
            f"{type(imbalance_ratio).__name__}."
        )
    if not (math.isfinite(imbalance_ratio) and imbalance_ratio >= 1):
        raise ValueError(f"imbalance_ratio must be a finite number >= 1, got {imbalance_ratio}.")
    dtype = _check_dtype(dtype)
    work = _compute_dtype(dtype)

    sizes = _long_tail_sizes(n, k, float(imbalance_ratio))
    key_gauss, key_shuffle = jax.random.split(key)
    # One Gaussian draw for everything: each random kernel costs about as much to compile as the
    # rest of the function. The centres' uniform variates are Phi(z) (probability integral
    # transform: ndtr of a standard normal is exactly uniform on [0, 1]).
    gauss = jax.random.normal(key_gauss, (k * d + n * d,), work)
    uniform = jax.scipy.special.ndtr(gauss[: k * d].reshape(k, d))
    centers = low + (high - low) * uniform
    y = jax.random.permutation(key_shuffle, _labels_sorted(sizes))
    x = centers[y] + cluster_std * gauss[k * d :].reshape(n, d)
    return Dataset(x=x.astype(dtype), y=y, name="blobs")


def make_subspaces(
    *,
    key: KeyArray,
    n: int,
    k: int,
    d: int,
    rank: int,
    noise: ScalarLike = 0.0,
    dtype: DTypeLike = jnp.float32,
) -> Dataset:
    """Points on a union of ``k`` random ``rank``-dimensional linear subspaces of ``R^d``.

    Subspace ``j`` has an orthonormal basis ``U_j`` [d, rank], the Q factor of a standard
    Gaussian matrix (a Haar-random subspace). A point of class ``j`` is ``U_j c + noise * e``
    with ``c ~ N(0, I_rank)`` and ``e ~ N(0, I_d)``, so with ``noise = 0`` each class spans
    exactly its subspace (once it has ``rank`` points) and the subspaces are independent almost
    surely when ``k * rank <= d``: the setting of sparse subspace clustering (Elhamifar & Vidal).
    Rows are samples here; self-expressive methods that use columns take ``x.T``.

    Args:
      key: PRNG key; the result is a deterministic function of it.
      n: number of points, split as evenly as possible over the subspaces (static).
      k: number of subspaces, ``1 <= k <= n`` (static).
      d: ambient dimension (static).
      rank: dimension of each subspace, ``1 <= rank <= d`` (static).
      noise: standard deviation of the isotropic ambient noise, ``>= 0``; may be traced.
      dtype: floating dtype of ``x`` (static).

    Returns:
      ``Dataset(x, y, name="subspaces")``: ``x`` [n, d] of ``dtype``, ``y`` int32 [n] in
      ``0..k-1``. Norms are about ``sqrt(rank)`` (plus ``noise * sqrt(d)``).

    Raises:
      TypeError: if ``key`` is not a PRNG key, a size is not an int, or ``dtype`` is not
        floating point.
      ValueError: if a size is below one, ``k > n``, ``rank > d`` or ``noise < 0``.

    Examples:
      >>> import jax
      >>> import numpy as np
      >>> from jaxclust.data import make_subspaces
      >>> ds = make_subspaces(key=jax.random.key(0), n=301, k=3, d=12, rank=3)
      >>> ds.x.shape, ds.y.dtype, np.bincount(ds.y).tolist()
      ((301, 12), dtype('int32'), [101, 100, 100])
      >>> [int(np.linalg.matrix_rank(np.asarray(ds.x)[np.asarray(ds.y) == j], tol=1e-4))
      ...  for j in range(3)]
      [3, 3, 3]

    References:
      E. Elhamifar and R. Vidal, "Sparse Subspace Clustering: Algorithm, Theory, and
      Applications", IEEE TPAMI 35(11), 2013. https://arxiv.org/abs/1203.1005
    """
    _check_key(key)
    n = check_positive_int(n, "n")
    k = check_num_clusters(k, n)
    d = check_positive_int(d, "d")
    rank = check_positive_int(rank, "rank")
    if rank > d:
        raise ValueError(f"rank must be <= the ambient dimension d={d}, got rank={rank}.")
    check_nonnegative_scalar(noise, "noise")
    dtype = _check_dtype(dtype)
    work = _compute_dtype(dtype)

    sizes = _balanced_sizes(n, k)
    m = sizes[0]  # the largest class; every class draws m points and keeps its first sizes[j].
    key_gauss, key_shuffle = jax.random.split(key)
    # One Gaussian draw sliced three ways: each random kernel costs about as much to compile as
    # the rest of the function.
    gauss = jax.random.normal(key_gauss, (k * d * rank + k * m * rank + n * d,), work)
    sections = np.cumsum([k * d * rank, k * m * rank])
    g_bases, g_coef, g_noise = jnp.split(gauss, sections)
    bases, _ = jnp.linalg.qr(g_bases.reshape(k, d, rank))
    coef = g_coef.reshape(k, m, rank)
    # HIGHEST: on GPU/TPU the default float32 matmul rounds inputs to TF32/bfloat16, which would
    # push noise-free points off their subspace by ~1e-3.
    points = jnp.einsum("kdr,kmr->kmd", bases, coef, precision=jax.lax.Precision.HIGHEST)
    y = _labels_sorted(sizes)
    starts = jnp.asarray(np.cumsum(sizes) - np.asarray(sizes), jnp.int32)
    rows = y * m + (jnp.arange(n, dtype=jnp.int32) - starts[y])
    x, y = _shuffled(key_shuffle, points.reshape(k * m, d)[rows], y)
    x = x + noise * g_noise.reshape(n, d)
    return Dataset(x=x.astype(dtype), y=y, name="subspaces")


def make_moons(
    *,
    key: KeyArray,
    n: int,
    noise: ScalarLike = 0.0,
    dtype: DTypeLike = jnp.float32,
) -> Dataset:
    """Two interleaving half circles, with the geometry of ``sklearn.datasets.make_moons``.

    Class 0 holds ``n // 2`` points evenly spaced (end points included) on the upper unit half
    circle ``(cos t, sin t)``, ``t in [0, pi]``; class 1 holds the other ``n - n // 2`` on
    ``(1 - cos t, 1/2 - sin t)``, the lower half circle of radius one centred at ``(1, 1/2)``.
    Gaussian noise of standard deviation ``noise`` is added to every coordinate.

    Args:
      key: PRNG key for the shuffle and the noise.
      n: number of points, ``>= 2`` (static).
      noise: standard deviation of the Gaussian noise, ``>= 0``; may be traced.
      dtype: floating dtype of ``x`` (static).

    Returns:
      ``Dataset(x, y, name="moons")``: ``x`` [n, 2] of ``dtype``, ``y`` int32 [n] in ``{0, 1}``.

    Raises:
      TypeError: if ``key`` is not a PRNG key, ``n`` is not an int, or ``dtype`` is not
        floating point.
      ValueError: if ``n < 2`` or ``noise < 0``.

    Examples:
      >>> import jax
      >>> import numpy as np
      >>> from jaxclust.data import make_moons
      >>> ds = make_moons(key=jax.random.key(0), n=101, noise=0.1)
      >>> ds.x.shape, np.bincount(ds.y).tolist()
      ((101, 2), [50, 51])

    References:
      F. Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 12, 2011
      (``sklearn.datasets.make_moons``).
    """
    _check_key(key)
    n = check_positive_int(n, "n", minimum=2)
    check_nonnegative_scalar(noise, "noise")
    dtype = _check_dtype(dtype)
    work = _compute_dtype(dtype)

    n_out = n // 2
    t_out = jnp.linspace(0.0, math.pi, n_out, dtype=work)
    t_in = jnp.linspace(0.0, math.pi, n - n_out, dtype=work)
    outer = jnp.stack([jnp.cos(t_out), jnp.sin(t_out)], axis=-1)
    inner = jnp.stack([1 - jnp.cos(t_in), 0.5 - jnp.sin(t_in)], axis=-1)
    y = (jnp.arange(n, dtype=jnp.int32) >= n_out).astype(jnp.int32)
    return _noisy_shuffled(key, jnp.concatenate([outer, inner]), y, noise, dtype, "moons")


def make_circles(
    *,
    key: KeyArray,
    n: int,
    noise: ScalarLike = 0.0,
    factor: ScalarLike = 0.5,
    dtype: DTypeLike = jnp.float32,
) -> Dataset:
    """Two concentric circles, with the geometry of ``sklearn.datasets.make_circles``.

    Class 0 holds ``n // 2`` points at angles ``2 pi i / (n // 2)`` on the unit circle; class 1
    holds the other ``n - n // 2`` points, evenly spaced the same way, on the circle of radius
    ``factor``. Gaussian noise of standard deviation ``noise`` is added to every coordinate.

    Args:
      key: PRNG key for the shuffle and the noise.
      n: number of points, ``>= 2`` (static).
      noise: standard deviation of the Gaussian noise, ``>= 0``; may be traced.
      factor: inner over outer radius, ``0 < factor < 1``; may be traced.
      dtype: floating dtype of ``x`` (static).

    Returns:
      ``Dataset(x, y, name="circles")``: ``x`` [n, 2] of ``dtype``, ``y`` int32 [n] in
      ``{0, 1}`` (0 outer, 1 inner).

    Raises:
      TypeError: if ``key`` is not a PRNG key, ``n`` is not an int, or ``dtype`` is not
        floating point.
      ValueError: if ``n < 2``, ``noise < 0`` or ``factor`` is not in ``(0, 1)``.

    Examples:
      >>> import jax
      >>> import numpy as np
      >>> from jaxclust.data import make_circles
      >>> ds = make_circles(key=jax.random.key(0), n=101, factor=0.25)
      >>> radius = np.linalg.norm(ds.x, axis=1)
      >>> [round(float(radius[np.asarray(ds.y) == c].mean()), 2) for c in (0, 1)]
      [1.0, 0.25]

    References:
      F. Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 12, 2011
      (``sklearn.datasets.make_circles``).
    """
    _check_key(key)
    n = check_positive_int(n, "n", minimum=2)
    check_nonnegative_scalar(noise, "noise")
    _check_factor(factor)
    dtype = _check_dtype(dtype)
    work = _compute_dtype(dtype)

    n_out = n // 2
    t_out = jnp.linspace(0.0, 2 * math.pi, n_out, endpoint=False, dtype=work)
    t_in = jnp.linspace(0.0, 2 * math.pi, n - n_out, endpoint=False, dtype=work)
    outer = jnp.stack([jnp.cos(t_out), jnp.sin(t_out)], axis=-1)
    inner = factor * jnp.stack([jnp.cos(t_in), jnp.sin(t_in)], axis=-1)
    y = (jnp.arange(n, dtype=jnp.int32) >= n_out).astype(jnp.int32)
    return _noisy_shuffled(key, jnp.concatenate([outer, inner]), y, noise, dtype, "circles")


def _noisy_shuffled(key, x, y, noise, dtype, name) -> Dataset:
    key_shuffle, key_noise = jax.random.split(key)
    x, y = _shuffled(key_shuffle, x, y)
    x = x + noise * jax.random.normal(key_noise, x.shape, x.dtype)
    return Dataset(x=x.astype(dtype), y=y, name=name)
