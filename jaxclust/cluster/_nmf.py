"""Non-negative matrix factorisation by Lee–Seung multiplicative updates (METHODS.md §1.10)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust._typing import KeyArray, ScalarLike
from jaxclust.cluster._distances import compute_dtype

_LOSSES = ("frobenius", "kullback-leibler")
_INITS = ("nndsvda", "nndsvd", "random")
#: NNDSVD's threshold below which factor entries are set to 0 (scikit-learn's ``eps``).
NNDSVD_EPS = 1e-6
#: Steps between two evaluations of the stopping rule, as in scikit-learn.
CHECK_EVERY = 10


class NMFResult(NamedTuple):
    """Output of :func:`nmf`.

    Attributes:
      w: non-negative sample factors ``W``, shape [n, r] (rows masked out by ``where`` are 0).
      h: non-negative components ``H``, shape [r, m].
      loss: the divergence ``D(X ‖ WH)`` at the returned factors, scalar: ``½‖X − WH‖²_F`` or the
        generalised KL divergence ``Σ X ln(X / WH) − X + WH`` (``0 ln 0 = 0``).
      reconstruction_error: ``√(2 · loss)``, scikit-learn's ``reconstruction_err_``.
      num_steps: multiplicative updates run (each updates ``W`` then ``H``), int32 scalar.
      converged: True when the stopping rule fired before ``max_steps`` (always False with
        ``tol=0``, which runs exactly ``max_steps`` updates).
    """

    w: Float[Array, "n r"]
    h: Float[Array, "r m"]
    loss: Float[Array, ""]
    reconstruction_error: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Bool[Array, ""]


def _wh_ratio(x, w, h, delta):
    """``X ⊘ (WH + δ)`` for the KL updates."""
    return x / (jnp.matmul(w, h, precision=lax.Precision.HIGHEST) + delta)


def _mm(a, b):
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _update(x, w, h, valid, delta, *, loss, update_h, axis_name):
    """One multiplicative update of ``W`` (local rows) then ``H`` (sums over every shard).

    ``x`` is zero on rows that are not ``valid`` and their ``W`` rows stay zero.
    """
    if loss == "frobenius":
        w = w * _mm(x, h.T) / (_mm(w, _mm(h, h.T)) + delta)
        w = jnp.where(valid, w, 0.0)
        if not update_h:
            return w, h
        wtx = _collectives.psum(_mm(w.T, x), axis_name)
        wtw = _collectives.psum(_mm(w.T, w), axis_name)
        h = h * wtx / (_mm(wtw, h) + delta)
    else:
        h_sum = jnp.sum(h, axis=1)
        w = w * _mm(_wh_ratio(x, w, h, delta), h.T) / jnp.where(h_sum > 0, h_sum, delta)[None, :]
        w = jnp.where(valid, w, 0.0)
        if not update_h:
            return w, h
        num = _collectives.psum(_mm(w.T, _wh_ratio(x, w, h, delta)), axis_name)
        w_sum = _collectives.psum(jnp.sum(w, axis=0), axis_name)
        h = h * num / jnp.where(w_sum > 0, w_sum, delta)[:, None]
    return w, h


def _divergence(x, w, h, valid, *, loss, axis_name):
    wh = _mm(w, h)
    if loss == "frobenius":
        local = 0.5 * jnp.sum(jnp.square(x - wh))
    else:
        pos = x > 0
        log_ratio = jnp.log(jnp.where(pos, x, 1.0) / jnp.where(pos, wh, 1.0))
        local = jnp.sum(jnp.where(pos, x * log_ratio, 0.0) - x + wh)
    return _collectives.psum(local, axis_name)


def _solve(x, mask, w, h, tol, *, loss, max_steps, update_h, axis_name) -> NMFResult:
    dtype = x.dtype
    delta = jnp.asarray(np.finfo(np.float32).eps, dtype)
    mask = mask[:, None]
    # Padding rows: zero data and zero factors contribute nothing to any sum or to the loss.
    x = jnp.where(mask, x, 0.0)
    w = jnp.where(mask, w, 0.0)
    divergence = functools.partial(_divergence, loss=loss, axis_name=axis_name)
    update = functools.partial(_update, loss=loss, update_h=update_h, axis_name=axis_name)
    # scikit-learn's rule: every 10 steps, stop when the root error fell by less than
    # tol × its initial value since the previous check.
    err_init = jnp.sqrt(2.0 * divergence(x, w, h, mask))

    def cond(s):
        step, _, _, _, done = s
        return (step < max_steps) & ~done

    def body(s):
        step, w, h, prev_err, _ = s
        w, h = update(x, w, h, mask, delta)
        step = step + 1
        check = (tol > 0) & (step % CHECK_EVERY == 0)
        err = lax.cond(check, lambda: jnp.sqrt(2.0 * divergence(x, w, h, mask)), lambda: prev_err)
        done = check & ((prev_err - err) < tol * err_init)
        return step, w, h, err, done

    state = (jnp.int32(0), w, h, err_init, jnp.asarray(False))
    step, w, h, _, done = lax.while_loop(cond, body, state)
    final = divergence(x, w, h, mask)
    return NMFResult(
        w=w,
        h=h,
        loss=final,
        reconstruction_error=jnp.sqrt(2.0 * jnp.maximum(final, 0.0)),
        num_steps=step,
        converged=done,
    )


def _nndsvd(x, rank, fill_zeros: bool):
    """NNDSVD (Boutsidis & Gallopoulos 2008): non-negative parts of the top singular triplets.

    Triplet 1 gives ``√σ₁ |u₁|, √σ₁ |v₁|``. For every other triplet the positive parts
    ``(u₊, v₊)`` or the negative parts ``(u₋, v₋)``, whichever has the larger ``‖u‖‖v‖``, are
    normalised and scaled by ``√(σ_j ‖u‖‖v‖)``. The result is invariant to the signs of the
    singular vectors. Entries below 1e-6 become 0; ``fill_zeros`` (NNDSVD-A) sets them to
    ``mean(X)``.
    """
    u, sv, vt = jnp.linalg.svd(x, full_matrices=False)
    u, sv, v = u[:, :rank], sv[:rank], vt[:rank].T  # v: [m, r], one column per triplet

    def parts(a):
        pos, neg = jnp.maximum(a, 0.0), jnp.maximum(-a, 0.0)
        return pos, neg, jnp.linalg.norm(pos, axis=0), jnp.linalg.norm(neg, axis=0)

    u_p, u_n, u_p_nrm, u_n_nrm = parts(u)
    v_p, v_n, v_p_nrm, v_n_nrm = parts(v)
    m_p, m_n = u_p_nrm * v_p_nrm, u_n_nrm * v_n_nrm
    use_p = (m_p > m_n)[None, :]
    safe = lambda a: jnp.where(a > 0, a, 1.0)[None, :]  # noqa: E731
    w = jnp.where(use_p, u_p / safe(u_p_nrm), u_n / safe(u_n_nrm))
    h = jnp.where(use_p, v_p / safe(v_p_nrm), v_n / safe(v_n_nrm))
    # the leading triplet is non-negative up to its sign: √σ₁ |u₁|, √σ₁ |v₁|
    first = (jnp.arange(rank) == 0)[None, :]
    sigma = jnp.where(first[0], sv, sv * jnp.maximum(m_p, m_n))
    scale = jnp.sqrt(sigma)[None, :]
    w = jnp.where(first, jnp.abs(u), w) * scale
    h = jnp.where(first, jnp.abs(v), h) * scale
    w, h = jnp.where(w < NNDSVD_EPS, 0.0, w), jnp.where(h < NNDSVD_EPS, 0.0, h).T
    if fill_zeros:
        avg = jnp.mean(x)
        w, h = jnp.where(w == 0, avg, w), jnp.where(h == 0, avg, h)
    return w, h


def _random_init(x, rank, key, mask, axis_name):
    """scikit-learn's ``init="random"``: ``|N(0, 1)| · √(mean(X) / r)`` for both factors."""
    n, m = x.shape
    total = _collectives.psum(jnp.sum(x * mask[:, None]), axis_name)
    count = _collectives.psum(jnp.sum(mask), axis_name) * m
    scale = jnp.sqrt(total / jnp.maximum(count, 1) / rank)
    key_w, key_h = jax.random.split(key)
    key_w = _collectives.fold_in_shard(key_w, axis_name)
    w = scale * jnp.abs(jax.random.normal(key_w, (n, rank), x.dtype))
    h = scale * jnp.abs(jax.random.normal(key_h, (rank, m), x.dtype))
    # Zeros are absorbing under multiplicative updates: keep every entry strictly positive.
    tiny = jnp.asarray(np.finfo(np.float32).tiny, x.dtype)
    return jnp.maximum(w, tiny), jnp.maximum(h, tiny)


