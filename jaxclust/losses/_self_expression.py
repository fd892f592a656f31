"""Self-expression loss of deep subspace clustering (DSC-Net), with a zero-diagonal coefficient matrix."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from jaxclust import _checks
from jaxclust._typing import ScalarLike

__all__ = ["SelfExpressionResult", "self_expression_loss", "zero_diagonal", "self_expressive_affinity"]

_NORMS = ("l1", "l2")


class SelfExpressionResult(NamedTuple):
    """Output of :func:`self_expression_loss`.

    Attributes:
      loss: ``reconstruction + λ₁ regularisation + (λ₂/2) self_expression``, scalar.
      self_expression: ``‖Z − C Z‖²_F`` with the diagonal of ``C`` zeroed, scalar.
      regularisation: ``‖C‖₁`` (``norm="l1"``) or ``‖C‖²_F`` (``norm="l2"``), zero diagonal, scalar.
      reconstruction: ``½‖X − X̂‖²_F`` when ``x`` and ``x_hat`` are given, else 0, scalar.
    """

    loss: Float[Array, ""]
    self_expression: Float[Array, ""]
    regularisation: Float[Array, ""]
    reconstruction: Float[Array, ""]


def zero_diagonal(coefficients: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """``C = C_free ⊙ (11ᵀ − I)``: the parameterisation that enforces ``diag(C) = 0``.

    The gradient with respect to the diagonal of ``C_free`` is exactly zero, so the diagonal
    never moves and never matters.

    Args:
      coefficients: free coefficients ``C_free``, shape [n, n].

    Returns:
      ``C_free`` with its diagonal set to zero, shape [n, n].

    Raises:
      ValueError: if ``coefficients`` is not square.
      TypeError: if it has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import zero_diagonal
      >>> zero_diagonal(jnp.ones((2, 2))).tolist()
      [[0.0, 1.0], [1.0, 0.0]]
    """
    c = _check_square(coefficients)
    return _zero_diag(c)


def _check_square(c, name="coefficients"):
    c = _checks.as_float_array(c, name, ndim=2, shape="[n, n]")
    if c.shape[0] != c.shape[1]:
        raise ValueError(f"{name} must be square with shape [n, n], got shape {tuple(c.shape)}.")
    return c


def _zero_diag(c):
    n = c.shape[0]
    return c * (1.0 - jnp.eye(n, dtype=c.dtype))


def self_expressive_affinity(coefficients: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """Symmetric affinity ``W = |C| + |C|ᵀ`` (diagonal zeroed) for spectral clustering.

    Args:
      coefficients: self-expression coefficients ``C``, shape [n, n].

    Returns:
      ``W`` [n, n], symmetric, non-negative, zero diagonal.

    Raises:
      ValueError: if ``coefficients`` is not square.
      TypeError: if it has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import self_expressive_affinity
      >>> self_expressive_affinity(jnp.array([[5.0, -1.0], [0.5, 0.0]])).tolist()
      [[0.0, 1.5], [1.5, 0.0]]
    """
    c = jnp.abs(_zero_diag(_check_square(coefficients)))
    return c + c.T


def self_expression_loss(
    z: Float[Array, "n d"],
    coefficients: Float[Array, "n n"],
    x: Float[Array, "n e"] | None = None,
    x_hat: Float[Array, "n e"] | None = None,
    *,
    lambda1: ScalarLike = 1.0,
    lambda2: ScalarLike = 1.0,
    norm: str = "l2",
) -> SelfExpressionResult:
    """DSC-Net loss ``½‖X − X̂‖²_F + λ₁‖C‖_p + (λ₂/2)‖Z − CZ‖²_F`` subject to ``diag(C) = 0``.

    **Convention.** jaxclust puts samples in rows: ``Z`` is [n, d] and sample ``i`` is expressed
    as ``z_i ≈ Σ_j C_ij z_j``, i.e. ``Z ≈ C Z``. DSC-Net (and METHODS.md §1.9/§3.19) put samples
    in columns, ``Z_col ≈ Z_col C_col``, so ``C = C_colᵀ``; the affinity ``|C| + |C|ᵀ`` is the
    same either way. The diagonal of ``coefficients`` is ignored (zeroed with
    :func:`zero_diagonal` inside the loss, so its gradient is exactly zero): pass the free
    parameter directly. ``norm="l2"`` uses the squared Frobenius norm ``‖C‖²_F``; ``"l1"`` the
    entry-wise ``ℓ₁`` norm (subgradient 0 at 0). The decoder output ``x_hat = dec(C Z)`` is the
    caller's; when ``x`` and ``x_hat`` are given the reconstruction term is added. ``C`` couples
    all ``n`` samples, so training is full-batch and there is no ``axis_name``. Batch-coupled:
    returns scalars. Computation in float32 at least.

    Args:
      z: encoder features, rows are samples, shape [n, d].
      coefficients: self-expression coefficients ``C`` (free parameter), shape [n, n].
      x: inputs ``X`` for the reconstruction term, shape [n, e], or None.
      x_hat: decoder reconstructions ``dec(CZ)``, shape [n, e], or None (both or neither).
      lambda1: weight of ``‖C‖_p`` (DSC-Net: 1.0).
      lambda2: weight of the self-expression term (DSC-Net uses dataset-specific values).
      norm: ``"l2"`` (squared Frobenius, DSC-Net-L2) or ``"l1"`` (DSC-Net-L1).

    Returns:
      A :class:`SelfExpressionResult` ``(loss, self_expression, regularisation, reconstruction)``.

    Raises:
      ValueError: if ``coefficients`` is not [n, n] for ``n`` rows of ``z``, only one of ``x``
        and ``x_hat`` is given or their shapes differ, ``norm`` is unknown, an input holds
        NaN/Inf or a weight is negative (when concrete).
      TypeError: if an input has a non-floating dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import self_expression_loss
      >>> z = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
      >>> c = jnp.array([[0.0, 0.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> res = self_expression_loss(z, c, lambda1=0.0)
      >>> print(float(res.self_expression), float(res.loss))  # only row 3 is unexplained
      1.0 0.5

    References:
      Ji et al., "Deep Subspace Clustering Networks", NeurIPS 2017,
      https://arxiv.org/abs/1709.02508.
      Elhamifar & Vidal, "Sparse Subspace Clustering: Algorithm, Theory, and Applications",
      IEEE TPAMI 2013, https://arxiv.org/abs/1203.1005.
    """
    z = _checks.as_float_array(z, "z", ndim=2, shape="[n, d]")
    c = _check_square(coefficients)
    n = z.shape[0]
    if c.shape[0] != n:
        raise ValueError(
            f"coefficients must have shape [n, n] with n={n} to match z, got shape {tuple(c.shape)}."
        )
    _checks.check_choice(norm, "norm", _NORMS)
    _checks.check_nonnegative_scalar(lambda1, "lambda1")
    _checks.check_nonnegative_scalar(lambda2, "lambda2")
    if (x is None) != (x_hat is None):
        raise ValueError("x and x_hat must be given together (both or neither).")
    dtype = jnp.promote_types(jnp.promote_types(z.dtype, c.dtype), jnp.float32)
    z = z.astype(dtype)
    c = _zero_diag(c.astype(dtype))
    residual = z - jnp.matmul(c, z, precision=lax.Precision.HIGHEST)
    self_expression = jnp.sum(residual * residual)
    regularisation = jnp.sum(jnp.abs(c)) if norm == "l1" else jnp.sum(c * c)
    reconstruction = jnp.zeros((), dtype)
    if x is not None:
        x = _checks.as_float_array(x, "x", ndim=2, shape="[n, e]")
        x_hat = _checks.as_float_array(x_hat, "x_hat", ndim=2, shape="[n, e]")
        if x.shape != x_hat.shape or x.shape[0] != n:
            raise ValueError(
                f"x and x_hat must both have shape [n, e] with n={n}, got {tuple(x.shape)} and "
                f"{tuple(x_hat.shape)}."
            )
        diff = x.astype(dtype) - x_hat.astype(dtype)
        reconstruction = 0.5 * jnp.sum(diff * diff)
    loss = reconstruction + lambda1 * regularisation + 0.5 * lambda2 * self_expression
    return SelfExpressionResult(loss, self_expression, regularisation, reconstruction)
