"""Representation diagnostics: RankMe, neural collapse, CDNV, CKA, relative representations, VNE,
Fisher ratio, alignment and uniformity (METHODS.md §4.8)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

from .. import _checks, _collectives
from .._typing import ScalarLike

__all__ = [
    "NeuralCollapseResult",
    "rankme",
    "neural_collapse",
    "linear_cka",
    "linear_hsic_unbiased",
    "linear_cka_unbiased",
    "relative_representation",
    "von_neumann_entropy",
    "fisher_ratio",
    "alignment",
    "uniformity",
]

_HI = lax.Precision.HIGHEST


def _features(x, name="x", shape="[n, d]"):
    x = _checks.as_float_array(x, name, ndim=2, shape=shape)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _labels(labels, n, num_classes):
    labels = _checks.as_int_array(labels, "labels", ndim=1, shape="[n]")
    if labels.shape[0] != n:
        raise ValueError(
            f"labels must have shape [n] with n={n} to match the features, got shape "
            f"{tuple(labels.shape)}."
        )
    k = _checks.check_positive_int(num_classes, "num_classes", minimum=2)
    if _checks.is_concrete(labels):
        v = np.asarray(labels)
        if v.size and (v.min() < -1 or v.max() >= k):
            raise ValueError(
                f"labels must lie in [-1, num_classes={k}) (-1 marks ignored rows), got values in "
                f"[{v.min()}, {v.max()}]."
            )
    return labels, k


def _safe_div(a, b):
    return a / jnp.where(b != 0, b, 1.0)


def _normalize(x):
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return _safe_div(x, norm)


def _gram(x, axis_name):
    return _collectives.psum(jnp.matmul(x.T, x, precision=_HI), axis_name)


def _xlogx(p):
    return jax.scipy.special.xlogy(p, p)


def rankme(
    z: Float[Array, "n d"],
    *,
    eps: ScalarLike = 1e-7,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """RankMe effective rank ``exp(−Σ_k p_k ln p_k)``, ``p_k = σ_k/‖σ‖₁ + ε``, ``σ`` the singular values of ``Z``.

    Close to ``r`` for a matrix with ``r`` equal non-zero singular values, and at most
    ``min(n, d)``. Computed in float32 at least with ``svd``; under ``axis_name`` with
    ``σ = sqrt(clip(eigvalsh(ZᵀZ), 0))`` of the ``psum``-ed ``d × d`` Gram matrix (which
    resolves singular values only down to ``~sqrt(machine ε)·σ_max``). Use ``n >= d`` samples.

    Args:
      z: embeddings, rows are samples, shape [n, d].
      eps: the small ``ε`` added to each ``p_k`` (default 1e-7).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; then ``n`` is the per-shard count and the result is global. Under plain
        ``jax.jit`` on sharded arrays leave it None.

    Returns:
      RankMe, scalar in ``[1, min(n, d)]`` (up to ``ε``).

    Raises:
      ValueError: if ``z`` is not rank 2 or holds NaN/Inf (when concrete).
      TypeError: if ``z`` has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import rankme
      >>> print(round(float(rankme(jnp.eye(4)[:, :3] * 2.0)), 3))
      3.0

    References:
      Garrido et al., "RankMe: Assessing the Downstream Performance of Pretrained
      Self-Supervised Representations by Their Rank", ICML 2023, https://arxiv.org/abs/2210.02885.
    """
    z = _features(z, "z")
    _checks.check_nonnegative_scalar(eps, "eps")
    if axis_name is None:
        sigma = jnp.linalg.svd(z, compute_uv=False)
    else:
        sigma = jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(_gram(z, axis_name)), 0.0))
    p = _safe_div(sigma, jnp.sum(sigma)) + eps
    return jnp.exp(-jnp.sum(_xlogx(p)))


class NeuralCollapseResult(NamedTuple):
    """Output of :func:`neural_collapse`.

    Attributes:
      nc1: within-class variability ``tr(Σ_W Σ_B^†)/K``, scalar (→ 0 under collapse).
      nc2_equinorm: ``std_c ‖μ_c − μ_G‖ / mean_c ‖μ_c − μ_G‖``, scalar (→ 0).
      nc2_equiangular: ``mean_{c≠c'} |cos(μ_c − μ_G, μ_c' − μ_G) + 1/(K−1)|``, scalar (→ 0).
      nc2_cosine_std: standard deviation of those cosines over pairs ``c ≠ c'``, scalar (→ 0).
      nc3: self-duality ``‖W/‖W‖_F − M/‖M‖_F‖²_F``, scalar, or None without ``classifier``.
      nc4: fraction of samples whose classifier decision differs from the nearest class mean,
        scalar, or None without ``classifier``.
      cdnv: class-distance normalised variance, mean over pairs ``c ≠ c'`` of
        ``(Var_c + Var_c')/(2‖μ_c − μ_c'‖²)``, scalar (→ 0).
      class_means: ``μ_c``, shape [k, d] (zero rows for absent classes).
      counts: samples per class, shape [k].
    """

    nc1: Float[Array, ""]
    nc2_equinorm: Float[Array, ""]
    nc2_equiangular: Float[Array, ""]
    nc2_cosine_std: Float[Array, ""]
    nc3: Float[Array, ""] | None
    nc4: Float[Array, ""] | None
    cdnv: Float[Array, ""]
    class_means: Float[Array, "k d"]
    counts: Float[Array, " k"]


def _class_stats(h, labels, k, axis_name):
    """Global counts [k], class means [k, d], global mean [d] and the one-hot [n, k]."""
    onehot = jax.nn.one_hot(labels, k, dtype=h.dtype)  # rows of -1 are all zero
    counts = _collectives.psum(jnp.sum(onehot, axis=0), axis_name)
    sums = _collectives.psum(jnp.matmul(onehot.T, h, precision=_HI), axis_name)
    means = sums / jnp.where(counts > 0, counts, 1.0)[:, None]
    total = jnp.sum(counts)
    global_mean = jnp.sum(sums, axis=0) / jnp.where(total > 0, total, 1.0)
    return counts, means, global_mean, onehot, total


def neural_collapse(
    h: Float[Array, "n d"],
    labels: Int[Array, " n"],
    classifier: Float[Array, "k d"] | None = None,
    bias: Float[Array, " k"] | None = None,
    *,
    num_classes: int,
    rcond: float | None = None,
    axis_name: str | None = None,
) -> NeuralCollapseResult:
    """Neural-collapse statistics NC1–NC4 (Papyan et al.) and the CDNV (Galanti et al.).

    With class means ``μ_c``, global mean ``μ_G`` (over samples), ``M`` the rows ``μ_c − μ_G``,
    ``Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ`` and ``Σ_B = (1/K) MᵀM``:
    ``NC1 = tr(Σ_W Σ_B^†)/K``, with the pseudo-inverse from ``eigh`` keeping eigenvalues above
    ``rcond·λ_max`` (``Σ_B`` has rank ``<= K − 1``). NC2 reports equinorm, equiangularity and the
    cosine spread; NC3 and NC4 need the last-layer ``classifier`` ``W`` [k, d] (and optional
    ``bias``). ``K`` counts the classes present in ``labels``; absent classes are left out of
    every statistic except NC3, which compares all rows of ``W`` with ``M``. Labels ``-1`` are
    ignored. Two passes over the data (means, then centred scatter), each a ``psum`` under
    ``axis_name``. Computation in float32 at least.

    Args:
      h: penultimate features, shape [n, d].
      labels: class labels, int, shape [n], in ``[-1, num_classes)``.
      classifier: last-layer weights ``W``, shape [k, d], or None.
      bias: last-layer bias ``b``, shape [k], or None (zero).
      num_classes: ``k >= 2`` (static).
      rcond: relative eigenvalue cutoff of the pseudo-inverse; default ``100·max(k, d)·eps``
        of the computation dtype.
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; all statistics are then global. Under plain ``jax.jit`` leave it None.

    Returns:
      A :class:`NeuralCollapseResult`.

    Raises:
      ValueError: if shapes disagree, labels are out of range (when concrete), or inputs hold
        NaN/Inf.
      TypeError: if an input has the wrong dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import neural_collapse
      >>> etf = jnp.array([[1.0, 0.0], [-0.5, 0.866], [-0.5, -0.866]])  # simplex ETF, K = 3
      >>> h, y = jnp.repeat(etf, 2, axis=0), jnp.array([0, 0, 1, 1, 2, 2])
      >>> res = neural_collapse(h, y, etf, num_classes=3)
      >>> print(round(float(res.nc1), 6), round(float(res.nc2_equiangular), 3), float(res.nc4))
      0.0 0.0 0.0

    References:
      Papyan, Han, Donoho, "Prevalence of Neural Collapse during the Terminal Phase of Deep
      Learning Training", PNAS 2020, https://arxiv.org/abs/2008.08186.
      Galanti, György, Hutter, "On the Role of Neural Collapse in Transfer Learning", ICLR 2022,
      https://arxiv.org/abs/2112.15121.
    """
    h = _features(h, "h")
    n, d = h.shape
    labels, k = _labels(labels, n, num_classes)
    if classifier is not None:
        classifier = _features(classifier, "classifier", "[k, d]")
        if classifier.shape != (k, d):
            raise ValueError(
                f"classifier must have shape [k, d] = {(k, d)}, got {tuple(classifier.shape)}."
            )
    if bias is not None:
        if classifier is None:
            raise ValueError("bias requires classifier.")
        bias = _checks.as_float_array(bias, "bias", ndim=1, shape="[k]")
        if bias.shape[0] != k:
            raise ValueError(f"bias must have shape [k] = ({k},), got {tuple(bias.shape)}.")
    dtype = h.dtype
    if rcond is None:
        rcond = 100.0 * max(k, d) * float(jnp.finfo(dtype).eps)

    counts, means, mu_g, onehot, total = _class_stats(h, labels, k, axis_name)
    present = counts > 0
    presentf = present.astype(dtype)
    k_eff = jnp.sum(presentf)
    valid = (jnp.sum(onehot, axis=1) > 0).astype(dtype)

    # Σ_W from samples centred on their own class mean (pass 2): no E[hhᵀ] − μμᵀ cancellation.
    centred = (h - jnp.matmul(onehot, means, precision=_HI)) * valid[:, None]
    sigma_w = _gram(centred, axis_name) / jnp.where(total > 0, total, 1.0)
    m = (means - mu_g[None, :]) * presentf[:, None]
    sigma_b = jnp.matmul(m.T, m, precision=_HI) / jnp.maximum(k_eff, 1.0)
    lam, vec = jnp.linalg.eigh(sigma_b)
    keep = lam > rcond * jnp.max(lam)
    inv_lam = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
    pinv = jnp.matmul(vec * inv_lam[None, :], vec.T, precision=_HI)
    nc1 = jnp.trace(jnp.matmul(sigma_w, pinv, precision=_HI)) / jnp.maximum(k_eff, 1.0)

    norms = jnp.sqrt(jnp.sum(m * m, axis=1))
    mean_norm = jnp.sum(norms * presentf) / jnp.maximum(k_eff, 1.0)
    std_norm = jnp.sqrt(jnp.sum(presentf * (norms - mean_norm) ** 2) / jnp.maximum(k_eff, 1.0))
    equinorm = _safe_div(std_norm, mean_norm)
    mhat = _normalize(m)
    cos = jnp.matmul(mhat, mhat.T, precision=_HI)
    pairs = presentf[:, None] * presentf[None, :] * (1.0 - jnp.eye(k, dtype=dtype))
    num_pairs = jnp.maximum(jnp.sum(pairs), 1.0)
    target = -1.0 / jnp.maximum(k_eff - 1.0, 1.0)
    equiangular = jnp.sum(pairs * jnp.abs(cos - target)) / num_pairs
    cos_mean = jnp.sum(pairs * cos) / num_pairs
    cos_std = jnp.sqrt(jnp.sum(pairs * (cos - cos_mean) ** 2) / num_pairs)

    scatter = jnp.matmul(onehot.T, jnp.sum(centred * centred, axis=1), precision=_HI)
    var_c = _collectives.psum(scatter, axis_name)
    var_c = var_c / jnp.where(present, counts, 1.0)
    sq = jnp.sum(means * means, axis=1)
    dist = jnp.clip(sq[:, None] + sq[None, :] - 2.0 * jnp.matmul(means, means.T, precision=_HI), 0.0)
    tiny = jnp.finfo(dtype).tiny
    cdnv_pairs = (var_c[:, None] + var_c[None, :]) / (2.0 * jnp.maximum(dist, tiny))
    cdnv = jnp.sum(jnp.where(pairs > 0, cdnv_pairs, 0.0)) / num_pairs

    nc3 = nc4 = None
    if classifier is not None:
        w = classifier
        nc3 = jnp.sum((_safe_div(w, jnp.linalg.norm(w)) - _safe_div(m, jnp.linalg.norm(m))) ** 2)
        logits = jnp.matmul(h, w.T, precision=_HI)
        if bias is not None:
            logits = logits + bias.astype(dtype)[None, :]
        hs = jnp.sum(h * h, axis=1)
        d_means = hs[:, None] + sq[None, :] - 2.0 * jnp.matmul(h, means.T, precision=_HI)
        d_means = jnp.where(present[None, :], d_means, jnp.inf)
        mismatch = (jnp.argmax(logits, axis=1) != jnp.argmin(d_means, axis=1)).astype(dtype)
        nc4 = _collectives.psum(jnp.sum(mismatch * valid), axis_name) / jnp.where(total > 0, total, 1.0)
    return NeuralCollapseResult(nc1, equinorm, equiangular, cos_std, nc3, nc4, cdnv, means, counts)


def _check_pair(x, y):
    x = _features(x, "x", "[n, p1]")
    y = _features(y, "y", "[n, p2]")
    _checks.check_same_leading([x, y], ["x", "y"])
    return x, y


def linear_cka(
    x: Float[Array, "n p1"],
    y: Float[Array, "n p2"],
    *,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Linear centred kernel alignment ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` of column-centred ``X``, ``Y``.

    Equal to ``tr(KHLH)/sqrt(tr(KHKH) tr(LHLH))`` with ``K = XXᵀ``, ``L = YYᵀ``; invariant to
    orthogonal transforms and isotropic scaling of either representation, not to general
    invertible linear maps. Uses the feature-space Grams, or the ``n × n`` sample Grams when
    ``n < p1 + p2`` (unsharded only). Returns 0 when either representation is constant. This is
    the full-batch (biased) estimator; see :func:`linear_cka_unbiased` for minibatches.

    Args:
      x: first representation, shape [n, p1].
      y: second representation of the same samples, shape [n, p2].
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; means and Gram matrices are then global (``psum``). Under plain ``jax.jit`` leave
        it None.

    Returns:
      CKA in ``[0, 1]``, scalar.

    Raises:
      ValueError: if ``x`` and ``y`` are not rank 2 with the same ``n``, or hold NaN/Inf.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import linear_cka
      >>> x = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
      >>> print(round(float(linear_cka(x, 3.0 * x[:, ::-1])), 6))
      1.0

    References:
      Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations
      Revisited", ICML 2019, https://arxiv.org/abs/1905.00414.
    """
    x, y = _check_pair(x, y)
    n = _collectives.psum(jnp.asarray(x.shape[0], x.dtype), axis_name)
    x = x - _collectives.psum(jnp.sum(x, axis=0), axis_name)[None, :] / n
    y = y - _collectives.psum(jnp.sum(y, axis=0), axis_name)[None, :] / n
    if axis_name is None and x.shape[0] < x.shape[1] + y.shape[1]:
        kx = jnp.matmul(x, x.T, precision=_HI)
        ky = jnp.matmul(y, y.T, precision=_HI)
        num = jnp.sum(kx * ky)
        den = jnp.sqrt(jnp.sum(kx * kx)) * jnp.sqrt(jnp.sum(ky * ky))
    else:
        xy = _collectives.psum(jnp.matmul(y.T, x, precision=_HI), axis_name)
        xx = _gram(x, axis_name)
        yy = _gram(y, axis_name)
        num = jnp.sum(xy * xy)
        den = jnp.sqrt(jnp.sum(xx * xx)) * jnp.sqrt(jnp.sum(yy * yy))
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def _hsic1(k, l):
    """Unbiased HSIC estimator of Song et al. (2012), Eq. (5), for Grams with zeroed diagonals."""
    n = k.shape[0]
    k = k * (1.0 - jnp.eye(n, dtype=k.dtype))
    l = l * (1.0 - jnp.eye(n, dtype=l.dtype))
    ones_k = jnp.sum(k, axis=0)  # 1ᵀK̃
    ones_l = jnp.sum(l, axis=0)
    trace = jnp.sum(k * l)  # tr(K̃L̃) for symmetric matrices
    term2 = jnp.sum(ones_k) * jnp.sum(ones_l) / ((n - 1) * (n - 2))
    term3 = 2.0 * jnp.dot(ones_k, ones_l, precision=_HI) / (n - 2)
    return (trace + term2 - term3) / (n * (n - 3))