def nmf(
    x: Float[Array, "n m"],
    *,
    rank: int,
    key: KeyArray | None = None,
    init: str | tuple[Float[Array, "n r"], Float[Array, "r m"]] = "nndsvda",
    loss: str = "frobenius",
    max_steps: int = 200,
    tol: ScalarLike = 1e-4,
    update_h: bool = True,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> NMFResult:
    """Non-negative matrix factorisation ``X ≈ WH`` by multiplicative updates (Lee & Seung).

    METHODS.md §1.10. Each step updates ``W`` then ``H`` (scikit-learn's order), with
    ``δ`` = float32 machine epsilon:

    - Frobenius (``loss="frobenius"``, minimises ``½‖X − WH‖²_F``):
      ``W ← W ⊙ (XHᵀ) ⊘ (WHHᵀ + δ)``, then ``H ← H ⊙ (WᵀX) ⊘ (WᵀWH + δ)``;
    - generalised Kullback–Leibler (``loss="kullback-leibler"``):
      ``W ← W ⊙ [(X ⊘ (WH + δ)) Hᵀ] ⊘ (1Hᵀ)``, then ``H ← H ⊙ [Wᵀ(X ⊘ (WH + δ))] ⊘ (Wᵀ1)``
      (a zero row or column sum in a denominator is replaced by ``δ``).

    The objective does not increase from one step to the next (tested). Zeros are absorbing, so
    the initial factors must be strictly positive. The loop is a ``lax.while_loop`` with the
    stopping rule of ``sklearn.decomposition.NMF(solver="mu")``: every 10 steps the root error
    ``√(2D)`` is recomputed, and the loop stops when it fell by less than ``tol`` times its
    initial value since the previous check; ``tol=0`` runs exactly ``max_steps`` steps. The
    result is not differentiable (a ``while_loop``).

    With ``init`` given and ``tol=0``, the factors equal scikit-learn's
    ``NMF(solver="mu", init="custom", max_iter=max_steps, tol=0)`` from the same ``W₀, H₀`` to
    float32 rounding (scikit-learn guards zero denominators by replacing them with machine
    epsilon rather than adding ``δ``; the difference is of the order of ``δ``).

    Args:
      x: non-negative data, shape [n, m] (e.g. n documents × m terms, n images × m pixels).
      rank: number of components ``r`` (static).
      key: PRNG key, needed for ``init="random"`` only.
      init: the start (static choice):

        - ``"nndsvda"`` (default, scikit-learn's default when ``r <= min(n, m)``): NNDSVD
          (Boutsidis & Gallopoulos), deterministic, from the top ``r`` singular triplets, with
          its zero entries set to ``mean(X)``. Needs ``r <= min(n, m)``.
        - ``"nndsvd"``: the same with the zeros kept (they stay 0: zeros are absorbing).
        - ``"random"``: scikit-learn's scheme ``|N(0, 1)| · √(mean(X)/r)`` with ``key``
          (entries kept strictly positive).
        - ``(W₀ [n, r], H₀ [r, m])``: explicit factors, strictly positive (checked when
          concrete); under ``axis_name``, ``W₀`` holds this shard's rows and ``H₀`` is
          replicated.

        The NNDSVD starts take a full SVD of ``x``, so they are not available with
        ``axis_name`` or on sharded rows (pass ``"random"`` or explicit factors there), nor
        with ``where``.
      loss: ``"frobenius"`` (default) or ``"kullback-leibler"`` (static).
      max_steps: maximum number of updates (static), default 200 as scikit-learn's ``max_iter``.
      tol: relative tolerance of the stopping rule above, default 1e-4 as scikit-learn's; 0
        disables it.
      update_h: if False (static), ``H`` stays at ``init[1]`` and only ``W`` is fitted: the
        non-negative least-squares (or KL) encoding of new rows on learnt components, which is
        scikit-learn's ``NMF.transform``. Needs ``init``.
      where: validity mask, shape [n]; rows where it is False do not contribute to ``H`` or the
        loss and get zero ``W`` rows, so ``jax.vmap`` factorises padded sets.
      axis_name: set only inside ``jax.shard_map`` with the rows of ``x`` split over this mesh
        axis; then ``n`` is the per-shard count, ``W`` stays sharded, the sums behind ``H``
        (``WᵀX``, ``WᵀW``, ``Wᵀ1``) and the loss are global, and ``H`` is replicated. Under
        plain ``jax.jit`` on sharded arrays leave it None: XLA inserts the collectives (arrays
        sharded over an ``AxisType.Explicit`` axis run this function under ``jax.shard_map``).

    Returns:
      An :class:`NMFResult`.

    Raises:
      TypeError: if ``x`` or the factors are not floating point, or ``where`` is not boolean.
      ValueError: if ``x`` is not [n, m], holds NaN/Inf or negative values, the factors have the
        wrong shapes or non-positive entries, ``rank`` is not positive or exceeds ``min(n, m)``
        for the NNDSVD starts, ``init`` or ``loss`` is unknown, or ``init="random"`` has no
        ``key``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import nmf
      >>> w = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> h = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
      >>> result = nmf(w @ h, rank=2, max_steps=2000, tol=0.0)
      >>> bool(result.reconstruction_error < 1e-2)
      True

    References:
      D. Lee and H. S. Seung, "Algorithms for Non-negative Matrix Factorization", NeurIPS 2000
      (published 2001).
      C. Févotte and J. Idier, "Algorithms for nonnegative matrix factorization with the
      β-divergence", Neural Computation 23(9), 2011.
      C. Boutsidis and E. Gallopoulos, "SVD based initialization: A head start for nonnegative
      matrix factorization", Pattern Recognition 41(4), 2008 (NNDSVD).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, m]")
    rank = _checks.check_positive_int(rank, "rank")
    loss = _checks.check_choice(loss, "loss", _LOSSES)
    max_steps = _checks.check_positive_int(max_steps, "max_steps", minimum=0)
    _checks.check_nonnegative_scalar(tol, "tol")
    if _checks.is_concrete(x) and x.size and float(jnp.min(x)) < 0:
        raise ValueError(f"x must be non-negative, got a minimum of {float(jnp.min(x))}.")
    x = x.astype(compute_dtype(x.dtype))
    n, m = x.shape
    mask = (
        jnp.ones(n, bool) if where is None
        else _checks.as_bool_array(where, "where", n=n, other="x")
    )
    if isinstance(init, str):
        init = _checks.check_choice(init, "init", _INITS + ("a pair (W0, H0)",))
        if init == "random" and key is None:
            raise ValueError("init='random' needs key; pass e.g. key=jax.random.key(0).")
        if init != "random":
            if rank > min(n, m):
                raise ValueError(
                    f"init={init!r} needs rank <= min(n, m) = {min(n, m)}, got rank={rank}; use "
                    "init='random'."
                )
            if where is not None or axis_name is not None or _collectives.explicit_sample_axis(x):
                raise ValueError(
                    f"init={init!r} needs the whole unmasked x on one device (a full SVD); with "
                    "where, axis_name or sharded rows pass init='random' or (W0, H0)."
                )
    else:
        if not isinstance(init, (tuple, list)) or len(init) != 2:
            raise TypeError(
                f"init must be one of {_INITS} or a pair (W0, H0) of arrays, got "
                f"{type(init).__name__}."
            )
        w0 = _checks.as_float_array(init[0], "init[0] (W0)", ndim=2, shape="[n, r]")
        h0 = _checks.as_float_array(init[1], "init[1] (H0)", ndim=2, shape="[r, m]")
        if w0.shape != (n, rank) or h0.shape != (rank, m):
            raise ValueError(
                f"init must be (W0 [n, r], H0 [r, m]) = ([{n}, {rank}], [{rank}, {m}]), got "
                f"{tuple(w0.shape)} and {tuple(h0.shape)}."
            )
        for name, a in (("init[0] (W0)", w0), ("init[1] (H0)", h0)):
            if _checks.is_concrete(a) and a.size and float(jnp.min(a)) <= 0:
                raise ValueError(
                    f"{name} must be strictly positive (zeros are absorbing under multiplicative "
                    f"updates), got a minimum of {float(jnp.min(a))}."
                )
        w0, h0 = w0.astype(x.dtype), h0.astype(x.dtype)
    if not update_h and isinstance(init, str):
        raise ValueError("update_h=False needs init=(W0, H0): H0 holds the fixed components.")
    solve = functools.partial(_run, rank=rank, loss=loss, max_steps=max_steps,
                              update_h=bool(update_h))
    tol = jnp.asarray(tol, x.dtype)
    start = init if isinstance(init, str) else (w0, h0)
    axis = _collectives.explicit_sample_axis(x) if axis_name is None else None
    if axis is None:
        return solve(x, mask, start, tol, key=key, axis_name=axis_name)
    rows, replicated = jax.sharding.PartitionSpec(axis), jax.sharding.PartitionSpec()
    out = NMFResult(rows, replicated, replicated, replicated, replicated, replicated)
    if isinstance(init, str):  # "random": the NNDSVD starts were refused above
        return _collectives.map_over_samples(
            lambda x, mask, key, tol, axis_name: solve(x, mask, "random", tol, key=key,
                                                       axis_name=axis_name),
            axis, (x, mask), (key, tol), out_specs=out,
        )
    return _collectives.map_over_samples(
        lambda x, mask, w0, h0, tol, axis_name: solve(x, mask, (w0, h0), tol, key=None,
                                                      axis_name=axis_name),
        axis, (x, mask, start[0]), (start[1], tol), out_specs=out,
    )


def _run(x, mask, start, tol, *, key, rank, loss, max_steps, update_h, axis_name) -> NMFResult:
    if isinstance(start, tuple):
        w, h = start
    elif start == "random":
        w, h = _random_init(x, rank, key, mask.astype(x.dtype), axis_name)
    else:
        w, h = _nndsvd(x, rank, fill_zeros=start == "nndsvda")
    return _solve(x, mask, w, h, tol, loss=loss, max_steps=max_steps, update_h=update_h,
                  axis_name=axis_name)


__all__ = ["NMFResult", "nmf"]
