"""MUVERA fixed-dimensional encodings: one vector per multi-vector set whose inner products
approximate Chamfer (MaxSim) similarity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxclust import _checks
from jaxclust._typing import KeyArray

__all__ = ["fde_query", "fde_document", "fde_dimension"]

_PROJECTIONS = ("dense", "sparse")


def fde_dimension(
    d: int, *, num_simhash: int = 4, num_repetitions: int = 1, dim_proj: int | None = None,
    final_dim: int | None = None,
) -> int:
    """Length of the encodings: ``final_dim`` if set, else ``R · 2^{k_sim} · d_proj``.

    Examples:
      >>> from jaxclust.multivector import fde_dimension
      >>> fde_dimension(128, num_simhash=4, num_repetitions=2, dim_proj=16)
      512
    """
    if final_dim is not None:
        return final_dim
    return num_repetitions * 2**num_simhash * (d if dim_proj is None else dim_proj)


def _projection(key, d, dim_proj, kind, dtype):
    """``ψ`` as a [d, d_proj] matrix: paper ``d_proj^{-1/2} S`` with S i.i.d. ±1, or the
    reference's sparse sign map (each input coordinate to one random output coordinate)."""
    if dim_proj is None:
        return None
    k_sign, k_pos = jax.random.split(key)
    if kind == "dense":
        return jax.random.rademacher(k_sign, (d, dim_proj), dtype) / jnp.sqrt(jnp.asarray(dim_proj, dtype))
    pos = jax.random.randint(k_pos, (d,), 0, dim_proj)
    sign = jax.random.rademacher(k_sign, (d,), dtype)
    return jax.nn.one_hot(pos, dim_proj, dtype=dtype) * sign[:, None]


def _one_repetition(x, mask, key, num_simhash, dim_proj, projection, is_query, fill_empty):
    t, d = x.shape
    k_hash, k_proj = jax.random.split(key)
    buckets = 2**num_simhash
    gauss = jax.random.normal(k_hash, (d, num_simhash), x.dtype)
    bits = (x @ gauss > 0).astype(jnp.int32)  # [t, k_sim]
    # Bucket index: bit i has weight 2^i (any fixed bijection gives the same FDE up to a block
    # permutation; the reference uses a Gray code).
    code = jnp.sum(bits * (2 ** jnp.arange(num_simhash))[None, :], axis=1)
    proj = _projection(k_proj, d, dim_proj, projection, x.dtype)
    psi = x if proj is None else x @ proj
    w = mask.astype(x.dtype)
    sums = jax.ops.segment_sum(w[:, None] * psi, code, buckets)
    if is_query:  # a sum; empty blocks stay 0
        return sums.reshape(-1)
    counts = jax.ops.segment_sum(w, code, buckets)
    blocks = sums / jnp.where(counts > 0, counts, 1.0)[:, None]
    if fill_empty:
        # Empty block k takes ψ(p*), p* the valid token whose sign bits are nearest to k's pattern
        # in Hamming distance (first such token on ties).
        pattern = (jnp.arange(buckets)[:, None] >> jnp.arange(num_simhash)[None, :]) & 1
        hamming = jnp.sum(pattern[:, None, :] != bits[None, :, :], axis=2)  # [2^k, t]
        hamming = jnp.where(mask[None, :], hamming, num_simhash + 1)
        nearest = jnp.argmin(hamming, axis=1)
        fill = jnp.where(jnp.any(mask), 1.0, 0.0).astype(x.dtype) * psi[nearest]
        blocks = jnp.where((counts > 0)[:, None], blocks, fill)
    return blocks.reshape(-1)


def _fde(tokens, mask, key, num_simhash, num_repetitions, dim_proj, projection, final_dim,
         is_query, fill_empty):
    tokens = _checks.as_float_array(tokens, "tokens", ndim=2, shape="[t, d]")
    t, d = tokens.shape
    if mask is None:
        mask = jnp.ones(t, bool)
    else:
        mask = _checks.as_bool_array(mask, "mask", n=t, other="tokens")
    num_simhash = _checks.check_positive_int(num_simhash, "num_simhash", minimum=0)
    num_repetitions = _checks.check_positive_int(num_repetitions, "num_repetitions")
    if dim_proj is not None:
        dim_proj = _checks.check_positive_int(dim_proj, "dim_proj")
    if final_dim is not None:
        final_dim = _checks.check_positive_int(final_dim, "final_dim")
    _checks.check_choice(projection, "projection", _PROJECTIONS)
    if key is None:
        raise ValueError("key is required: queries and documents must share the same key.")
    x = tokens.astype(jnp.promote_types(tokens.dtype, jnp.float32))
    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(num_repetitions))
    reps = jax.vmap(
        lambda k: _one_repetition(x, mask, k, num_simhash, dim_proj, projection, is_query, fill_empty)
    )(keys)
    out = reps.reshape(-1)
    if final_dim is None:
        return out
    # Count-sketch: each coordinate is added, with a random sign, to one random output coordinate.
    k_pos, k_sign = jax.random.split(jax.random.fold_in(key, num_repetitions))
    pos = jax.random.randint(k_pos, out.shape, 0, final_dim)
    sign = jax.random.rademacher(k_sign, out.shape, out.dtype)
    return jax.ops.segment_sum(sign * out, pos, final_dim)