def linear_hsic_unbiased(x: Float[Array, "n p1"], y: Float[Array, "n p2"]) -> Float[Array, ""]:
    """Unbiased estimator ``HSIC₁(K, L)`` with linear kernels ``K = XXᵀ``, ``L = YYᵀ``.

    ``HSIC₁ = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − (2/(n−2)) 1ᵀK̃L̃1] / (n(n−3))`` with the
    diagonals of ``K̃``, ``L̃`` zeroed. Its expectation does not depend on the batch size, so
    minibatch CKA accumulates it over batches ``b``:
    ``CKA = Σ_b HSIC₁(X_b, Y_b) / sqrt(Σ_b HSIC₁(X_b, X_b) · Σ_b HSIC₁(Y_b, Y_b))``.
    Needs the ``n × n`` Grams of one minibatch (no ``axis_name``; gather the batch first).

    Args:
      x: first representation of the minibatch, shape [n, p1], ``n >= 4``.
      y: second representation, shape [n, p2].

    Returns:
      ``HSIC₁``, scalar (may be slightly negative: it is unbiased).

    Raises:
      ValueError: if shapes disagree, ``n < 4``, or inputs hold NaN/Inf.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import linear_hsic_unbiased
      >>> x = jnp.array([[0.0], [1.0], [2.0], [3.0], [5.0]])
      >>> print(float(linear_hsic_unbiased(x, x)) > 0)
      True

    References:
      Song, Smola, Gretton, Bedo, Borgwardt, "Feature Selection via Dependence Maximization",
      JMLR 13, 2012.
      Nguyen, Raghu, Kornblith, "Do Wide and Deep Networks Learn the Same Things?", ICLR 2021,
      https://arxiv.org/abs/2010.15327.
    """
    x, y = _check_pair(x, y)
    if x.shape[0] < 4:
        raise ValueError(f"x and y need n >= 4 samples for the unbiased HSIC, got n={x.shape[0]}.")
    return _hsic1(jnp.matmul(x, x.T, precision=_HI), jnp.matmul(y, y.T, precision=_HI))


