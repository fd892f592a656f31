"""Matryoshka representation learning: one loss summed over nested prefixes of the features."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence

import jax.numpy as jnp


def matryoshka(
    loss_fn: Callable,
    dims: Sequence[int],
    weights: Sequence[float] | None = None,
    *,
    argnums: int | Sequence[int] = 0,
) -> Callable:
    r"""Wraps ``loss_fn`` so that it is summed over nested prefixes of the feature dimension.

    The returned function computes ``L = Σ_{m∈M} c_m · loss_fn(z[..., :m], ...)`` (METHODS.md
    §3.21): the positional arguments named by ``argnums`` are cut to their first ``m`` features
    (last axis), every other argument is passed through unchanged, and the results are added
    with weights ``c_m`` (``1`` by default, as in the paper). Losses that L2-normalise their
    inputs (``nt_xent``, ``supcon``, ...) re-normalise each prefix, which is what contrastive
    Matryoshka training does. For classification with a head per prefix (MRL) or a tied head
    (MRL-E, ``W^{(m)} = W[:m]``), cut the head's weights too by listing them in ``argnums``.

    ``loss_fn`` must return an array (per-example ``[n]`` and scalar losses both work); wrap
    losses that return a result tuple, e.g. ``lambda z, y: supcon(z, y).loss``.

    Args:
      loss_fn: the loss, called as ``loss_fn(*args, **kwargs)``.
      dims: the nested sizes ``M``, strictly increasing positive ints, e.g. ``(8, 16, ..., d)``
        (the paper doubles from 8 up to ``d``). Each must be ``≤`` the feature dimension of the
        sliced arguments (checked at call time).
      weights: the ``c_m``, one per entry of ``dims``; None means all 1.
      argnums: index or indices of the positional arguments to cut (default 0).

    Returns:
      A function with ``loss_fn``'s signature returning the weighted sum over prefixes.

    Raises:
      TypeError: non-callable ``loss_fn`` or non-integer dims.
      ValueError: empty, non-increasing or non-positive ``dims``; ``weights`` of the wrong
        length; (at call time) a prefix longer than the features, or an ``argnums`` index out of
        range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import matryoshka
      >>> sq_norm = lambda z: jnp.sum(z ** 2, axis=-1)
      >>> matryoshka(sq_norm, dims=(1, 2, 4))(jnp.ones((1, 4)))  # 1 + 2 + 4
      Array([7.], dtype=float...)

    References:
      Kusupati et al., "Matryoshka Representation Learning", NeurIPS 2022,
      https://arxiv.org/abs/2205.13147.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}.")
    try:
        dims = tuple(operator.index(m) for m in dims)
    except TypeError:
        raise TypeError(f"dims must be a sequence of Python ints, got {dims!r}.") from None
    if not dims or dims[0] < 1 or any(a >= b for a, b in zip(dims, dims[1:])):
        raise ValueError(f"dims must be non-empty, positive and strictly increasing, got {dims}.")
    if weights is None:
        weights = (1.0,) * len(dims)
    weights = tuple(weights)
    if len(weights) != len(dims):
        raise ValueError(
            f"weights must have one entry per dim: got {len(weights)} weights for {len(dims)} dims."
        )
    cut = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(loss_fn)
    def wrapped(*args, **kwargs):
        for i in cut:
            if not -len(args) <= i < len(args):
                raise ValueError(
                    f"argnums entry {i} is out of range for {len(args)} positional arguments."
                )
            width = jnp.shape(args[i])[-1]
            if dims[-1] > width:
                raise ValueError(
                    f"dims must be <= the feature dimension of argument {i}, got dims[-1]="
                    f"{dims[-1]} for an array of shape {tuple(jnp.shape(args[i]))}."
                )
        total = None
        for m, c in zip(dims, weights):
            sliced = [a[..., :m] if i in cut or i - len(args) in cut else a
                      for i, a in enumerate(args)]
            value = c * loss_fn(*sliced, **kwargs)
            total = value if total is None else total + value
        return total

    return wrapped
