"""A small Vision Transformer: patch embedding, CLS token, learned positions, pre-LN blocks."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["TransformerBlock", "ViT"]


class TransformerBlock(nn.Module):
    """Pre-LN transformer block: ``x + MHA(LN(x))`` then ``x + MLP(LN(x))`` (GELU MLP).

    Attributes:
      num_heads: attention heads; must divide the width.
      mlp_ratio: hidden width of the MLP relative to the token width.
      dropout_rate: dropout after attention and in the MLP (active when ``train=True``).
      dtype: computation dtype.
    """

    num_heads: int
    mlp_ratio: float = 4.0
    dropout_rate: float = 0.0
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: Float[Array, "n t d"], *, train: bool = False) -> Float[Array, "n t d"]:
        width = x.shape[-1]
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln1")(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, dtype=self.dtype, name="attention"
        )(y, y, deterministic=not train)
        x = x + nn.Dropout(self.dropout_rate)(y, deterministic=not train)
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln2")(x)
        y = nn.Dense(int(round(self.mlp_ratio * width)), dtype=self.dtype, name="mlp_in")(y)
        y = nn.Dropout(self.dropout_rate)(nn.gelu(y), deterministic=not train)
        y = nn.Dense(width, dtype=self.dtype, name="mlp_out")(y)
        return x + nn.Dropout(self.dropout_rate)(y, deterministic=not train)


class ViT(nn.Module):
    """A small Vision Transformer returning the final CLS embedding.

    Images are cut into non-overlapping ``patch_size`` × ``patch_size`` patches, each linearly
    embedded (a strided convolution), a learned CLS token is prepended and learned position
    embeddings are added; ``depth`` pre-LN transformer blocks follow, then a final LayerNorm.
    The number of positions is fixed by the image size seen at ``init``.

    Attributes:
      patch_size: side of the square patches; must divide the image height and width.
      width: token dimension ``d``; default 192 (ViT-Tiny).
      depth: number of transformer blocks; default 6.
      num_heads: attention heads; must divide ``width``; default 3.
      mlp_ratio: MLP hidden width over ``width``; default 4.
      dropout_rate: dropout inside the blocks when ``train=True``; default 0.
      pool: ``"cls"`` (default) returns the CLS token, ``"mean"`` the mean patch token.
      dtype: computation dtype.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import ViT
      >>> model = ViT(patch_size=4, width=32, depth=2, num_heads=4)
      >>> x = jnp.zeros((2, 32, 32, 3))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
      >>> jax.eval_shape(model.apply, variables, x).shape
      (2, 32)

    References:
      A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
      at Scale", ICLR 2021. https://arxiv.org/abs/2010.11929
    """

    patch_size: int = 4
    width: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    dropout_rate: float = 0.0
    pool: str = "cls"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: Float[Array, "n h w c"], *, train: bool = False) -> Float[Array, "n d"]:
        """Embeddings [n, width] of images [n, h, w, c]."""
        if x.ndim != 4:
            raise ValueError(f"x must have rank 4 with shape [n, h, w, c], got {tuple(x.shape)}.")
        p = self.patch_size
        if p < 1 or x.shape[1] % p or x.shape[2] % p:
            raise ValueError(
                f"patch_size must divide the image height and width, got patch_size={p} for "
                f"images of shape {tuple(x.shape[1:])}."
            )
        if self.width % self.num_heads:
            raise ValueError(
                f"num_heads must divide width, got width={self.width}, num_heads={self.num_heads}."
            )
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be one of ['cls', 'mean'], got {self.pool!r}.")
        n = x.shape[0]
        tokens = nn.Conv(
            self.width,
            (p, p),
            strides=(p, p),
            padding="VALID",
            dtype=self.dtype,
            name="patch_embed",
        )(x)
        tokens = tokens.reshape(n, -1, self.width)
        cls = self.param("cls", nn.initializers.zeros, (1, 1, self.width))
        cls = jnp.broadcast_to(cls, (n, 1, self.width)).astype(tokens.dtype)
        tokens = jnp.concatenate([cls, tokens], axis=1)
        pos = self.param(
            "pos_embedding", nn.initializers.normal(0.02), (1, tokens.shape[1], self.width)
        )
        tokens = tokens + pos.astype(tokens.dtype)
        for i in range(self.depth):
            tokens = TransformerBlock(
                self.num_heads, self.mlp_ratio, self.dropout_rate, self.dtype, name=f"block{i}"
            )(tokens, train=train)
        tokens = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln_final")(tokens)
        return tokens[:, 0] if self.pool == "cls" else jnp.mean(tokens[:, 1:], axis=1)