def linear_cka_unbiased(x: Float[Array, "n p1"], y: Float[Array, "n p2"]) -> Float[Array, ""]:
    """Linear CKA from the unbiased HSIC: ``HSIC₁(X, Y)/sqrt(HSIC₁(X, X) HSIC₁(Y, Y))``.

    Less biased than :func:`linear_cka` for small batches (its bias comes only from the ratio).
    Returns 0 when a denominator term is not positive.

    Args:
      x: first representation, shape [n, p1], ``n >= 4``.
      y: second representation, shape [n, p2].

    Returns:
      The debiased CKA, scalar.

    Raises:
      ValueError: if shapes disagree, ``n < 4``, or inputs hold NaN/Inf.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import linear_cka_unbiased
      >>> x = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [1.0, 1.0]])
      >>> print(round(float(linear_cka_unbiased(x, -2.0 * x)), 6))
      1.0

    References:
      Nguyen, Raghu, Kornblith, "Do Wide and Deep Networks Learn the Same Things?", ICLR 2021,
      https://arxiv.org/abs/2010.15327.
    """
    x, y = _check_pair(x, y)
    if x.shape[0] < 4:
        raise ValueError(f"x and y need n >= 4 samples for the unbiased HSIC, got n={x.shape[0]}.")
    kx = jnp.matmul(x, x.T, precision=_HI)
    ky = jnp.matmul(y, y.T, precision=_HI)
    den = _hsic1(kx, kx) * _hsic1(ky, ky)
    ok = den > 0
    return jnp.where(ok, _hsic1(kx, ky) / jnp.sqrt(jnp.where(ok, den, 1.0)), 0.0)


