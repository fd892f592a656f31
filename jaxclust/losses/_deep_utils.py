"""Private helpers shared by the deep-clustering losses: masks, global means, scalar checks."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from jaxclust import _checks, _collectives


def check_where(where, n: int, other: str) -> Bool[Array, " n"] | None:
    """Validates an optional ``where`` mask of shape [n] (``other`` names the [n] array)."""
    if where is None:
        return None
    return _checks.as_bool_array(where, "where", n=n, other=other)


def row_weights(where, n: int, dtype) -> Float[Array, " n"]:
    """``where`` as 0/1 weights of ``dtype``; ones when ``where`` is None."""
    if where is None:
        return jnp.ones((n,), dtype)
    return where.astype(dtype)


def global_mean(values: Float[Array, " n"], w: Float[Array, " n"], axis_name: str | None):
    """``Σ_i w_i v_i / Σ_i w_i`` over all shards; 0 (not NaN) when every weight is zero."""
    num = _collectives.psum(jnp.sum(w * values), axis_name)
    den = _collectives.psum(jnp.sum(w), axis_name)
    return num / jnp.maximum(den, 1.0)


compute_dtype = _checks.compute_dtype


def check_positive_scalar(value, name: str, *, allow_zero: bool = False, upper=None) -> None:
    """Raises ``ValueError`` for a concrete non-scalar, non-finite or out-of-range ``value``."""
    if not _checks.is_concrete(value):
        return
    v = np.asarray(value)
    if v.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {v.shape}.")
    low_ok = v >= 0 if allow_zero else v > 0
    if not np.isfinite(v) or not low_ok or (upper is not None and v > upper):
        bound = ">= 0" if allow_zero else "> 0"
        if upper is not None:
            bound += f" and <= {upper}"
        raise ValueError(f"{name} must be a finite number {bound}, got {v.item()}.")


def check_same_shape(a, b, name_a: str, name_b: str) -> None:
    """Raises ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(jnp.shape(a))} and "
            f"{tuple(jnp.shape(b))}."
        )


def entropy(p: Float[Array, " k"]) -> Float[Array, ""]:
    """``H(p) = −Σ p ln p`` with ``0 ln 0 = 0`` and a zero (not NaN) gradient at ``p = 0``."""
    positive = p > 0
    safe = jnp.where(positive, p, 1.0)
    return -jnp.sum(jnp.where(positive, p * jnp.log(safe), 0.0))
