"""ResNet backbones with BasicBlocks; the default is ResNet-18 in its CIFAR variant."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["BasicBlock", "ResNet", "ResNet18"]

# He initialisation with fan-out, as torchvision's ResNet (kaiming_normal_, mode="fan_out").
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# Flax's momentum is the weight of the old running average: 0.9 is torch's momentum=0.1.
_batch_norm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with BatchNorm and an identity or 1×1-projection shortcut.

    Attributes:
      features: output channels.
      strides: stride of the first convolution (and of the projection shortcut).
      dtype: computation dtype (parameters stay float32).
    """

    features: int
    strides: int = 1
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: Float[Array, "n h w c"], *, train: bool) -> Float[Array, "n h2 w2 f"]:
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=_conv_init, dtype=self.dtype)
        norm = functools.partial(_batch_norm, use_running_average=not train, dtype=self.dtype)
        y = conv(self.features, (3, 3), strides=self.strides, padding=1, name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y))
        y = conv(self.features, (3, 3), padding=1, name="conv2")(y)
        y = norm(name="bn2")(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, (1, 1), strides=self.strides, padding=0, name="proj")(x)
            x = norm(name="proj_bn")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """A BasicBlock ResNet feature extractor; the defaults give ResNet-18, CIFAR variant.

    CIFAR stem (the SCAN reference): a 3×3 stride-1 convolution with 64 channels, BN, ReLU, no
    max-pool, so a 32×32 input reaches the last stage as 4×4 maps. ``stem="imagenet"`` uses the
    standard 7×7 stride-2 convolution and 3×3 stride-2 max-pool (for STL-10/ImageNet). Then
    ``len(stage_sizes)`` stages of BasicBlocks with ``widths`` channels, first-block strides
    1, 2, 2, ..., projection shortcuts (1×1 conv + BN) where the shape changes, and global average
    pooling. There is no classifier: the output is the pooled ``widths[-1]``-dim feature.

    BatchNorm follows torch's defaults (momentum 0.1, i.e. flax ``momentum=0.9``,
    ``epsilon=1e-5``); call with ``train=True`` and ``mutable=["batch_stats"]`` to use and
    update batch statistics, ``train=False`` to use the running averages.

    Attributes:
      stage_sizes: BasicBlocks per stage; default ``(2, 2, 2, 2)`` (ResNet-18).
      widths: channels per stage; default ``(64, 128, 256, 512)``.
      stem: ``"cifar"`` (default) or ``"imagenet"``.
      dtype: computation dtype, e.g. ``jnp.bfloat16`` (parameters stay float32).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import functools
      >>> from jaxclust.nn import ResNet18
      >>> model = ResNet18()
      >>> x = jnp.zeros((2, 32, 32, 3))
      >>> init = functools.partial(model.init, train=False)
      >>> variables = jax.eval_shape(init, jax.random.key(0), x)
      >>> sum(a.size for a in jax.tree.leaves(variables["params"]))
      11168832
      >>> jax.eval_shape(functools.partial(model.apply, train=False), variables, x).shape
      (2, 512)

    References:
      K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image Recognition",
      CVPR 2016. https://arxiv.org/abs/1512.03385

      W. Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020
      (CIFAR backbone). https://arxiv.org/abs/2005.12320
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    widths: Sequence[int] = (64, 128, 256, 512)
    stem: str = "cifar"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: Float[Array, "n h w c"], *, train: bool) -> Float[Array, "n d"]:
        """Features [n, widths[-1]] of images [n, h, w, c]; ``train`` selects the BN mode."""
        if self.stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be one of ['cifar', 'imagenet'], got {self.stem!r}.")
        if len(tuple(self.stage_sizes)) != len(tuple(self.widths)) or not self.widths:
            raise ValueError(
                f"stage_sizes and widths must be non-empty and of the same length, got "
                f"{tuple(self.stage_sizes)} and {tuple(self.widths)}."
            )
        if x.ndim != 4:
            raise ValueError(f"x must have rank 4 with shape [n, h, w, c], got {tuple(x.shape)}.")
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=_conv_init, dtype=self.dtype)
        norm = functools.partial(_batch_norm, use_running_average=not train, dtype=self.dtype)
        stem_width = self.widths[0]
        if self.stem == "cifar":
            x = conv(stem_width, (3, 3), padding=1, name="stem_conv")(x)
        else:
            x = conv(stem_width, (7, 7), strides=2, padding=3, name="stem_conv")(x)
        x = nn.relu(norm(name="stem_bn")(x))
        if self.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for i, (blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(blocks):
                strides = 2 if i > 0 and j == 0 else 1
                x = BasicBlock(width, strides, dtype=self.dtype, name=f"stage{i + 1}_block{j + 1}")(
                    x, train=train
                )
        return jnp.mean(x, axis=(1, 2))


class ResNet18(ResNet):
    """ResNet-18 (BasicBlocks ``[2, 2, 2, 2]``, widths 64-512), CIFAR stem by default.

    The same module as ``ResNet`` with its defaults; about 11.17M parameters without a
    classifier, as torchvision's ResNet-18 with the CIFAR stem and no ``fc``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import functools
      >>> from jaxclust.nn import ResNet18
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> v = jax.eval_shape(functools.partial(ResNet18().init, train=False), jax.random.key(0), x)
      >>> sorted(v)
      ['batch_stats', 'params']
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