def relative_representation(
    x: Float[Array, "n d"], anchors: Float[Array, "m d"]
) -> Float[Array, "n m"]:
    """Relative representation ``r(x)_j = cos(x, a_j)`` with respect to ``m`` anchors.

    Invariant to any angle-preserving map applied to samples and anchors alike (``e ↦ sQe``,
    ``Q`` orthogonal, ``s > 0``); *not* invariant to translations. A zero vector has cosine 0.

    Args:
      x: embeddings, shape [n, d].
      anchors: embeddings of the anchor samples in the same space, shape [m, d].

    Returns:
      Cosine similarities, shape [n, m].

    Raises:
      ValueError: if the feature dimensions differ or inputs hold NaN/Inf.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import relative_representation
      >>> relative_representation(jnp.array([[2.0, 0.0]]), jnp.array([[1.0, 0.0], [0.0, 3.0]])).tolist()
      [[1.0, 0.0]]

    References:
      Moschella et al., "Relative Representations Enable Zero-Shot Latent Space
      Communication", ICLR 2023, https://arxiv.org/abs/2209.15430.
    """
    x = _features(x, "x")
    anchors = _features(anchors, "anchors", "[m, d]")
    if anchors.shape[1] != x.shape[1]:
        raise ValueError(
            f"anchors must have shape [m, d] with d={x.shape[1]} to match x, got "
            f"{tuple(anchors.shape)}."
        )
    return jnp.matmul(_normalize(x), _normalize(anchors).T, precision=_HI)


