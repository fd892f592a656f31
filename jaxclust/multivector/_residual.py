"""ColBERTv2 residual compression: a centroid id plus a few bits per dimension of the residual."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, UInt8

from jaxclust import _checks
from jaxclust._typing import KeyArray
from jaxclust.cluster._kmeans import kmeans

__all__ = ["Codec", "Compressed", "fit_codec", "compress", "decompress", "bytes_per_vector"]

_BITS = (1, 2, 4, 8)


class Codec(NamedTuple):
    """A residual codec built by :func:`fit_codec` (a pytree: pass it through ``jax.jit``).

    Attributes:
      centroids: unit-norm centroids, shape [k, d].
      bucket_cutoffs: ``2^b − 1`` increasing residual thresholds shared by every dimension.
      bucket_weights: ``2^b`` reconstruction values, one per bucket.

    ``bits`` (``b``) is read from the shape of ``bucket_weights``, so it stays static under jit.
    """

    centroids: Float[Array, "k d"]
    bucket_cutoffs: Float[Array, " c"]
    bucket_weights: Float[Array, " w"]

    @property
    def bits(self) -> int:
        return int(self.bucket_weights.shape[0]).bit_length() - 1


class Compressed(NamedTuple):
    """Compressed vectors from :func:`compress`.

    Attributes:
      codes: index of each vector's centroid, int32 [n].
      residuals: bucket indices packed ``8 // bits`` per byte, uint8 [n, d · bits / 8]; the first
        dimension of each group sits in the most significant bits.
    """

    codes: Int[Array, " n"]
    residuals: UInt8[Array, "n p"]


def _normalize(x):
    norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.where(norm > 0, norm, 1.0)


def _check_bits(bits) -> int:
    bits = _checks.check_positive_int(bits, "bits")
    if bits not in _BITS:
        raise ValueError(f"bits must be one of {list(_BITS)}, got {bits}.")
    return bits


def default_num_centroids(n: int) -> int:
    """ColBERTv2's codebook size ``2^⌊log₂(16 √n)⌋`` for ``n`` token embeddings."""
    return 2 ** int(math.floor(math.log2(16 * math.sqrt(n))))


def _assign(centroids, x):
    return jnp.argmax(x @ centroids.T, axis=1).astype(jnp.int32)


