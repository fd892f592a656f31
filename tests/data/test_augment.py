"""Tests for jaxclust.data image augmentations: identities, geometry, ranges, keys, jit, grads."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxclust.data import (
    augment,
    color_jitter,
    gaussian_noise,
    random_affine,
    random_flip,
    random_grayscale,
    random_resized_crop,
)

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def image():
    return jnp.asarray(np.random.default_rng(0).uniform(size=(8, 8, 3)))


def _ramp(h, w, a=0.05, b=0.02, c=0.1):
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return (a * ii + b * jj + c)[..., None]


# ------------------------------------------------------------------ identities


def test_identity_settings_return_the_input(image):
    batch = jnp.stack([image, image[::-1]])

    @jax.jit
    def run(image, batch):
        return (
            random_resized_crop(KEY, image, scale=(1.0, 1.0), ratio=(1.0, 1.0)),
            random_affine(KEY, image, degrees=0, translate=0, scale=(1, 1)),
            random_flip(KEY, image, probability=0.0),
            color_jitter(KEY, image, brightness=0, contrast=0, saturation=0, hue=0),
            random_grayscale(KEY, image, probability=0.0),
            gaussian_noise(KEY, image, std=0.0),
            augment(KEY, batch, crop_scale=None, flip=False, jitter_probability=0,
                    grayscale_probability=0),
        )

    crop, *others, batch_out = run(image, batch)
    np.testing.assert_allclose(crop, image, atol=1e-12)  # resampling at the pixel centres
    for out in others:
        np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(batch_out, batch)


# ------------------------------------------------------------------ geometry against closed forms


def test_crop_of_a_quarter_area_doubles_the_ramp_slope():
    # A 4×4 box of an 8×8 linear ramp, resized back to 8×8: bilinear resampling reproduces a
    # linear function exactly, and each output pixel steps half an input pixel, so output
    # differences are half the input slope, wherever the box lies.
    ramp = jnp.asarray(_ramp(8, 8))
    fn = jax.jit(functools.partial(random_resized_crop, scale=(0.25, 0.25), ratio=(1.0, 1.0)))
    for seed in range(3):
        out = np.asarray(fn(jax.random.key(seed), ramp))[..., 0]
        # Interior rows/columns only: samples within half a pixel of the border are renormalised.
        np.testing.assert_allclose(np.diff(out, axis=0)[2:-2, 2:-2], 0.05 / 2, atol=1e-9)
        np.testing.assert_allclose(np.diff(out, axis=1)[2:-2, 2:-2], 0.02 / 2, atol=1e-9)


def test_affine_zoom_about_the_centre_matches_closed_form():
    ramp = jnp.asarray(_ramp(9, 9))
    out = random_affine(KEY, ramp, degrees=0, translate=0, scale=(2.0, 2.0))
    # Output p samples input (p − c)/2 + c with c = 4: a ramp of half the slope about the centre.
    ii, jj = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    ref = 0.05 * ((ii - 4) / 2 + 4) + 0.02 * ((jj - 4) / 2 + 4) + 0.1
    np.testing.assert_allclose(np.asarray(out)[..., 0], ref, atol=1e-12)
    # Zooming out samples outside the image at the corners: they take the fill value.
    out = random_affine(KEY, ramp, degrees=0, translate=0, scale=(0.5, 0.5), fill=1.0)
    assert out[0, 0, 0] == 1.0 and out[4, 4, 0] == pytest.approx(ramp[4, 4, 0])


def test_affine_rotation_keeps_the_centre_and_a_radial_image():
    ii, jj = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    radial = jnp.asarray(np.exp(-((ii - 4) ** 2 + (jj - 4) ** 2) / 8.0)[..., None])
    out = random_affine(KEY, radial, degrees=45, translate=0, scale=(1, 1))
    assert out[4, 4, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(out[2:7, 2:7], radial[2:7, 2:7], atol=0.05)  # bilinear error only
    assert not np.allclose(out, radial, atol=1e-6)


def test_flip_and_grayscale_closed_forms(image):
    np.testing.assert_array_equal(random_flip(KEY, image, probability=1.0), image[:, ::-1])
    gray = np.asarray(image) @ np.array([0.299, 0.587, 0.114])
    out = random_grayscale(KEY, image, probability=1.0)
    np.testing.assert_allclose(out, np.repeat(gray[..., None], 3, axis=-1), rtol=1e-12)
    single = image[..., :1]
    np.testing.assert_array_equal(random_grayscale(KEY, single, probability=1.0), single)


# ------------------------------------------------------------------ colour jitter laws


def test_brightness_scales_every_pixel_by_one_factor():
    mid = jnp.asarray(np.random.default_rng(1).uniform(0.3, 0.6, size=(4, 4, 3)))
    out = color_jitter(KEY, mid, brightness=0.4, contrast=0, saturation=0, hue=0)
    ratio = np.asarray(out) / np.asarray(mid)
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-12)
    assert 0.6 <= ratio.flat[0] <= 1.4


def test_contrast_keeps_mean_grey_and_hue_keeps_luma():
    mid = jnp.asarray(np.random.default_rng(2).uniform(0.4, 0.6, size=(4, 4, 3)))
    luma = np.array([0.299, 0.587, 0.114])
    out = color_jitter(KEY, mid, brightness=0, contrast=0.3, saturation=0, hue=0)
    mean_grey = float(np.mean(np.asarray(mid) @ luma))
    assert float(np.mean(np.asarray(out) @ luma)) == pytest.approx(mean_grey)
    out = color_jitter(KEY, mid, brightness=0, contrast=0, saturation=0, hue=0.4)
    np.testing.assert_allclose(np.asarray(out) @ luma, np.asarray(mid) @ luma, atol=1e-3)
    assert not np.allclose(out, mid, atol=1e-3)


def test_saturation_and_hue_leave_grey_images_unchanged():
    grey1 = jnp.asarray(np.random.default_rng(3).uniform(size=(4, 4, 1)))
    out = color_jitter(KEY, grey1, brightness=0, contrast=0, saturation=0.8, hue=0.5)
    np.testing.assert_array_equal(out, grey1)
    grey3 = jnp.repeat(grey1, 3, axis=-1)
    out = color_jitter(KEY, grey3, brightness=0, contrast=0, saturation=0.8, hue=0.5)
    np.testing.assert_allclose(out, grey3, atol=1e-6)


def test_gaussian_noise_standard_deviation():
    flat = jnp.full((64, 64, 1), 0.5)
    out = gaussian_noise(KEY, flat, std=0.05)
    assert float(jnp.std(out - flat)) == pytest.approx(0.05, rel=0.05)


# ------------------------------------------------------------------ batch, keys, dtypes, jit


@pytest.fixture(scope="module")
def jitted_augment():
    @chex.assert_max_traces(n=1)  # fixed shapes never retrace, whatever the key
    def fn(key, images):
        return augment(key, images, degrees=10.0, translate=0.1, zoom=(0.9, 1.1), noise_std=0.05)

    return jax.jit(fn)


def test_augment_shapes_range_determinism_and_keys(jitted_augment, image):
    # float32 in, float32 out (float64 is covered by the other tests, which run with x64).
    batch = jnp.stack([image, image, image * 0.5]).astype(jnp.float32)
    out1 = jitted_augment(KEY, batch)
    out2 = jitted_augment(KEY, batch)
    out3 = jitted_augment(jax.random.key(1), batch)
    assert out1.shape == batch.shape and out1.dtype == batch.dtype
    assert float(out1.min()) >= 0.0 and float(out1.max()) <= 1.0
    np.testing.assert_array_equal(out1, out2)
    assert not np.allclose(out1, out3)
    assert not np.allclose(out1[0], out1[1])  # identical images, per-example keys


def test_augment_applies_each_step_with_its_own_key(image):
    # Flip only: the composition uses key i of split(key, n) and sub-key 2 of split(key_i, 7).
    batch = jnp.stack([image, image[::-1], image * 0.5, image[:, ::-1]])
    out = augment(KEY, batch, crop_scale=None, jitter_probability=0, grayscale_probability=0)
    for i, k in enumerate(jax.random.split(KEY, 4)):
        ref = random_flip(jax.random.split(k, 7)[2], batch[i])
        np.testing.assert_array_equal(out[i], ref)


def test_gradients_with_respect_to_the_image():
    img = jnp.asarray(np.random.default_rng(5).uniform(0.3, 0.7, size=(5, 5, 1)))
    # Fixed key: both maps are linear in the image away from the clip at 0 and 1.
    affine = jax.jit(lambda x: random_affine(KEY, x, degrees=20, translate=0.1))
    crop = jax.jit(lambda x: random_resized_crop(KEY, x, scale=(0.5, 0.9)))
    check_grads(affine, (img,), order=1, modes=["rev"])
    check_grads(crop, (img,), order=1, modes=["rev"])


# ------------------------------------------------------------------ bad input


def test_bad_input(image):
    with pytest.raises(ValueError, match=r"image must have rank 3 with shape \[h, w, c\]"):
        random_flip(KEY, image[None])
    with pytest.raises(TypeError, match="image must have a floating-point dtype"):
        random_flip(KEY, jnp.zeros((2, 2, 1), jnp.uint8))
    with pytest.raises(ValueError, match="scale must satisfy low <= high"):
        random_resized_crop(KEY, image, scale=(0.9, 0.1))
    with pytest.raises(ValueError, match=r"probability must lie in \[0.0, 1.0\]"):
        random_flip(KEY, image, probability=1.5)
    with pytest.raises(ValueError, match=r"hue must lie in \[0.0, 0.5\]"):
        color_jitter(KEY, image, hue=0.7)
    with pytest.raises(ValueError, match="std must lie in"):
        gaussian_noise(KEY, image, std=-1.0)
    with pytest.raises(ValueError, match=r"images must have rank 4 with shape \[n, h, w, c\]"):
        augment(KEY, image)
    with pytest.raises(TypeError, match="ratio must be a pair of floats"):
        random_resized_crop(KEY, image, ratio=1.0)