def von_neumann_entropy(
    h: Float[Array, "n d"], *, axis_name: str | None = None
) -> Float[Array, ""]:
    """Von Neumann entropy ``−Σ λ ln λ`` of ``C = (1/N) Σ_i ĥ_i ĥ_iᵀ`` (``ĥ`` unit rows, ``tr C = 1``).

    Ranges from 0 (all embeddings collinear) to ``ln min(N, d)`` (isotropic). Eigenvalues come
    from ``eigh`` of the smaller of ``C`` (``d × d``) and ``ĤĤᵀ/N`` (``n × n``, unsharded only),
    clamped at 0; ``0 ln 0 = 0``. Float32 at least. Zero rows count as zero vectors.

    Args:
      h: embeddings, shape [n, d].
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; ``C`` is then summed with ``psum``. Under plain ``jax.jit`` leave it None.

    Returns:
      VNE in nats, scalar.

    Raises:
      ValueError: if ``h`` is not rank 2 or holds NaN/Inf.
      TypeError: if ``h`` has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import von_neumann_entropy
      >>> print(round(float(von_neumann_entropy(jnp.eye(3))), 4))  # ln 3
      1.0986

    References:
      Kim et al., "VNE: An Effective Method for Improving Deep Representation by Manipulating
      Eigenvalue Distribution", CVPR 2023, https://arxiv.org/abs/2304.01434.
    """
    h = _normalize(_features(h, "h"))
    n_local, d = h.shape
    n = _collectives.psum(jnp.asarray(n_local, h.dtype), axis_name)
    if axis_name is None and n_local < d:
        c = jnp.matmul(h, h.T, precision=_HI) / n
    else:
        c = _gram(h, axis_name) / n
    lam = jnp.clip(jnp.linalg.eigvalsh(c), 0.0)
    return -jnp.sum(_xlogx(lam))


