"""Eager argument checks shared by every public function.

Every check here looks only at what is known before tracing (shapes, dtypes, Python values), or at
concrete values when an array is not being traced. Each raises ``ValueError`` or ``TypeError`` with a
message that names the argument, what was received and what was expected. Value-dependent failures of
traced computations (no convergence, empty clusters) are never checked here: solvers report them in
their result fields.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "as_float_array",
    "as_int_array",
    "as_bool_array",
    "check_rank",
    "check_finite",
    "check_same_leading",
    "check_num_clusters",
    "check_positive_int",
    "check_nonnegative_scalar",
    "check_choice",
    "is_concrete",
    "compute_dtype",
]


def _dtype(x) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _kind(x) -> str:
    return _dtype(x).kind


def compute_dtype(dtype) -> np.dtype:
    """The dtype to compute in: float32 for half-precision inputs (fp32 accumulation, METHODS.md
    §0.3), otherwise ``dtype`` itself (float32 and float64 stay as they are)."""
    return jnp.promote_types(dtype, jnp.float32)


def is_concrete(x) -> bool:
    """Whether this process can inspect the values of ``x`` now.

    False for tracers, and for multi-host global arrays that are not fully addressable from this
    process (``np.asarray`` would fail on them); value checks are then skipped, as under ``jit``.
    """
    if isinstance(x, jax.core.Tracer):
        return False
    return bool(getattr(x, "is_fully_addressable", True))


def check_rank(x, name: str, ndim: int, shape: str) -> None:
    """Raises ``ValueError`` unless ``x`` has ``ndim`` dimensions; ``shape`` is e.g. ``"[n, d]"``."""
    if jnp.ndim(x) != ndim:
        raise ValueError(
            f"{name} must have rank {ndim} with shape {shape}, got shape {tuple(jnp.shape(x))}."
        )


def check_finite(x, name: str) -> None:
    """Raises ``ValueError`` if a concrete ``x`` holds NaN or Inf; does nothing under tracing."""
    if not is_concrete(x):
        return
    finite = np.isfinite(np.asarray(x))
    if not finite.all():
        bad = int(finite.size - finite.sum())
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); all values must be finite.")


def as_float_array(x, name: str, ndim: int | None = None, shape: str = "", finite: bool = True):
    """Converts ``x`` to a floating JAX array after checking dtype, rank and (eagerly) finiteness.

    Integer, boolean and complex inputs raise ``TypeError``: silently casting integer features to
    float hides bugs such as passing labels where features were expected.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a floating-point array, got {type(x).__name__}.")
    if not jnp.issubdtype(_dtype(x), jnp.floating):  # bfloat16's NumPy kind is "V", not "f"
        dtype = _dtype(x)
        raise TypeError(
            f"{name} must have a floating-point dtype (float16/bfloat16/float32/float64), got "
            f"{dtype}; cast it first, e.g. x.astype(jnp.float32)."
        )
    if ndim is not None:
        check_rank(x, name, ndim, shape)
    if finite:
        check_finite(x, name)
    return jnp.asarray(x)


def as_int_array(x, name: str, ndim: int | None = 1, shape: str = "[n]"):
    """Converts ``x`` to an integer JAX array after checking dtype and rank."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an integer array, got {type(x).__name__}.")
    kind = _kind(x)
    if kind not in "iu":
        dtype = _dtype(x)
        raise TypeError(f"{name} must have an integer dtype, got {dtype}.")
    if ndim is not None:
        check_rank(x, name, ndim, shape)
    return jnp.asarray(x)


def as_bool_array(x, name: str, *, n: int, other: str):
    """Converts a boolean mask of shape [n] to a JAX array; ``other`` names the [n] array."""
    if _dtype(x).kind != "b":
        raise TypeError(f"{name} must be a boolean mask, got dtype {_dtype(x)}.")
    check_rank(x, name, 1, "[n]")
    if jnp.shape(x)[0] != n:
        raise ValueError(
            f"{name} and {other} must have the same length: {name} has {jnp.shape(x)[0]}, "
            f"{other} has {n}."
        )
    return jnp.asarray(x)


def check_same_leading(arrays: Sequence, names: Sequence[str]) -> None:
    """Raises ``ValueError`` unless all arrays share the same leading dimension."""
    sizes = [jnp.shape(a)[0] for a in arrays]
    if len(set(sizes)) > 1:
        described = ", ".join(f"{n} has {s}" for n, s in zip(names, sizes))
        raise ValueError(f"{' and '.join(names)} must have the same length: {described}.")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Returns ``value`` as a Python int, raising unless it is an integer ``>= minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a Python int, got bool.")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a Python int (static: changing it recompiles), got "
            f"{type(value).__name__}."
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return value


def check_num_clusters(k, n: int, name: str = "k") -> int:
    """Checks ``1 <= k <= n`` for a static number of clusters ``k`` and ``n`` samples."""
    k = check_positive_int(k, name)
    if k > n:
        raise ValueError(f"{name} must be <= the number of samples n={n}, got {name}={k}.")
    return k


def check_nonnegative_scalar(value, name: str) -> None:
    """Raises ``ValueError`` for a concrete negative or non-finite scalar; traced values pass."""
    if not is_concrete(value):
        return
    v = np.asarray(value)
    if v.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {v.shape}.")
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v.item()}.")


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value
