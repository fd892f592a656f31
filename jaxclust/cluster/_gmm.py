"""Gaussian mixture models fitted by EM (full, tied, diagonal or spherical covariances)."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster import _init
from jaxclust.cluster._distances import compute_dtype

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_INITS = ("kmeans", "k-means++", "random")
#: Largest number of entries of an [n, components, d] block built at once by the full and tied
#: covariance passes (components are processed in groups of ``budget // (n·d)``).
_BLOCK_BUDGET = 2**24


class GMMParams(NamedTuple):
    """Explicit initial parameters for :func:`gmm` (scikit-learn's ``*_init`` arguments).

    Attributes:
      weights: mixing proportions, shape [k], non-negative, summing to one.
      means: component means, shape [k, d].
      precisions: inverse covariances, laid out by covariance type as scikit-learn's
        ``precisions_init``: ``"full"`` [k, d, d], ``"tied"`` [d, d], ``"diag"`` [k, d],
        ``"spherical"`` [k]. Matrices must be symmetric positive definite, values positive.
    """

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    precisions: Float[Array, "..."]


class GMMResult(NamedTuple):
    """Output of :func:`gmm`; also the model argument of ``gmm_predict`` and friends.

    Attributes:
      weights: mixing proportions ``π_k``, shape [k], summing to one.
      means: component means, shape [k, d].
      covariances: as scikit-learn's ``covariances_`` (``reg_covar`` included): ``"full"``
        [k, d, d], ``"tied"`` [d, d], ``"diag"`` [k, d], ``"spherical"`` [k].
      precisions_cholesky: as scikit-learn's ``precisions_cholesky_``, same layout as
        ``covariances``: for full/tied matrices the upper-triangular ``U`` with ``U Uᵀ = Σ⁻¹``,
        for diag/spherical ``1/σ``.
      labels: most probable component of every sample at the returned parameters (the given
        class for samples labelled in semi-supervised mode), int32, shape [n]; ``-1`` where
        ``where`` is False.
      log_likelihood: weighted mean per-sample log-likelihood ``Σ_i w_i log p(x_i) / Σ_i w_i``
        at the returned parameters (scikit-learn's ``score(X)`` when unweighted), scalar.
      lower_bound: the EM objective at the last E-step (scikit-learn's ``lower_bound_``: it is
        computed before the last M-step); restarts keep the run with the largest. In
        semi-supervised mode labelled samples contribute ``log π_{y_i} N(x_i | y_i)``.
        ``-inf`` when ``max_steps == 0``.
      num_steps: EM iterations run by the returned run, int32 scalar.
      converged: True when the change of the lower bound fell below ``tol``; False when
        ``max_steps`` was hit or a covariance could not be factorised even after raising its
        regularisation (the last good parameters are returned).
    """

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covariances: Float[Array, "..."]
    precisions_cholesky: Float[Array, "..."]
    labels: Int[Array, " n"]
    log_likelihood: Float[Array, ""]
    lower_bound: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]


class _Model(NamedTuple):
    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covariances: Float[Array, "..."]
    precisions_cholesky: Float[Array, "..."]


class _EMState(NamedTuple):
    model: _Model
    lower_bound: Float[Array, ""]
    step: Int[Array, ""]
    done: Bool[Array, ""]
    failed: Bool[Array, ""]


# --------------------------------------------------------------------------------------------
# Numerics shared by the solver and the prediction functions.


def _covariance_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def _component_groups(n: int, d: int, k: int) -> int:
    """Components handled together by ``lax.map`` so that an [n, group, d] block fits the budget."""
    return max(1, min(k, _BLOCK_BUDGET // max(1, n * d)))


def _over_row_blocks(fn, x, width: int):
    """``fn(x)`` for a row-wise ``fn`` whose temporaries are ``width`` wide per row, computed in
    row blocks (``lax.map``) so that a block holds at most ``_BLOCK_BUDGET`` entries."""
    n = x.shape[0]
    rows = max(1, _BLOCK_BUDGET // max(1, width))
    if n <= rows:
        return fn(x)
    pad = (-n) % rows
    blocks = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, rows, x.shape[1])
    out = lax.map(fn, blocks)
    return out.reshape((-1,) + out.shape[2:])[:n]


def _log_gaussian(x, means, precisions_cholesky, covariance_type: str):
    """``log N(x_i | μ_k, Σ_k)``, shape [n, k], from the precision Cholesky factors.

    ``log N = −½ (d ln 2π + ‖(x − μ_k)ᵀ U_k‖²) + Σ_j ln (U_k)_jj`` with ``U_k U_kᵀ = Σ_k⁻¹``: one
    matrix product per component and no inverse or determinant of ``Σ_k`` (the log-determinant of
    ``Σ_k`` is ``−2 Σ_j ln (U_k)_jj``).
    """
    n, d = x.shape
    k = means.shape[0]
    if covariance_type in ("full", "tied"):
        if covariance_type == "tied":
            factors = jnp.broadcast_to(precisions_cholesky, (k, d, d))
        else:
            factors = precisions_cholesky
        # x U_k for every k as one [n, d] x [d, k·d] product (fast GEMM), minus μ_k U_k.
        stacked = jnp.transpose(factors, (1, 0, 2)).reshape(d, k * d)
        offsets = jnp.einsum("kd,kde->ke", means, factors)

        def mahalanobis(rows):
            y = (rows @ stacked).reshape(rows.shape[0], k, d) - offsets[None]
            return jnp.sum(y * y, axis=2)

        sq = _over_row_blocks(mahalanobis, x, k * d)
        diag = jnp.diagonal(factors, axis1=1, axis2=2)
        log_det = jnp.sum(jnp.log(diag), axis=1)
    elif covariance_type == "diag":
        p = precisions_cholesky**2
        sq = (x * x) @ p.T - 2.0 * (x @ (means * p).T) + jnp.sum(means**2 * p, axis=1)[None, :]
        log_det = jnp.sum(jnp.log(precisions_cholesky), axis=1)
    else:
        p = precisions_cholesky**2
        sq = (
            jnp.sum(x * x, axis=1)[:, None] * p[None, :]
            - 2.0 * (x @ means.T) * p[None, :]
            + (jnp.sum(means**2, axis=1) * p)[None, :]
        )
        log_det = d * jnp.log(precisions_cholesky)
    return -0.5 * (d * math.log(2.0 * math.pi) + sq) + log_det[None, :]


def _log_joint(x, model: _Model, covariance_type: str):
    """``log π_k + log N(x_i | μ_k, Σ_k)``, shape [n, k]."""
    log_w = jnp.log(jnp.maximum(model.weights, jnp.finfo(model.weights.dtype).tiny))
    return _log_gaussian(x, model.means, model.precisions_cholesky, covariance_type) + log_w[None, :]


def _cholesky_factor(cov):
    """Upper-triangular ``U = L⁻ᵀ`` with ``Σ = L Lᵀ`` for a batch of matrices; finiteness flags."""
    d = cov.shape[-1]
    chol = jnp.linalg.cholesky(cov)
    eye = jnp.broadcast_to(jnp.eye(d, dtype=cov.dtype), cov.shape)
    factor = jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)
    ok = jnp.all(jnp.isfinite(factor), axis=(-2, -1)) & jnp.all(
        jnp.diagonal(factor, axis1=-2, axis2=-1) > 0, axis=-1
    )
    return factor, ok


def _precisions_cholesky(covariances, covariance_type: str, reg_covar):
    """Precision Cholesky factors; a failed factorisation is retried with ``reg_covar`` raised
    tenfold up to three times (METHODS.md §1.6). Returns ``(covariances, factors, ok)``, with the
    covariances as regularised."""
    if covariance_type in ("diag", "spherical"):
        ok = jnp.all(covariances > 0)
        safe = jnp.where(covariances > 0, covariances, 1.0)
        return covariances, 1.0 / jnp.sqrt(safe), ok
    batched = covariances if covariance_type == "full" else covariances[None]
    d = batched.shape[-1]
    eye = jnp.eye(d, dtype=batched.dtype)
    factor, ok = _cholesky_factor(batched)

    def retry(args):
        base = args[0]

        def attempt(j, carry):  # total regularisation reg_covar·10^j on the failed components
            cov, factor, ok = carry
            raised = base + (reg_covar * (10.0 ** j.astype(base.dtype) - 1.0)) * eye[None]
            f, good = _cholesky_factor(raised)
            take = (~ok) & good
            cov = jnp.where(take[:, None, None], raised, cov)
            factor = jnp.where(take[:, None, None], f, factor)
            return cov, factor, ok | good

        return lax.fori_loop(1, 4, attempt, args)

    batched, factor, ok = lax.cond(
        jnp.all(ok), lambda args: args, retry, (batched, jnp.where(ok[:, None, None], factor, eye), ok)
    )
    factor = jnp.where(ok[:, None, None], factor, eye)  # never NaN, even when reported as failed
    if covariance_type == "tied":
        return batched[0], factor[0], jnp.all(ok)
    return batched, factor, jnp.all(ok)


def _m_step(x, w, resp, *, covariance_type, reg_covar, axis_name):
    """Weighted M-step from responsibilities [n, k] (METHODS.md §1.6); sums are global.

    Returns ``(model, ok)``; ``ok`` is False when a covariance could not be factorised.
    """
    n, d = x.shape
    k = resp.shape[1]
    eps = jnp.finfo(x.dtype).eps
    rw = resp * w[:, None]
    nk = _collectives.psum(jnp.sum(rw, axis=0), axis_name) + 10.0 * eps
    means = _collectives.psum(rw.T @ x, axis_name) / nk[:, None]
    if covariance_type in ("full", "tied"):
        # Second pass on differences from the new means: no cancellation in E[xxᵀ] − μμᵀ.
        def scatter(args):
            r, mu = args
            diff = x - mu[None, :]
            return (diff * r[:, None]).T @ diff

        s = lax.map(scatter, (rw.T, means), batch_size=_component_groups(n, d, k))
        s = _collectives.psum(s, axis_name)
        eye = jnp.eye(d, dtype=x.dtype)
        if covariance_type == "full":
            covariances = s / nk[:, None, None] + reg_covar * eye[None]
        else:
            covariances = jnp.sum(s, axis=0) / jnp.sum(nk) + reg_covar * eye
    else:
        # E[x²] − μ² on data centred by the global mean (see _solve); clamped at 0 against
        # rounding, so a variance is never below reg_covar.
        avg_x2 = _collectives.psum(rw.T @ (x * x), axis_name) / nk[:, None]
        var = jnp.maximum(avg_x2 - means**2, 0.0) + reg_covar
        covariances = var if covariance_type == "diag" else jnp.mean(var, axis=1)
    covariances, factors, ok = _precisions_cholesky(covariances, covariance_type, reg_covar)
    weights = nk / jnp.sum(nk)
    return _Model(weights, means, covariances, factors), ok


def _e_step(x, w, model, labels, *, covariance_type, axis_name):
    """Responsibilities [n, k], the per-sample log-likelihoods [n] and the EM objective.

    Labelled samples (``labels >= 0``) keep one-hot responsibilities and contribute the complete
    data log-likelihood ``log π_y N(x | y)`` to the objective.
    """
    log_joint = _log_joint(x, model, covariance_type)
    log_norm = jax.nn.logsumexp(log_joint, axis=1)
    resp = jnp.exp(log_joint - log_norm[:, None])
    objective = log_norm
    if labels is not None:
        k = log_joint.shape[1]
        labelled = labels >= 0
        one_hot = jax.nn.one_hot(jnp.where(labelled, labels, 0), k, dtype=x.dtype)
        resp = jnp.where(labelled[:, None], one_hot, resp)
        objective = jnp.where(labelled, jnp.sum(one_hot * log_joint, axis=1), log_norm)
    total = _collectives.psum(jnp.sum(w), axis_name)
    total = jnp.where(total > 0, total, 1.0)
    mean_objective = _collectives.psum(jnp.sum(w * objective), axis_name) / total
    return resp, log_norm, mean_objective


# --------------------------------------------------------------------------------------------
# Initialisation.


def _params_to_model(params: GMMParams, covariance_type: str, x) -> _Model:
    """Initial model from explicit weights, means and precisions (scikit-learn's ``*_init``)."""
    precisions = params.precisions.astype(x.dtype)
    if covariance_type in ("full", "tied"):
        # U with U Uᵀ = Λ, upper triangular, as scikit-learn: the lower Cholesky factor of the
        # row-and-column-reversed precision, reversed back.
        flipped = jnp.flip(precisions, axis=(-2, -1))
        factors = jnp.flip(jnp.linalg.cholesky(flipped), axis=(-2, -1))
        covariances = jnp.linalg.inv(precisions)
    else:
        factors = jnp.sqrt(precisions)
        covariances = 1.0 / precisions
    return _Model(params.weights.astype(x.dtype), params.means.astype(x.dtype), covariances, factors)


def _class_means(x, w, labels, k, axis_name):
    """Weighted means of the labelled samples of each class, and which classes have any."""
    ids = jnp.where(labels >= 0, labels, k)  # out of range: dropped
    sums = _collectives.psum(_collectives.segment_sum(w[:, None] * x, ids, k), axis_name)
    mass = _collectives.psum(_collectives.segment_sum(w, ids, k), axis_name)
    has = mass > 0
    return sums / jnp.where(has, mass, 1.0)[:, None], has


def _initial_model(x, w, labels, key, *, k, init, covariance_type, reg_covar, axis_name):
    """Initial parameters from a seeding method (scikit-learn's ``init_params``)."""
    if init == "random":
        # Uniform random responsibilities, normalised per row; shards draw different numbers.
        draw_key = _collectives.fold_in_shard(key, axis_name)
        resp = jax.random.uniform(draw_key, (x.shape[0], k), x.dtype)
        resp = resp / jnp.sum(resp, axis=1, keepdims=True)
    else:
        centres = _init.kmeans_plusplus(x, k=k, key=key, sample_weight=w, axis_name=axis_name)
        if labels is not None:  # align component c with class c where class c has labels
            class_means, has = _class_means(x, w, labels, k, axis_name)
            centres = jnp.where(has[:, None], class_means, centres)
        if init == "k-means++":
            # scikit-learn's "k-means++": one-hot responsibilities on the k seeds only, i.e. means
            # at the seeds, covariances reg_covar·I and equal weights.
            d = x.shape[1]
            shape = _covariance_shape(covariance_type, k, d)
            if covariance_type in ("full", "tied"):
                covariances = jnp.broadcast_to(reg_covar * jnp.eye(d, dtype=x.dtype), shape)
            else:
                covariances = jnp.full(shape, reg_covar, x.dtype)
            covariances, factors, _ = _precisions_cholesky(covariances, covariance_type, reg_covar)
            return _Model(jnp.full(k, 1.0 / k, x.dtype), centres, covariances, factors)
        from jaxclust.cluster._kmeans import kmeans

        assignment = kmeans(x, k=k, init=centres, sample_weight=w, axis_name=axis_name).labels
        resp = jax.nn.one_hot(assignment, k, dtype=x.dtype)
    if labels is not None:
        labelled = labels >= 0
        one_hot = jax.nn.one_hot(jnp.where(labelled, labels, 0), k, dtype=x.dtype)
        resp = jnp.where(labelled[:, None], one_hot, resp)
    model, _ = _m_step(
        x, w, resp, covariance_type=covariance_type, reg_covar=reg_covar, axis_name=axis_name
    )
    return model


# --------------------------------------------------------------------------------------------
# Solver.


def _em(x, w, labels, model, *, covariance_type, reg_covar, tol, max_steps, axis_name):
    """EM iterations from ``model`` with scikit-learn's stopping rule; returns the final state."""
    e_step = functools.partial(
        _e_step, x, w, labels=labels, covariance_type=covariance_type, axis_name=axis_name
    )

    def cond(state: _EMState):
        return (~state.done) & (state.step < max_steps)

    def body(state: _EMState) -> _EMState:
        resp, _, lower_bound = e_step(state.model)
        new, ok = _m_step(
            x, w, resp, covariance_type=covariance_type, reg_covar=reg_covar, axis_name=axis_name
        )
        model = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state.model)
        done = (jnp.abs(lower_bound - state.lower_bound) < tol) | ~ok
        return _EMState(model, lower_bound, state.step + 1, done, ~ok)

    start = _EMState(
        model,
        jnp.asarray(-jnp.inf, x.dtype),
        jnp.int32(0),
        jnp.asarray(False),
        jnp.asarray(False),
    )
    return lax.while_loop(cond, body, start)


def _solve(x, w, labels, where, start, *, k, init, n_init, covariance_type, reg_covar, tol,
           max_steps, axis_name) -> GMMResult:
    """Centres the data, seeds ``n_init`` times (or starts from the model ``start``) and runs EM."""
    total = _collectives.psum(jnp.sum(w), axis_name)
    shift = _collectives.psum(jnp.sum(w[:, None] * x, axis=0), axis_name) / jnp.where(
        total > 0, total, 1.0
    )
    # Centring (undone on the means at the end) keeps the moment form of the diagonal variances
    # and the expanded distances accurate for data far from the origin.
    x = x - shift[None, :]
    em = functools.partial(
        _em, x, w, labels, covariance_type=covariance_type, reg_covar=reg_covar, tol=tol,
        max_steps=max_steps, axis_name=axis_name,
    )

    if init is None:
        state = em(start._replace(means=start.means - shift[None, :]))
    else:
        def run(run_key):
            return em(_initial_model(
                x, w, labels, run_key, k=k, init=init, covariance_type=covariance_type,
                reg_covar=reg_covar, axis_name=axis_name,
            ))

        if n_init == 1:
            state = run(start)
        else:
            # Sequential restarts carrying only the best state: memory does not grow with n_init.
            keys = jax.random.split(start, n_init)

            def restart(best: _EMState, run_key):
                state = run(run_key)
                better = state.lower_bound > best.lower_bound
                return jax.tree.map(lambda a, b: jnp.where(better, a, b), state, best), None

            state, _ = lax.scan(restart, run(keys[0]), keys[1:])

    model = state.model
    resp, log_norm, _ = _e_step(
        x, w, model, labels, covariance_type=covariance_type, axis_name=axis_name
    )
    assigned = jnp.argmax(resp, axis=1).astype(jnp.int32)
    if where is not None:
        assigned = jnp.where(where, assigned, -1)
    log_likelihood = _collectives.psum(jnp.sum(w * log_norm), axis_name) / jnp.where(
        total > 0, total, 1.0
    )
    return GMMResult(
        weights=model.weights,
        means=model.means + shift[None, :],
        covariances=model.covariances,
        precisions_cholesky=model.precisions_cholesky,
        labels=assigned,
        log_likelihood=log_likelihood,
        lower_bound=state.lower_bound,
        num_steps=state.step,
        converged=state.done & ~state.failed,
    )


def _check_params(init: GMMParams, k: int, d: int, covariance_type: str) -> GMMParams:
    weights = _checks.as_float_array(init.weights, "init.weights", ndim=1, shape="[k]")
    means = _checks.as_float_array(init.means, "init.means", ndim=2, shape="[k, d]")
    precisions = _checks.as_float_array(init.precisions, "init.precisions")
    if weights.shape != (k,):
        raise ValueError(f"init.weights must have shape [k] = {(k,)}, got {tuple(weights.shape)}.")
    if means.shape != (k, d):
        raise ValueError(f"init.means must have shape [k, d] = {(k, d)}, got {tuple(means.shape)}.")
    shape = _covariance_shape(covariance_type, k, d)
    if precisions.shape != shape:
        raise ValueError(
            f"init.precisions must have shape {shape} for covariance_type={covariance_type!r}, "
            f"got {tuple(precisions.shape)}."
        )
    if _checks.is_concrete(weights):
        w = np.asarray(weights, np.float64)
        if (w < 0).any() or abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(
                f"init.weights must be non-negative and sum to 1, got sum {w.sum():.6g}."
            )
    if _checks.is_concrete(precisions):
        p = np.asarray(precisions, np.float64)
        if covariance_type in ("full", "tied"):
            mats = p.reshape(-1, d, d)
            symmetric = np.allclose(mats, np.swapaxes(mats, 1, 2), atol=1e-8, rtol=1e-6)
            if not symmetric or (np.linalg.eigvalsh(mats).min(axis=1) <= 0).any():
                raise ValueError("init.precisions must be symmetric positive-definite matrices.")
        elif (p <= 0).any():
            raise ValueError("init.precisions must be positive.")
    return GMMParams(weights, means, precisions)


def gmm(
    x: Float[Array, "n d"],
    *,
    k: int,
    key: KeyArray | None = None,
    covariance_type: str = "full",
    init: str | GMMParams = "kmeans",
    reg_covar: ScalarLike = 1e-6,
    tol: ScalarLike = 1e-3,
    max_steps: int = 100,
    n_init: int = 1,
    sample_weight: Float[Array, " n"] | None = None,
    where: Bool[Array, " n"] | None = None,
    labels: Int[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> GMMResult:
    """Gaussian mixture model fitted by expectation-maximisation.

    Follows ``sklearn.mixture.GaussianMixture`` (METHODS.md §1.6). Each iteration computes the
    responsibilities ``r_ik ∝ π_k N(x_i | μ_k, Σ_k)`` in the log domain (log-sum-exp over
    components), then the weighted maximum-likelihood ``π``, ``μ``, ``Σ`` with ``reg_covar`` added
    to the diagonal of every covariance. Densities use the Cholesky factor ``U`` of the precision
    (``U Uᵀ = Σ⁻¹``): ``log N = −½(d ln 2π + ‖(x − μ)ᵀU‖²) + Σ_j ln U_jj``, so no covariance is
    inverted. A covariance whose Cholesky factorisation fails is retried with ``reg_covar``
    raised tenfold up to three times; if it still fails the last good parameters are returned
    with ``converged=False``. The loop (a ``lax.while_loop``, not differentiable) stops when the
    mean log-likelihood changes by less than ``tol``, scikit-learn's rule; a final E-step gives
    ``labels`` and ``log_likelihood`` at the returned parameters.

    Semi-supervised mode: with ``labels``, samples whose label ``y_i >= 0`` keep the one-hot
    responsibility ``r_ik = 1[k = y_i]`` in every E-step (component ``c`` is class ``c``); samples
    labelled ``-1`` are unlabelled. The monitored objective is then the log-likelihood of the
    labelled pairs ``(x_i, y_i)`` plus that of the unlabelled ``x_i``, which EM increases.

    Data are centred by their weighted mean before the loop (the shift is undone on ``means``).
    Half-precision inputs are computed in float32. Peak memory beyond the inputs is
    ``O(n·k + k·d²)`` plus blocks of at most 2**24 entries for the full/tied passes.

    Args:
      x: data, shape [n, d], floating point, finite.
      k: number of components (static: changing it recompiles).
      key: PRNG key for seeding; required unless ``init`` is a :class:`GMMParams`.
      covariance_type: ``"full"`` (one [d, d] matrix per component), ``"tied"`` (one shared
        matrix), ``"diag"`` (per-component variances per feature) or ``"spherical"`` (one
        variance per component) (static).
      init: ``"kmeans"`` (responsibilities from the labels of :func:`kmeans` seeded by k-means++,
        scikit-learn's default), ``"k-means++"`` (means at k-means++ seeds, covariances
        ``reg_covar·I``, as scikit-learn's), ``"random"`` (uniformly random responsibilities,
        normalised) or a :class:`GMMParams` of explicit initial parameters (static choice). With
        ``labels`` and a seeding name, component ``c`` starts from the mean of the samples
        labelled ``c`` (a k-means++ seed for classes without labelled samples) and labelled
        samples start with one-hot responsibilities.
      reg_covar: non-negative value added to the covariance diagonals (default 1e-6).
      tol: convergence threshold on the change of the mean log-likelihood (default 1e-3).
      max_steps: maximum EM iterations per run (static); 0 returns the initial parameters.
      n_init: number of seedings (static); the run with the largest lower bound is returned.
        Runs are sequential (``lax.scan``), so memory does not grow with it. Must be 1 when
        ``init`` is a :class:`GMMParams`.
      sample_weight: non-negative sample weights, shape [n]; ones if None.
      where: validity mask, shape [n]; rows where it is False are ignored (weight 0) and labelled
        ``-1``. Equals fitting the valid rows alone from the same initial parameters.
      labels: semi-supervised class labels in ``[-1, k)``, int, shape [n]; ``-1`` is unlabelled.
      axis_name: set only inside ``jax.shard_map`` with the sample axis split over this mesh axis;
        then ``n`` is the per-shard count and the sufficient statistics (``N_k``, ``Σ r x``,
        ``Σ r (x − μ)(x − μ)ᵀ``, log-likelihood sums) are summed over shards, so the parameters
        are replicated. Under plain ``jax.jit`` on sharded arrays leave it None: XLA inserts the
        collectives.

    Returns:
      A :class:`GMMResult`.

    Raises:
      TypeError: if ``x``, ``sample_weight`` or the parameters in ``init`` are not floating
        point, ``labels`` is not integer, or ``k``, ``max_steps`` or ``n_init`` is not an int.
      ValueError: if shapes are wrong, ``x`` holds NaN/Inf, ``k`` is not in [1, n], an option is
        unknown, ``key`` is missing, ``tol``/``reg_covar`` is negative, ``labels`` is out of
        ``[-1, k)``, or ``init`` holds invalid weights or precisions.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import gmm
      >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [9.0, 9.0], [9.0, 10.0], [10.0, 9.0]])
      >>> result = gmm(x, k=2, key=jax.random.key(0), covariance_type="spherical")
      >>> result.labels.tolist() in ([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
      True
      >>> print(result.weights.round(2).tolist(), bool(result.converged))
      [0.5, 0.5] True

    References:
      Dempster, Laird & Rubin, "Maximum Likelihood from Incomplete Data via the EM Algorithm",
      J. R. Stat. Soc. B 39(1), 1977.
      Bishop, "Pattern Recognition and Machine Learning", Springer 2006, §9.2.
      Nigam, McCallum, Thrun & Mitchell, "Text Classification from Labeled and Unlabeled
      Documents using EM", Machine Learning 39, 2000 (semi-supervised EM).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    if axis_name is None:
        k = _checks.check_num_clusters(k, x.shape[0])
    else:
        k = _checks.check_positive_int(k, "k")
    _checks.check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    n_init = _checks.check_positive_int(n_init, "n_init")
    _checks.check_nonnegative_scalar(tol, "tol")
    _checks.check_nonnegative_scalar(reg_covar, "reg_covar")
    dtype = compute_dtype(x.dtype)
    x = x.astype(dtype)
    w = _init._weights(sample_weight, x)
    if where is not None:
        where = _checks.as_bool_array(where, "where", n=x.shape[0], other="x")
        w = jnp.where(where, w, 0.0)
        x = jnp.where(where[:, None], x, 0.0)  # masked rows may hold anything (padding)
    if labels is not None:
        labels = _checks.as_int_array(labels, "labels")
        _checks.check_same_leading([x, labels], ["x", "labels"])
        if _checks.is_concrete(labels):
            lab = np.asarray(labels)
            if lab.size and (lab.min() < -1 or lab.max() >= k):
                raise ValueError(
                    f"labels must be in [-1, k) = [-1, {k}) (-1 marks unlabelled samples), got "
                    f"values in [{lab.min()}, {lab.max()}]."
                )
        labels = labels.astype(jnp.int32)
    if isinstance(init, GMMParams):
        if n_init > 1:
            raise ValueError(
                f"n_init must be 1 when init is a GMMParams of explicit parameters, got "
                f"n_init={n_init}."
            )
        params = _check_params(init, k, x.shape[1], covariance_type)
        start = _params_to_model(params, covariance_type, x)
        init = None
    elif isinstance(init, str):
        _checks.check_choice(init, "init", _INITS + ("a GMMParams",))
        if key is None:
            raise ValueError(f"key is required when init={init!r}; pass e.g. key=jax.random.key(0).")
        start = key
    else:
        raise TypeError(
            f"init must be one of {list(_INITS)} or a GMMParams, got {type(init).__name__}."
        )
    solve = functools.partial(
        _solve, k=k, init=init, n_init=n_init, covariance_type=covariance_type,
        reg_covar=jnp.asarray(reg_covar, dtype), tol=jnp.asarray(tol, dtype),
        max_steps=max_steps,
    )
    explicit_axis = _collectives.explicit_sample_axis(x) if axis_name is None else None
    if explicit_axis is None:
        return solve(x, w, labels, where, start, axis_name=axis_name)
    # Explicitly sharded rows: run under shard_map over their mesh axis (see kmeans).
    mask = jnp.ones(x.shape[0], bool) if where is None else where
    lab = jnp.full(x.shape[0], -1, jnp.int32) if labels is None else labels
    replicated = jax.sharding.PartitionSpec()
    spec = jax.sharding.PartitionSpec(explicit_axis)

    def sharded(x, w, lab, mask, start, *, axis_name):
        return solve(x, w, None if labels is None else lab, mask, start, axis_name=axis_name)

    return _collectives.map_over_samples(
        sharded, explicit_axis, (x, w, lab, mask), (start,),
        out_specs=GMMResult(*(replicated,) * 4, spec, *(replicated,) * 4),
    )


# --------------------------------------------------------------------------------------------
# Using a fitted model.


def _check_model(x, model, covariance_type: str, name: str = "model"):
    """Validated ``(x, _Model)`` in a common compute dtype; ``model`` is e.g. a GMMResult."""
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    model = _check_model_arrays(model, covariance_type, x.shape[1], name)
    dtype = compute_dtype(jnp.result_type(x.dtype, model.means.dtype))
    return x.astype(dtype), jax.tree.map(lambda a: a.astype(dtype), model)


def _check_model_arrays(model, covariance_type: str, d: int | None, name: str = "model"):
    """``model``'s weights, means and precision factors as a ``_Model`` (no covariances),
    checked against each other, ``covariance_type`` and ``d`` features (the means' when None)."""
    _checks.check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    for field in ("weights", "means", "precisions_cholesky"):
        if not hasattr(model, field):
            raise TypeError(
                f"{name} must have attributes weights, means and precisions_cholesky (e.g. a "
                f"GMMResult), got {type(model).__name__}."
            )
    weights = _checks.as_float_array(model.weights, f"{name}.weights", ndim=1, shape="[k]")
    means = _checks.as_float_array(model.means, f"{name}.means", ndim=2, shape="[k, d]")
    k, d = weights.shape[0], means.shape[1] if d is None else d
    if means.shape != (k, d):
        raise ValueError(
            f"{name}.means must have shape [k, d] = {(k, d)} to match the weights and x, got "
            f"{tuple(means.shape)}."
        )
    factors = _checks.as_float_array(model.precisions_cholesky, f"{name}.precisions_cholesky")
    shape = _covariance_shape(covariance_type, k, d)
    if factors.shape != shape:
        raise ValueError(
            f"{name}.precisions_cholesky must have shape {shape} for "
            f"covariance_type={covariance_type!r}, got {tuple(factors.shape)}."
        )
    return _Model(weights, means, None, factors)


def _centred_log_joint(x, model: _Model, covariance_type: str):
    # Shifting points and means by the mean of the means leaves densities unchanged and keeps the
    # expanded squared distances (diag, spherical) accurate far from the origin.
    shift = jnp.mean(model.means, axis=0)
    model = model._replace(means=model.means - shift[None, :])
    return _log_joint(x - shift[None, :], model, covariance_type)


def gmm_score_samples(
    x: Float[Array, "n d"], model: GMMResult, *, covariance_type: str = "full"
) -> Float[Array, " n"]:
    """Log-density ``log p(x_i) = log Σ_k π_k N(x_i | μ_k, Σ_k)`` of each sample.

    scikit-learn's ``GaussianMixture.score_samples``. Differentiable in ``x`` and in the model's
    arrays.

    Args:
      x: samples, shape [n, d].
      model: a fitted :class:`GMMResult` (only ``weights``, ``means`` and
        ``precisions_cholesky`` are read).
      covariance_type: the type the model was fitted with; it fixes the layout of
        ``precisions_cholesky`` (default ``"full"``, as :func:`gmm`).

    Returns:
      Log-densities, shape [n].

    Raises:
      TypeError: if ``x`` or the model arrays are not floating point, or ``model`` lacks fields.
      ValueError: if shapes do not match each other or ``covariance_type``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_score_samples
      >>> model = GMMResult(jnp.array([1.0]), jnp.zeros((1, 1)), jnp.ones(1), jnp.ones(1),
      ...                   None, None, None, None, None)
      >>> gmm_score_samples(jnp.zeros((1, 1)), model, covariance_type="spherical").round(4).tolist()
      [-0.9189]
    """
    x, model = _check_model(x, model, covariance_type)
    return jax.nn.logsumexp(_centred_log_joint(x, model, covariance_type), axis=1)


def gmm_predict_proba(
    x: Float[Array, "n d"], model: GMMResult, *, covariance_type: str = "full"
) -> Float[Array, "n k"]:
    """Posterior probability of each component for each sample (rows sum to one).

    scikit-learn's ``GaussianMixture.predict_proba``, computed by log-sum-exp normalisation.

    Args:
      x: samples, shape [n, d].
      model: a fitted :class:`GMMResult`.
      covariance_type: the type the model was fitted with (default ``"full"``).

    Returns:
      Responsibilities, shape [n, k].

    Raises:
      TypeError: if ``x`` or the model arrays are not floating point, or ``model`` lacks fields.
      ValueError: if shapes do not match each other or ``covariance_type``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_predict_proba
      >>> model = GMMResult(jnp.array([0.5, 0.5]), jnp.array([[0.0], [4.0]]), jnp.ones(2),
      ...                   jnp.ones(2), None, None, None, None, None)
      >>> gmm_predict_proba(jnp.array([[2.0]]), model, covariance_type="spherical").tolist()
      [[0.5, 0.5]]
    """
    x, model = _check_model(x, model, covariance_type)
    log_joint = _centred_log_joint(x, model, covariance_type)
    return jnp.exp(log_joint - jax.nn.logsumexp(log_joint, axis=1, keepdims=True))


def gmm_predict(
    x: Float[Array, "n d"], model: GMMResult, *, covariance_type: str = "full"
) -> Int[Array, " n"]:
    """Most probable component of each sample (ties to the lowest index).

    Args:
      x: samples, shape [n, d].
      model: a fitted :class:`GMMResult`.
      covariance_type: the type the model was fitted with (default ``"full"``).

    Returns:
      Labels, int32, shape [n].

    Raises:
      TypeError: if ``x`` or the model arrays are not floating point, or ``model`` lacks fields.
      ValueError: if shapes do not match each other or ``covariance_type``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_predict
      >>> model = GMMResult(jnp.array([0.5, 0.5]), jnp.array([[0.0], [4.0]]), jnp.ones(2),
      ...                   jnp.ones(2), None, None, None, None, None)
      >>> gmm_predict(jnp.array([[1.0], [3.5]]), model, covariance_type="spherical").tolist()
      [0, 1]
    """
    x, model = _check_model(x, model, covariance_type)
    return jnp.argmax(_centred_log_joint(x, model, covariance_type), axis=1).astype(jnp.int32)


def gmm_sample(
    model: GMMResult,
    key: KeyArray,
    n: int,
    *,
    covariance_type: str = "full",
) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
    """Draws ``n`` samples from a Gaussian mixture (scikit-learn's ``GaussianMixture.sample``).

    Each sample picks its component ``c ~ Categorical(π)`` and then ``x = μ_c + A_c z`` with
    ``z ~ N(0, I)`` and ``A_c A_cᵀ = Σ_c``; ``A_c = P_c^{-T}`` is read off the precision Cholesky
    factor ``P_c`` (``Σ_c^{-1} = P_c P_cᵀ``) by a triangular solve, so no covariance is factorised
    again. Unlike scikit-learn, whose samples come grouped by component with multinomial
    counts, samples are independent and in random order.

    Args:
      model: a fitted :class:`GMMResult` (only ``weights``, ``means`` and
        ``precisions_cholesky`` are read).
      key: PRNG key.
      n: number of samples, ``>= 1`` (static: changing it recompiles).
      covariance_type: the type the model was fitted with (default ``"full"``).

    Returns:
      ``(x, labels)``: samples [n, d] and the component each was drawn from, int32 [n].

    Raises:
      TypeError: if the model arrays are not floating point, ``model`` lacks fields, or ``n``
        is not an int.
      ValueError: if shapes do not match ``covariance_type``, ``n < 1`` or ``key`` is None.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_sample
      >>> model = GMMResult(jnp.array([0.25, 0.75]), jnp.array([[-5.0], [5.0]]),
      ...                   jnp.ones(2), jnp.full(2, 10.0), None, None, None, None, None)
      >>> x, labels = gmm_sample(model, jax.random.key(0), 4000, covariance_type="spherical")
      >>> x.shape, labels.dtype.name
      ((4000, 1), 'int32')
      >>> bool(abs(float(labels.mean()) - 0.75) < 0.03), round(float(x[labels == 1].mean()))
      (True, 5)
    """
    n = _checks.check_positive_int(n, "n")
    if key is None:
        raise ValueError("key must be a JAX PRNG key (e.g. jax.random.key(0)), got None.")
    model = _check_model_arrays(model, covariance_type, None)
    model = jax.tree.map(lambda a: a.astype(compute_dtype(model.means.dtype)), model)
    k, d = model.means.shape
    pick, noise = jax.random.split(key)
    labels = jax.random.categorical(pick, jnp.log(model.weights), shape=(n,)).astype(jnp.int32)
    z = jax.random.normal(noise, (n, d), model.means.dtype)
    factors = model.precisions_cholesky
    if covariance_type == "full":  # x − μ = P_c^{-T} z, one triangular solve per component
        solve = jax.vmap(lambda p, zi: jax.scipy.linalg.solve_triangular(p.T, zi, lower=True))
        offsets = solve(factors[labels], z)
    elif covariance_type == "tied":
        offsets = jax.scipy.linalg.solve_triangular(factors.T, z.T, lower=True).T
    elif covariance_type == "diag":
        offsets = z / factors[labels]
    else:  # spherical
        offsets = z / factors[labels][:, None]
    return model.means[labels] + offsets, labels


def gmm_num_parameters(k: int, d: int, *, covariance_type: str = "full") -> int:
    """Free parameters of a ``k``-component mixture in ``d`` dimensions (as scikit-learn).

    ``k − 1`` weights, ``k·d`` means, and covariances: ``k·d(d+1)/2`` (full), ``d(d+1)/2``
    (tied), ``k·d`` (diag) or ``k`` (spherical).

    Args:
      k: number of components.
      d: number of features.
      covariance_type: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.

    Returns:
      The count, a Python int.

    Raises:
      TypeError: if ``k`` or ``d`` is not an int.
      ValueError: if ``k`` or ``d`` is below 1 or ``covariance_type`` is unknown.

    Examples:
      >>> from jaxclust.cluster import gmm_num_parameters
      >>> gmm_num_parameters(3, 2, covariance_type="full")
      17
    """
    k = _checks.check_positive_int(k, "k")
    d = _checks.check_positive_int(d, "d")
    _checks.check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
    return cov[covariance_type] + k * d + k - 1


def _criterion(x, model, covariance_type, penalty_fn):
    x_checked, m = _check_model(x, model, covariance_type)
    n = x_checked.shape[0]
    k, d = m.means.shape
    p = gmm_num_parameters(k, d, covariance_type=covariance_type)
    log_lik = jnp.sum(jax.nn.logsumexp(_centred_log_joint(x_checked, m, covariance_type), axis=1))
    return -2.0 * log_lik + penalty_fn(p, n)


def gmm_bic(
    x: Float[Array, "n d"], model: GMMResult, *, covariance_type: str = "full"
) -> Float[Array, ""]:
    """Bayesian information criterion ``−2 Σ_i log p(x_i) + p ln n`` (lower is better).

    ``p`` is :func:`gmm_num_parameters`; the same formula as scikit-learn's
    ``GaussianMixture.bic``.

    Args:
      x: samples, shape [n, d].
      model: a fitted :class:`GMMResult`.
      covariance_type: the type the model was fitted with (default ``"full"``).

    Returns:
      The criterion, scalar.

    Raises:
      TypeError: if ``x`` or the model arrays are not floating point, or ``model`` lacks fields.
      ValueError: if shapes do not match each other or ``covariance_type``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_bic
      >>> model = GMMResult(jnp.array([1.0]), jnp.zeros((1, 1)), jnp.ones(1), jnp.ones(1),
      ...                   None, None, None, None, None)
      >>> round(float(gmm_bic(jnp.zeros((4, 1)), model, covariance_type="spherical")), 4)
      10.1241
    """
    return _criterion(x, model, covariance_type, lambda p, n: p * math.log(n))


def gmm_aic(
    x: Float[Array, "n d"], model: GMMResult, *, covariance_type: str = "full"
) -> Float[Array, ""]:
    """Akaike information criterion ``−2 Σ_i log p(x_i) + 2p`` (lower is better).

    ``p`` is :func:`gmm_num_parameters`; the same formula as scikit-learn's
    ``GaussianMixture.aic``.

    Args:
      x: samples, shape [n, d].
      model: a fitted :class:`GMMResult`.
      covariance_type: the type the model was fitted with (default ``"full"``).

    Returns:
      The criterion, scalar.

    Raises:
      TypeError: if ``x`` or the model arrays are not floating point, or ``model`` lacks fields.
      ValueError: if shapes do not match each other or ``covariance_type``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.cluster import GMMResult, gmm_aic
      >>> model = GMMResult(jnp.array([1.0]), jnp.zeros((1, 1)), jnp.ones(1), jnp.ones(1),
      ...                   None, None, None, None, None)
      >>> round(float(gmm_aic(jnp.zeros((4, 1)), model, covariance_type="spherical")), 4)
      11.3515
    """
    return _criterion(x, model, covariance_type, lambda p, n: 2.0 * p)