_ARGS_DOC = """
    Args:
      tokens: token embeddings of one set, shape [t, d].
      mask: valid tokens, boolean [t]; None means all valid. Padded tokens are excluded from the
        sums, means and the fill search.
      key: PRNG key of the encoding; queries and documents **must** use the same key (it fixes
        the SimHash Gaussians, the projections and the final sketch of every repetition).
      num_simhash: ``k_sim``, sign bits per partition: ``2^{k_sim}`` blocks (static).
      num_repetitions: ``R``, independent partitions concatenated (static).
      dim_proj: ``d_proj``, inner projection size; None keeps the identity (static).
      projection: ``"dense"`` (paper: ``d_proj^{-1/2} S``, S i.i.d. ±1) or ``"sparse"`` (the
        reference's one ±1 per input coordinate, unscaled) (static).
      final_dim: optional count-sketch to this length (static).
"""


def fde_query(
    tokens: Float[Array, "t d"],
    mask: Bool[Array, " t"] | None = None,
    *,
    key: KeyArray,
    num_simhash: int = 4,
    num_repetitions: int = 1,
    dim_proj: int | None = None,
    projection: str = "dense",
    final_dim: int | None = None,
) -> Float[Array, " f"]:
    """MUVERA query encoding ``F_q(Q)``: per SimHash block, the **sum** of the projected tokens.

    METHODS.md §5.4: for each repetition a Gaussian ``G ∈ R^{d×k_sim}`` splits space into
    ``2^{k_sim}`` blocks by the sign bits of ``xᵀG``; block ``k`` of the query encoding is
    ``Σ_{q: φ(q)=k} ψ(q)`` (empty blocks stay 0). ``⟨fde_query(Q), fde_document(D)⟩``
    approximates ``Chamfer(Q, D)`` = :func:`maxsim`. Use ``jax.vmap`` over sets.
    {args}
    Returns:
      The encoding, shape [``fde_dimension(...)``].

    Raises:
      TypeError / ValueError: on a non-float or badly shaped input, a bad mask, negative sizes,
        an unknown projection or a missing key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.multivector import fde_document, fde_query
      >>> key = jax.random.key(0)
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> d = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> fq = fde_query(q, key=key, num_simhash=0)
      >>> fd = fde_document(d, key=key, num_simhash=0)
      >>> fq.shape, round(float(fq @ fd), 4)  # k_sim = 0: <Σ q, mean d>
      ((2,), 1.1333)

    References:
      Dhulipala, Hadian, Jayaram, Lee & Mirrokni, "MUVERA: Multi-Vector Retrieval via Fixed
      Dimensional Encodings", NeurIPS 2024, arXiv:2405.19504 (https://arxiv.org/abs/2405.19504).
    """
    return _fde(tokens, mask, key, num_simhash, num_repetitions, dim_proj, projection, final_dim,
                True, False)


def fde_document(
    tokens: Float[Array, "t d"],
    mask: Bool[Array, " t"] | None = None,
    *,
    key: KeyArray,
    num_simhash: int = 4,
    num_repetitions: int = 1,
    dim_proj: int | None = None,
    projection: str = "dense",
    final_dim: int | None = None,
    fill_empty: bool = True,
) -> Float[Array, " f"]:
    """MUVERA document encoding ``F_d(D)``: per SimHash block, the **mean** of the projected tokens.

    As :func:`fde_query`, but each block holds the mean of its tokens' projections, and with
    ``fill_empty`` an empty block takes ``ψ(p*)`` for the valid token ``p*`` whose sign bits are
    nearest (Hamming) to the block's pattern, as in the reference implementation.
    {args}      fill_empty: fill empty blocks (static).

    Returns:
      The encoding, shape [``fde_dimension(...)``].

    Raises:
      TypeError / ValueError: as :func:`fde_query`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.multivector import fde_document
      >>> d = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> fde_document(d, key=jax.random.key(0), num_simhash=2).shape
      (8,)

    References:
      Dhulipala et al., arXiv:2405.19504 (https://arxiv.org/abs/2405.19504).
    """
    return _fde(tokens, mask, key, num_simhash, num_repetitions, dim_proj, projection, final_dim,
                False, fill_empty)


fde_query.__doc__ = fde_query.__doc__.replace("{args}", _ARGS_DOC)
fde_document.__doc__ = fde_document.__doc__.replace("{args}", _ARGS_DOC)
