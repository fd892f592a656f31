"""Tests for the ColBERTv2 residual codec against a float64 NumPy transcription (METHODS.md §5.3)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.multivector import Codec, Compressed, bytes_per_vector, compress, decompress, fit_codec


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=None)
def _data():
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(8, 16)))
    x = _unit(centres[rng.integers(0, 8, 400)] + 0.3 * rng.normal(size=(400, 16)))
    heldout = _unit(centres[rng.integers(0, 8, 100)] + 0.3 * rng.normal(size=(100, 16)))
    return x, heldout


@functools.lru_cache(maxsize=None)
def _codec(bits):
    x, heldout = _data()
    return fit_codec(jnp.asarray(x), bits=bits, key=jax.random.key(0), num_centroids=8,
                     heldout=jnp.asarray(heldout))


def _pack_reference(buckets, bits):
    """Each dimension's bucket as ``bits`` big-endian bits, concatenated, then np.packbits."""
    n, d = buckets.shape
    bitarr = (buckets[:, :, None] >> np.arange(bits - 1, -1, -1)[None, None, :]) & 1
    return np.packbits(bitarr.reshape(n, d * bits).astype(np.uint8), axis=1)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_codec_and_round_trip_match_numpy(bits):
    x, heldout = _data()
    codec = _codec(bits)
    assert isinstance(codec, Codec) and codec.bits == bits
    c = np.asarray(codec.centroids)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-12)
    # Bucket statistics: quantiles of the held-out residuals pooled over all dimensions.
    r = heldout - c[np.argmax(heldout @ c.T, axis=1)]
    levels = 2**bits
    np.testing.assert_allclose(np.asarray(codec.bucket_cutoffs),
                               np.quantile(r.ravel(), np.arange(1, levels) / levels), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(codec.bucket_weights),
                               np.quantile(r.ravel(), (np.arange(levels) + 0.5) / levels), rtol=1e-12)
    # Encoding: argmax centroid, bucketize (#cutoffs < r), bit packing.
    packed = jax.jit(compress)(codec, jnp.asarray(x))
    assert isinstance(packed, Compressed)
    assert packed.codes.dtype == jnp.int32 and packed.residuals.dtype == jnp.uint8
    assert packed.residuals.shape == (len(x), 16 * bits // 8)
    codes = np.argmax(x @ c.T, axis=1)
    np.testing.assert_array_equal(np.asarray(packed.codes), codes)
    res = x - c[codes]
    buckets = np.searchsorted(np.asarray(codec.bucket_cutoffs), res, side="left")
    np.testing.assert_array_equal(np.asarray(packed.residuals), _pack_reference(buckets, bits))
    # Decoding: normalise(C_t + weights[bucket]).
    out = np.asarray(jax.jit(decompress)(codec, packed))
    ref = _unit(c[codes] + np.asarray(codec.bucket_weights)[buckets])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-15)
    raw = np.asarray(decompress(codec, packed, normalize=False))
    np.testing.assert_allclose(raw, c[codes] + np.asarray(codec.bucket_weights)[buckets], rtol=1e-12)
    assert bytes_per_vector(codec) == 16 * bits // 8 + 4
    assert bytes_per_vector(codec, code_bytes=2) == 16 * bits // 8 + 2


def test_error_decreases_with_bits():
    x, _ = _data()
    errors = []
    for bits in (1, 2, 4):
        codec = _codec(bits)
        recon = np.asarray(decompress(codec, compress(codec, jnp.asarray(x))))
        errors.append(np.mean(np.sum((recon - x) ** 2, axis=1)))
    assert errors[0] > errors[1] > errors[2]
    # Better than the centroid alone (the residual carries information).
    c = np.asarray(_codec(1).centroids)
    centroid_only = np.mean(np.sum((c[np.argmax(x @ c.T, 1)] - x) ** 2, axis=1))
    assert errors[0] < centroid_only


def test_default_heldout_split_and_codebook_size():
    x, _ = _data()
    codec = fit_codec(jnp.asarray(x), bits=2, key=jax.random.key(3))
    assert codec.centroids.shape == (2 ** int(np.floor(np.log2(16 * np.sqrt(400)))), 16)
    assert np.isfinite(np.asarray(codec.bucket_weights)).all()
    assert np.all(np.diff(np.asarray(codec.bucket_cutoffs)) >= 0)


class TestBadInput:
    def test_bits(self):
        with pytest.raises(ValueError, match="bits must be one of"):
            fit_codec(jnp.ones((10, 8)), bits=3, key=jax.random.key(0))

    def test_packing_width(self):
        with pytest.raises(ValueError, match="d \\* bits must be a multiple of 8"):
            fit_codec(jnp.ones((10, 3)), bits=2, key=jax.random.key(0))

    def test_dimension(self):
        codec = _codec(2)
        with pytest.raises(ValueError, match="codec's d=16"):
            compress(codec, jnp.ones((3, 8)))
        with pytest.raises(ValueError, match="compressed.residuals must have shape"):
            decompress(codec, Compressed(jnp.zeros(3, jnp.int32), jnp.zeros((3, 5), jnp.uint8)))

    def test_num_centroids(self):
        with pytest.raises(ValueError, match="num_centroids must be <="):
            fit_codec(jnp.ones((10, 8)), bits=1, key=jax.random.key(0), num_centroids=50)