def fisher_ratio(
    x: Float[Array, "n d"],
    labels: Int[Array, " n"],
    *,
    num_classes: int,
    ridge: ScalarLike = 1e-6,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Fisher discriminant ratio ``J = tr(S_W^{-1} S_B)``.

    ``S_W = Σ_c Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ``, ``S_B = Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ`` (a common
    ``1/N`` cancels). ``S_W`` is regularised as ``S_W + ridge·(tr S_W/d)·I`` (a ridge relative to
    its mean eigenvalue, so ``J`` is scale-invariant) and ``J`` is computed with ``solve``. For two
    equally sized classes in 1-D, ``J = (μ₁ − μ₂)²/(2(σ₁² + σ₂²))``: half the classic two-class
    criterion. Labels ``-1`` are ignored.

    Args:
      x: features, shape [n, d].
      labels: class labels, int, shape [n], in ``[-1, num_classes)``.
      num_classes: ``k >= 2`` (static).
      ridge: relative ridge ``>= 0`` (default 1e-6).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; scatter matrices are then global (``psum``). Under plain ``jax.jit`` leave it None.

    Returns:
      ``J >= 0``, scalar.

    Raises:
      ValueError: if shapes disagree, labels are out of range (when concrete), or ``ridge < 0``.
      TypeError: if an input has the wrong dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import fisher_ratio
      >>> x = jnp.array([[0.0], [2.0], [10.0], [12.0]])  # μ = 1, 11; σ² = 1, 1
      >>> print(round(float(fisher_ratio(x, jnp.array([0, 0, 1, 1]), num_classes=2)), 3))
      25.0

    References:
      Fisher, "The Use of Multiple Measurements in Taxonomic Problems", Annals of Eugenics 7,
      1936. Fukunaga, "Introduction to Statistical Pattern Recognition", 2nd ed., 1990, ch. 10.
    """
    x = _features(x, "x")
    labels, k = _labels(labels, x.shape[0], num_classes)
    _checks.check_nonnegative_scalar(ridge, "ridge")
    d = x.shape[1]
    counts, means, mu, onehot, _ = _class_stats(x, labels, k, axis_name)
    valid = (jnp.sum(onehot, axis=1) > 0).astype(x.dtype)
    centred = (x - jnp.matmul(onehot, means, precision=_HI)) * valid[:, None]
    s_w = _gram(centred, axis_name)
    between = (means - mu[None, :]) * jnp.sqrt(counts)[:, None]
    s_b = jnp.matmul(between.T, between, precision=_HI)
    scale = jnp.trace(s_w) / d
    scale = jnp.where(scale > 0, scale, 1.0)
    reg = s_w + ridge * scale * jnp.eye(d, dtype=x.dtype)
    return jnp.trace(jnp.linalg.solve(reg, s_b))


def alignment(
    x: Float[Array, "n d"],
    y: Float[Array, "n d"],
    *,
    alpha: ScalarLike = 2.0,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Alignment metric ``E_i ‖x_i − y_i‖^α`` over positive pairs (rows of ``x`` and ``y``).

    The diagnostic version of Wang & Isola's alignment loss (mean over the global batch); lower
    is better. Embeddings are used as given (the paper assumes unit norm).

    Args:
      x: embeddings of the first views, shape [n, d].
      y: embeddings of the positives, shape [n, d].
      alpha: exponent ``α > 0`` (default 2).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; the mean is then global. Under plain ``jax.jit`` leave it None.

    Returns:
      Mean ``‖x_i − y_i‖^α``, scalar.

    Raises:
      ValueError: if shapes differ or inputs hold NaN/Inf.
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import alignment
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[0.0, 1.0], [0.0, 1.0]])
      >>> print(float(alignment(x, y)))
      1.0

    References:
      Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and
      Uniformity on the Hypersphere", ICML 2020, https://arxiv.org/abs/2005.10242.
    """
    x = _features(x, "x")
    y = _features(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must have the same shape [n, d], got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    _checks.check_nonnegative_scalar(alpha, "alpha")
    sq = jnp.sum((x - y) ** 2, axis=1)
    pos = sq > 0
    powered = jnp.where(pos, jnp.where(pos, sq, 1.0) ** (0.5 * alpha), 0.0)
    total = _collectives.psum(jnp.sum(powered), axis_name)
    n = _collectives.psum(jnp.asarray(x.shape[0], x.dtype), axis_name)
    return total / n


def uniformity(
    x: Float[Array, "n d"],
    *,
    t: ScalarLike = 2.0,
    axis_name: str | None = None,
) -> Float[Array, ""]:
    """Uniformity metric ``ln E_{i<j} exp(−t‖x_i − x_j‖²)`` over all distinct pairs of the batch.

    Computed as ``LSE_{i<j}(−t d²_ij) − ln(N(N−1)/2)`` (never exponentiating first); lower is
    more uniform. Needs ``N >= 2``. Under ``axis_name`` every shard compares its rows with all
    rows (an all-gather of ``x``: memory ``N·d`` per shard plus ``n·N`` distances).

    Args:
      x: embeddings, shape [n, d] (the paper uses unit norm).
      t: temperature ``t > 0`` (default 2).
      axis_name: set only inside ``jax.shard_map`` when the sample axis is split over that mesh
        axis; pairs then range over the global batch. Under plain ``jax.jit`` leave it None.

    Returns:
      The uniformity, scalar ``<= 0``.

    Raises:
      ValueError: if ``x`` is not rank 2 with ``n >= 2`` (unsharded) or holds NaN/Inf.
      TypeError: if ``x`` has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.metrics import uniformity
      >>> print(round(float(uniformity(jnp.array([[1.0, 0.0], [-1.0, 0.0]]))), 3))  # −2·4
      -8.0

    References:
      Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and
      Uniformity on the Hypersphere", ICML 2020, https://arxiv.org/abs/2005.10242.
    """
    x = _features(x, "x")
    if axis_name is None and x.shape[0] < 2:
        raise ValueError(f"x needs n >= 2 samples to form pairs, got n={x.shape[0]}.")
    _checks.check_nonnegative_scalar(t, "t")
    n_local = x.shape[0]
    everyone = _collectives.all_gather(x, axis_name)  # [S, n, d]
    num_shards = everyone.shape[0]
    everyone = everyone.reshape(num_shards * n_local, x.shape[1])
    n = num_shards * n_local
    mine = _collectives.shard_index(axis_name) * n_local + jnp.arange(n_local)
    sq_x = jnp.sum(x * x, axis=1)
    sq_all = jnp.sum(everyone * everyone, axis=1)
    d2 = jnp.clip(sq_x[:, None] + sq_all[None, :] - 2.0 * jnp.matmul(x, everyone.T, precision=_HI), 0.0)
    upper = jnp.arange(n)[None, :] > mine[:, None]
    logits = jnp.where(upper, -t * d2, -jnp.inf)
    row = jax.nn.logsumexp(logits, axis=1)  # −inf for the last global row (no pairs)
    lse = _collectives.logsumexp_over_samples(row, axis_name)
    return lse - jnp.log(n * (n - 1) / 2.0)