def fit_codec(
    embeddings: Float[Array, "n d"],
    *,
    bits: int = 2,
    key: KeyArray,
    num_centroids: int | None = None,
    kmeans_steps: int = 4,
    heldout: Float[Array, "h d"] | None = None,
    heldout_fraction: float = 0.05,
) -> Codec:
    """Build a ColBERTv2 residual codec from a sample of token embeddings (METHODS.md §5.3).

    1. k-means (:func:`jaxclust.cluster.kmeans`, k-means++ seeding, ``kmeans_steps`` Lloyd steps
       as in the reference) on the embeddings; the centroids are L2-normalised.
    2. Each held-out vector ``v`` is assigned to ``argmax_c ⟨C_c, v⟩`` and its residual ``r = v −
       C_{t(v)}`` is taken.
    3. The residual entries of all dimensions are pooled: the ``2^b − 1`` bucket cutoffs are the
       quantiles at ``j / 2^b`` (``j = 1 .. 2^b − 1``) and the ``2^b`` bucket weights those at
       ``(j + ½) / 2^b`` (``j = 0 .. 2^b − 1``), with linear interpolation (``torch.quantile``'s
       default).

    Args:
      embeddings: token embeddings [n, d], usually unit-norm, ``d · bits`` a multiple of 8.
      bits: bits per dimension, ``b ∈ {1, 2, 4, 8}`` (static); ColBERTv2 uses 1 or 2.
      key: PRNG key for the k-means seeding and the held-out split.
      num_centroids: codebook size (static); default ``2^⌊log₂(16 √n)⌋`` capped at ``n``.
      kmeans_steps: Lloyd iterations (static).
      heldout: vectors used for the bucket statistics; when None a random ``heldout_fraction``
        of ``embeddings`` (at least one row) is held out and k-means uses the rest.
      heldout_fraction: see ``heldout`` (static).

    Returns:
      A :class:`Codec`.

    Raises:
      TypeError: if ``embeddings`` is not floating point.
      ValueError: on wrong shapes, NaN/Inf, unsupported ``bits``, ``d · bits`` not a multiple of
        8, or a bad ``num_centroids``.

    Examples:
      >>> import jax
      >>> from jaxclust.multivector import fit_codec
      >>> x = jax.random.normal(jax.random.key(0), (200, 16))
      >>> codec = fit_codec(x, bits=2, key=jax.random.key(1), num_centroids=8)
      >>> codec.centroids.shape, codec.bucket_cutoffs.shape, codec.bits
      ((8, 16), (3,), 2)

    References:
      Santhanam et al., "ColBERTv2: Effective and Efficient Retrieval via Lightweight Late
      Interaction", NAACL 2022, arXiv:2112.01488 (https://arxiv.org/abs/2112.01488).
    """
    embeddings = _checks.as_float_array(embeddings, "embeddings", ndim=2, shape="[n, d]")
    bits = _check_bits(bits)
    n, d = embeddings.shape
    if (d * bits) % 8:
        raise ValueError(f"d * bits must be a multiple of 8 to pack bytes, got d={d}, bits={bits}.")
    key_split, key_km = jax.random.split(key)
    if heldout is None:
        h = max(1, int(round(heldout_fraction * n)))
        if h >= n:
            raise ValueError(f"embeddings needs at least 2 rows to hold some out, got n={n}.")
        perm = jax.random.permutation(key_split, n)
        heldout, train = embeddings[perm[:h]], embeddings[perm[h:]]
    else:
        heldout = _checks.as_float_array(heldout, "heldout", ndim=2, shape="[h, d]")
        if heldout.shape[1] != d:
            raise ValueError(f"heldout must have d={d} columns, got shape {tuple(heldout.shape)}.")
        train = embeddings
    if num_centroids is None:
        num_centroids = min(default_num_centroids(n), train.shape[0])
    num_centroids = _checks.check_num_clusters(num_centroids, train.shape[0], "num_centroids")
    result = kmeans(train, k=num_centroids, key=key_km, max_steps=kmeans_steps, tol=0.0)
    centroids = _normalize(result.centroids)
    residuals = heldout - centroids[_assign(centroids, heldout)]
    levels = 2**bits
    pooled = residuals.reshape(-1)
    cutoffs = jnp.quantile(pooled, jnp.arange(1, levels) / levels)
    weights = jnp.quantile(pooled, (jnp.arange(levels) + 0.5) / levels)
    return Codec(centroids=centroids, bucket_cutoffs=cutoffs, bucket_weights=weights)


