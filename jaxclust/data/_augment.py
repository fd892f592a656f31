"""On-device image augmentations in plain JAX: one image per call, ``augment`` for a batch.

Images are ``[h, w, c]`` floating arrays with values in [0, 1] (NHWC for batches). Every
single-image function has the signature ``(key, image, *, options) -> image``, keeps the shape
and dtype, returns values in [0, 1], and works under ``jit``, ``vmap`` and ``grad`` (with respect
to the image). ``augment`` composes them for a batch with one independent key per image.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import as_float_array
from .._typing import KeyArray

__all__ = [
    "random_resized_crop",
    "random_affine",
    "random_flip",
    "color_jitter",
    "random_grayscale",
    "gaussian_noise",
    "augment",
]

# ITU-R BT.601 luma weights, the grayscale of PIL and torchvision.
_LUMA = (0.299, 0.587, 0.114)


def _check_image(image, name: str = "image"):
    image = as_float_array(image, name, finite=False)
    if image.ndim != 3:
        raise ValueError(f"{name} must have rank 3 with shape [h, w, c], got {tuple(image.shape)}.")
    return image


def _check_range(value, name: str, lo: float, hi: float | None = None):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of floats (low, high), got {value!r}.") from None
    if not (lo <= a <= b) or (hi is not None and b > hi):
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must satisfy low <= high within {bound}, got {value!r}.")
    return a, b


def _check_scalar(value, name: str, lo: float = 0.0, hi: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float, got {value!r}.") from None
    if not (v >= lo and (hi is None or v <= hi)):
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must lie in {bound}, got {value!r}.")
    return v


def _gray(image):
    if image.shape[-1] != 3:
        return jnp.mean(image, axis=-1, keepdims=True)
    return image @ jnp.asarray(_LUMA, image.dtype)[:, None]


def random_resized_crop(
    key: KeyArray,
    image: Float[Array, "h w c"],
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Float[Array, "h w c"]:
    """Crops a random box and resizes it back to the image size (bilinear).

    The box has area ``s·h·w`` with ``s ~ U(scale)`` and aspect ratio (width/height) ``r`` with
    ``log r ~ U(log ratio)``, as torchvision's ``RandomResizedCrop``; its sides are clipped to
    the image (instead of torchvision's ten rejection trials, which need dynamic control flow)
    and its corner is uniform over the valid positions (sub-pixel). The box is resampled with
    ``jax.image.scale_and_translate`` (linear, antialiased when shrinking).
    ``scale=(1, 1), ratio=(1, 1)`` on a square image returns the input.

    Args:
      key: PRNG key.
      image: [h, w, c] values in [0, 1].
      scale: range of the area fraction, within (0, 1]; default (0.08, 1).
      ratio: range of the aspect ratio, > 0; default (3/4, 4/3).

    Returns:
      The augmented image, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or a range is invalid.
      TypeError: if ``image`` is not floating point.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import random_resized_crop
      >>> image = jnp.linspace(0, 1, 48).reshape(4, 4, 3)
      >>> out = random_resized_crop(jax.random.key(0), image, scale=(1, 1), ratio=(1, 1))
      >>> bool(jnp.allclose(out, image, atol=1e-6))
      True

    References:
      C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (the crop augmentation).
      https://arxiv.org/abs/1409.4842
    """
    image = _check_image(image)
    s_lo, s_hi = _check_range(scale, "scale", 0.0, 1.0)
    if s_hi <= 0:
        raise ValueError(f"scale must have a positive upper bound, got {scale!r}.")
    r_lo, r_hi = _check_range(ratio, "ratio", 1e-12)
    h, w, c = image.shape
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    dtype = image.dtype
    area = h * w * jax.random.uniform(k_area, (), dtype, s_lo, s_hi)
    r = jnp.exp(jax.random.uniform(k_ratio, (), dtype, math.log(r_lo), math.log(r_hi)))
    # Clip the box into the image; a tiny floor keeps the scale factor finite.
    bw = jnp.clip(jnp.sqrt(area * r), 1e-3, w)
    bh = jnp.clip(jnp.sqrt(area / r), 1e-3, h)
    y0 = jax.random.uniform(k_y, (), dtype) * (h - bh)
    x0 = jax.random.uniform(k_x, (), dtype) * (w - bw)
    # scale_and_translate maps input coordinate u to output coordinate u·scale + translation
    # (continuous coordinates, pixel centres at i + 1/2), so the box [y0, y0 + bh] → [0, h].
    sy, sx = h / bh, w / bw
    out = jax.image.scale_and_translate(
        image,
        (h, w, c),
        (0, 1),
        jnp.stack([sy, sx]),
        jnp.stack([-y0 * sy, -x0 * sx]),
        method="linear",
        antialias=True,
    )
    return jnp.clip(out, 0, 1).astype(dtype)


def random_affine(
    key: KeyArray,
    image: Float[Array, "h w c"],
    *,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    fill: float = 0.0,
) -> Float[Array, "h w c"]:
    """A small random rotation, translation and isotropic scaling about the image centre.

    The angle is uniform in ``[-degrees, degrees]``, the shift in each axis uniform in
    ``[-translate, translate]`` times the side, the zoom uniform in ``scale``. Every output pixel
    is sampled bilinearly (``jax.scipy.ndimage.map_coordinates``, order 1) at the inverse-mapped
    position; positions outside the image take ``fill``. ``degrees=0, translate=0,
    scale=(1, 1)`` returns the input exactly.

    Args:
      key: PRNG key.
      image: [h, w, c] values in [0, 1].
      degrees: maximum rotation in degrees, >= 0; default 10.
      translate: maximum shift as a fraction of the side, in [0, 1]; default 0.1.
      scale: range of the zoom factor, > 0; default (0.9, 1.1).
      fill: value outside the image, in [0, 1]; default 0 (black, as MNIST's background).

    Returns:
      The augmented image, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or an option is out of range.
      TypeError: if ``image`` is not floating point.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import random_affine
      >>> image = jnp.linspace(0, 1, 16).reshape(4, 4, 1)
      >>> out = random_affine(jax.random.key(0), image, degrees=0, translate=0, scale=(1, 1))
      >>> bool(jnp.array_equal(out, image))
      True
    """
    image = _check_image(image)
    degrees = _check_scalar(degrees, "degrees")
    translate = _check_scalar(translate, "translate", 0.0, 1.0)
    z_lo, z_hi = _check_range(scale, "scale", 1e-12)
    fill = _check_scalar(fill, "fill", 0.0, 1.0)
    h, w, c = image.shape
    dtype = image.dtype
    k_angle, k_shift, k_zoom = jax.random.split(key, 3)
    angle = jnp.deg2rad(jax.random.uniform(k_angle, (), dtype, -degrees, degrees))
    shift = jax.random.uniform(k_shift, (2,), dtype, -translate, translate)
    shift = shift * jnp.asarray([h, w], dtype)
    zoom = jax.random.uniform(k_zoom, (), dtype, z_lo, z_hi)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=dtype), jnp.arange(w, dtype=dtype), indexing="ij")
    # Inverse map: output p = R·zoom·(q − centre) + centre + shift, so q = R⁻¹(p − centre −
    # shift)/zoom + centre.
    dy, dx = yy - cy - shift[0], xx - cx - shift[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = (cos * dy - sin * dx) / zoom + cy
    src_x = (sin * dy + cos * dx) / zoom + cx
    channels = [
        jax.scipy.ndimage.map_coordinates(
            image[..., i], [src_y, src_x], order=1, mode="constant", cval=fill
        )
        for i in range(c)
    ]
    return jnp.clip(jnp.stack(channels, axis=-1), 0, 1).astype(dtype)


def random_flip(
    key: KeyArray, image: Float[Array, "h w c"], *, probability: float = 0.5
) -> Float[Array, "h w c"]:
    """Mirrors the image left-right with probability ``probability`` (default 0.5).

    Do not use it on digits or text, whose mirror images are other symbols.

    Args:
      key: PRNG key.
      image: [h, w, c].
      probability: chance of flipping, in [0, 1].

    Returns:
      The image or its mirror, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or ``probability`` is outside [0, 1].

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import random_flip
      >>> image = jnp.arange(3.0).reshape(1, 3, 1) / 2
      >>> random_flip(jax.random.key(0), image, probability=1.0)[0, :, 0].tolist()
      [1.0, 0.5, 0.0]
    """
    image = _check_image(image)
    probability = _check_scalar(probability, "probability", 0.0, 1.0)
    return jnp.where(jax.random.bernoulli(key, probability), image[:, ::-1], image)


def color_jitter(
    key: KeyArray,
    image: Float[Array, "h w c"],
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> Float[Array, "h w c"]:
    """Random brightness, contrast, saturation and hue changes, in that fixed order.

    Factors are uniform in ``[max(0, 1 − b), 1 + b]`` for brightness (scales the pixels),
    contrast (blends with the mean grey level) and saturation (blends with the grey image), as
    torchvision's ``ColorJitter``; the hue is rotated by an angle uniform in ``±hue·2π`` about
    the grey axis in YIQ space (a light-weight stand-in for an HSV hue shift). Values are
    clipped to [0, 1] after each step. Saturation and hue leave single-channel images unchanged
    (grayscale-safe); brightness and contrast apply to any channel count. A strength of 0
    disables its step. Unlike torchvision the order is fixed, not random.

    Args:
      key: PRNG key.
      image: [h, w, c] values in [0, 1]; c = 3 for saturation and hue to act.
      brightness: strength >= 0; default 0.4.
      contrast: strength >= 0; default 0.4.
      saturation: strength >= 0; default 0.4.
      hue: strength in [0, 0.5]; default 0.1.

    Returns:
      The augmented image, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or a strength is out of range.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import color_jitter
      >>> image = jnp.full((2, 2, 3), 0.5)
      >>> off = dict(brightness=0, contrast=0, saturation=0, hue=0)
      >>> out = color_jitter(jax.random.key(0), image, **off)
      >>> bool(jnp.array_equal(out, image))
      True

    References:
      T. Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
      ICML 2020, Appendix A. https://arxiv.org/abs/2002.05709
    """
    image = _check_image(image)
    brightness = _check_scalar(brightness, "brightness")
    contrast = _check_scalar(contrast, "contrast")
    saturation = _check_scalar(saturation, "saturation")
    hue = _check_scalar(hue, "hue", 0.0, 0.5)
    dtype = image.dtype
    k_b, k_c, k_s, k_h = jax.random.split(key, 4)

    def factor(k, strength):
        return jax.random.uniform(k, (), dtype, max(0.0, 1 - strength), 1 + strength)

    x = image
    if brightness > 0:
        x = jnp.clip(x * factor(k_b, brightness), 0, 1)
    if contrast > 0:
        mean = jnp.mean(_gray(x))
        x = jnp.clip(mean + factor(k_c, contrast) * (x - mean), 0, 1)
    if x.shape[-1] == 3 and saturation > 0:
        g = _gray(x)
        x = jnp.clip(g + factor(k_s, saturation) * (x - g), 0, 1)
    if x.shape[-1] == 3 and hue > 0:
        theta = jax.random.uniform(k_h, (), dtype, -hue, hue) * 2 * math.pi
        to_yiq = jnp.asarray(
            [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype
        )
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        rot = jnp.stack(
            [
                jnp.stack([jnp.ones_like(cos), jnp.zeros_like(cos), jnp.zeros_like(cos)]),
                jnp.stack([jnp.zeros_like(cos), cos, -sin]),
                jnp.stack([jnp.zeros_like(cos), sin, cos]),
            ]
        )
        # RGB → YIQ, rotate the chroma plane (I, Q), back to RGB; luma Y is unchanged.
        m = jnp.linalg.inv(to_yiq) @ rot @ to_yiq
        x = jnp.clip(jnp.einsum("hwc,dc->hwd", x, m), 0, 1)
    return x.astype(dtype)


def random_grayscale(
    key: KeyArray, image: Float[Array, "h w c"], *, probability: float = 0.2
) -> Float[Array, "h w c"]:
    """Replaces an RGB image by its grey levels (BT.601 luma, kept in 3 channels).

    Args:
      key: PRNG key.
      image: [h, w, c]; images with ``c != 3`` are returned unchanged.
      probability: chance of converting, in [0, 1]; default 0.2 (SimCLR).

    Returns:
      The image or its grey version, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or ``probability`` is outside [0, 1].

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import random_grayscale
      >>> image = jnp.array([[[1.0, 0.0, 0.0]]])
      >>> random_grayscale(jax.random.key(0), image, probability=1.0).round(3).tolist()
      [[[0.299, 0.299, 0.299]]]
    """
    image = _check_image(image)
    probability = _check_scalar(probability, "probability", 0.0, 1.0)
    if image.shape[-1] != 3:
        return image
    gray = jnp.broadcast_to(_gray(image), image.shape)
    return jnp.where(jax.random.bernoulli(key, probability), gray, image)


def gaussian_noise(
    key: KeyArray, image: Float[Array, "h w c"], *, std: float = 0.05
) -> Float[Array, "h w c"]:
    """Adds i.i.d. Gaussian noise of standard deviation ``std`` and clips to [0, 1].

    Args:
      key: PRNG key.
      image: [h, w, c] values in [0, 1].
      std: noise standard deviation, >= 0; default 0.05.

    Returns:
      The noisy image, same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or ``std`` is negative.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import gaussian_noise
      >>> out = gaussian_noise(jax.random.key(0), jnp.full((8, 8, 1), 0.5), std=0.1)
      >>> out.shape, bool(jnp.all((out >= 0) & (out <= 1)))
      ((8, 8, 1), True)
    """
    image = _check_image(image)
    std = _check_scalar(std, "std")
    noise = std * jax.random.normal(key, image.shape, image.dtype)
    return jnp.clip(image + noise, 0, 1).astype(image.dtype)


def augment(
    key: KeyArray,
    images: Float[Array, "n h w c"],
    *,
    crop_scale: tuple[float, float] | None = (0.2, 1.0),
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    degrees: float = 0.0,
    translate: float = 0.0,
    zoom: tuple[float, float] = (1.0, 1.0),
    flip: bool = True,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    jitter_probability: float = 0.8,
    grayscale_probability: float = 0.2,
    noise_std: float = 0.0,
) -> Float[Array, "n h w c"]:
    """Augments a batch of images independently: crop, affine, flip, colour, grey, noise.

    Each image gets its own key (``jax.random.split(key, n)``) and goes through, in order:
    ``random_resized_crop`` (skipped when ``crop_scale`` is None), ``random_affine`` (skipped
    when ``degrees``, ``translate`` are 0 and ``zoom`` is (1, 1)), ``random_flip`` (if ``flip``),
    ``color_jitter`` with probability ``jitter_probability``, ``random_grayscale`` and
    ``gaussian_noise`` (if ``noise_std > 0``). The defaults are SimCLR's CIFAR recipe (crop
    scale from 0.2 as in MoCo v2/SCAN); for digits use ``flip=False``, ``crop_scale=None`` and a
    small affine, e.g. ``degrees=10, translate=0.1, zoom=(0.9, 1.1)``. Options are static
    (changing them recompiles); the cost of a skipped step is zero.

    Under ``jax.jit`` on a batch sharded over devices every image gets the same key as on one
    device, so the result matches the single-device one up to float rounding.
    Inside ``jax.shard_map`` every shard would split the same ``key``: fold the shard index into
    it first (``jax.random.fold_in(key, jax.lax.axis_index(axis))``).

    Args:
      key: PRNG key.
      images: [n, h, w, c] values in [0, 1].
      crop_scale: area range of ``random_resized_crop``, or None to skip it.
      crop_ratio: aspect-ratio range of ``random_resized_crop``.
      degrees: ``random_affine`` rotation range.
      translate: ``random_affine`` shift range (fraction of the side).
      zoom: ``random_affine`` scale range.
      flip: random horizontal flips with probability 0.5; False for digits and text.
      brightness: ``color_jitter`` strength.
      contrast: ``color_jitter`` strength.
      saturation: ``color_jitter`` strength.
      hue: ``color_jitter`` strength.
      jitter_probability: chance of applying the colour jitter; 0 skips it.
      grayscale_probability: chance of converting an RGB image to grey; 0 skips it.
      noise_std: standard deviation of additive Gaussian noise; 0 skips it.

    Returns:
      Augmented images [n, h, w, c], same dtype, values in [0, 1].

    Raises:
      ValueError: if ``images`` is not rank 4 or an option is out of range.
      TypeError: if ``images`` is not floating point.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.data import augment
      >>> images = jnp.linspace(0, 1, 4 * 8 * 8).reshape(4, 8, 8, 1)
      >>> digits = dict(crop_scale=None, flip=False, degrees=10, translate=0.1, zoom=(0.9, 1.1),
      ...               jitter_probability=0, grayscale_probability=0)
      >>> out = augment(jax.random.key(1), images, **digits)
      >>> out.shape, bool(jnp.all((out >= 0) & (out <= 1)))
      ((4, 8, 8, 1), True)

    References:
      T. Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
      ICML 2020. https://arxiv.org/abs/2002.05709
    """
    images = as_float_array(images, "images", finite=False)
    if images.ndim != 4:
        raise ValueError(
            f"images must have rank 4 with shape [n, h, w, c], got {tuple(images.shape)}."
        )
    jitter_probability = _check_scalar(jitter_probability, "jitter_probability", 0.0, 1.0)
    grayscale_probability = _check_scalar(grayscale_probability, "grayscale_probability", 0, 1)
    use_affine = (float(degrees), float(translate), tuple(map(float, zoom))) != (0, 0, (1, 1))
    use_jitter = jitter_probability > 0 and any(
        float(v) > 0 for v in (brightness, contrast, saturation, hue)
    )

    def one(k, image):
        ks = jax.random.split(k, 7)
        if crop_scale is not None:
            image = random_resized_crop(ks[0], image, scale=crop_scale, ratio=crop_ratio)
        if use_affine:
            image = random_affine(ks[1], image, degrees=degrees, translate=translate, scale=zoom)
        if flip:
            image = random_flip(ks[2], image)
        if use_jitter:
            jittered = color_jitter(
                ks[3],
                image,
                brightness=brightness,
                contrast=contrast,
                saturation=saturation,
                hue=hue,
            )
            image = jnp.where(jax.random.bernoulli(ks[4], jitter_probability), jittered, image)
        if grayscale_probability > 0:
            image = random_grayscale(ks[5], image, probability=grayscale_probability)
        if float(noise_std) > 0:
            image = gaussian_noise(ks[6], image, std=noise_std)
        return image

    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(one)(keys, images)