def compress(codec: Codec, x: Float[Array, "n d"]) -> Compressed:
    """Encode vectors: nearest centroid id plus ``bits`` bits per residual dimension.

    The bucket of a residual entry ``r_j`` is ``#{cutoffs < r_j}`` (``torch.bucketize``), packed
    ``8 // bits`` per byte with the first dimension in the most significant bits.

    Args:
      codec: from :func:`fit_codec`.
      x: vectors [n, d].

    Returns:
      A :class:`Compressed` ``(codes [n] int32, residuals [n, d · bits / 8] uint8)``.

    Raises:
      ValueError: if ``x`` is not [n, d] with the codec's ``d``.

    Examples:
      >>> import jax
      >>> from jaxclust.multivector import compress, fit_codec
      >>> x = jax.random.normal(jax.random.key(0), (100, 8))
      >>> codec = fit_codec(x, bits=1, key=jax.random.key(1), num_centroids=4)
      >>> packed = compress(codec, x)
      >>> packed.codes.shape, packed.residuals.shape, packed.residuals.dtype
      ((100,), (100, 1), dtype('uint8'))
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    d = codec.centroids.shape[1]
    if x.shape[1] != d:
        raise ValueError(f"x must have the codec's d={d} columns, got shape {tuple(x.shape)}.")
    bits = codec.bits
    codes = _assign(codec.centroids, x)
    r = x - codec.centroids[codes]
    buckets = jnp.sum(r[:, :, None] > codec.bucket_cutoffs[None, None, :], axis=2)
    per_byte = 8 // bits
    groups = buckets.astype(jnp.uint8).reshape(x.shape[0], d // per_byte, per_byte)
    shifts = (bits * jnp.arange(per_byte - 1, -1, -1)).astype(jnp.uint8)
    # Disjoint bit fields: their sum is their bitwise or.
    packed = jnp.sum(jnp.left_shift(groups, shifts[None, None, :]).astype(jnp.uint32), axis=2)
    return Compressed(codes=codes, residuals=packed.astype(jnp.uint8))


def _unpack(residuals, bits: int, d: int):
    per_byte = 8 // bits
    shifts = (bits * jnp.arange(per_byte - 1, -1, -1)).astype(jnp.uint8)
    mask = jnp.uint8(2**bits - 1)
    parts = jnp.bitwise_and(jnp.right_shift(residuals[:, :, None], shifts[None, None, :]), mask)
    return parts.reshape(residuals.shape[0], d).astype(jnp.int32)


def decompress(codec: Codec, compressed: Compressed, *, normalize: bool = True) -> Float[Array, "n d"]:
    """Decode vectors: ``v̂ = normalise(C_t + weights[code])`` (the reference re-normalises).

    Args:
      codec: from :func:`fit_codec`.
      compressed: from :func:`compress`.
      normalize: L2-normalise the reconstruction (static), as ColBERTv2 does for unit vectors.

    Returns:
      Reconstructed vectors [n, d].

    Raises:
      ValueError: if the packed width does not match the codec.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.multivector import compress, decompress, fit_codec
      >>> x = jax.random.normal(jax.random.key(0), (300, 8))
      >>> x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
      >>> codec = fit_codec(x, bits=4, key=jax.random.key(1), num_centroids=16)
      >>> err = jnp.linalg.norm(decompress(codec, compress(codec, x)) - x, axis=1).mean()
      >>> bool(err < 0.5)
      True
    """
    d = codec.centroids.shape[1]
    bits = codec.bits
    if compressed.residuals.ndim != 2 or compressed.residuals.shape[1] * 8 != d * bits:
        raise ValueError(
            f"compressed.residuals must have shape [n, {d * bits // 8}] for d={d} and bits={bits}, "
            f"got {tuple(compressed.residuals.shape)}."
        )
    buckets = _unpack(compressed.residuals, bits, d)
    out = codec.centroids[compressed.codes] + codec.bucket_weights[buckets]
    return _normalize(out) if normalize else out


def bytes_per_vector(codec: Codec, *, code_bytes: int = 4) -> int:
    """Storage per compressed vector: ``d · bits / 8`` residual bytes plus the centroid id.

    Args:
      codec: from :func:`fit_codec`.
      code_bytes: bytes stored per centroid id (4 for int32 as in :class:`Compressed`; 2 suffice
        for up to 65,536 centroids).

    Returns:
      Bytes per vector (a Python int); compare with ``2 · d`` for float16.

    Examples:
      >>> import jax
      >>> from jaxclust.multivector import bytes_per_vector, fit_codec
      >>> codec = fit_codec(jax.random.normal(jax.random.key(0), (64, 128)), bits=2,
      ...                   key=jax.random.key(1), num_centroids=4)
      >>> bytes_per_vector(codec)
      36
    """
    d = codec.centroids.shape[1]
    return d * codec.bits // 8 + _checks.check_positive_int(code_bytes, "code_bytes")
