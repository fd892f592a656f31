"""Autoencoders of deep clustering: DEC's MLP stack and the DCEC convolutional autoencoder."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["MLPAutoencoder", "PretrainStage", "greedy_pretrain_stages", "ConvAutoencoder"]


def _check_dims(dims, name: str) -> tuple[int, ...]:
    dims = tuple(dims)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {dims!r}.")
    return dims


def _check_rate(rate, name: str) -> None:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {rate!r}.")


class MLPAutoencoder(nn.Module):
    """DEC's fully connected autoencoder ``d → 500 → 500 → 2000 → 10 → 2000 → 500 → 500 → d``.

    Encoder layers ``encoder_0 .. encoder_{L-1}`` and decoder layers ``decoder_0 ..
    decoder_{L-1}`` are ``Dense`` layers with ``activation`` (ReLU, as in DEC) between them. As
    in DEC, the embedding layer (``encoder_{L-1}``) and the reconstruction layer
    (``decoder_{L-1}``) are linear, so the embedding keeps full information and the output can
    reconstruct inputs of any sign.

    ``__call__(x)`` returns ``(z, x_hat)``; ``encode`` and ``decode`` give each half, e.g.
    ``model.apply(variables, x, method=MLPAutoencoder.encode)``. ``greedy_stage`` runs one stage
    of DEC's greedy layer-wise denoising pretraining; ``greedy_pretrain_stages`` lists the whole
    schedule with the parameter mask of each stage.

    Attributes:
      features: input (and reconstruction) dimension ``d``.
      hidden: widths of the hidden encoder layers; default DEC's ``(500, 500, 2000)``.
      latent: embedding dimension; default 10.
      dropout_rate: input/hidden dropout corruption used by ``greedy_stage`` when
        ``deterministic=False``; default DEC's 0.2. ``__call__`` never drops units (DEC's
        end-to-end fine-tuning runs without dropout).
      kernel_init: initialiser of every layer's kernel; default Flax's ``lecun_normal()``.
        PyTorch's ``nn.Linear`` default (used by ClustPy and most PyTorch re-implementations) is
        ``variance_scaling(1/3, "fan_in", "uniform")``.
      bias_init: initialiser of every layer's bias (a Flax initialiser); default zeros.
      activation: the nonlinearity between layers; default ``nn.relu`` (DEC). ClustPy's
        autoencoder uses ``nn.leaky_relu`` (slope 0.01).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import MLPAutoencoder
      >>> model = MLPAutoencoder(features=784)
      >>> x = jnp.zeros((2, 784))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
      >>> z, x_hat = jax.eval_shape(model.apply, variables, x)
      >>> z.shape, x_hat.shape
      ((2, 10), (2, 784))
      >>> [variables["params"][f"encoder_{i}"]["kernel"].shape for i in range(4)]
      [(784, 500), (500, 500), (500, 2000), (2000, 10)]

    References:
      J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for Clustering
      Analysis", ICML 2016, §3.2 and §4.3. https://arxiv.org/abs/1511.06335
    """

    features: int
    hidden: Sequence[int] = (500, 500, 2000)
    latent: int = 10
    dropout_rate: float = 0.2
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    activation: Callable = nn.relu

    def setup(self):
        _check_dims((self.features,), "features")
        hidden = _check_dims(self.hidden, "hidden")
        _check_dims((self.latent,), "latent")
        _check_rate(self.dropout_rate, "dropout_rate")
        enc = (*hidden, self.latent)
        dec = (*reversed(hidden), self.features)
        dense = functools.partial(nn.Dense, kernel_init=self.kernel_init, bias_init=self.bias_init)
        self.encoder = [dense(w, name=f"encoder_{i}") for i, w in enumerate(enc)]
        self.decoder = [dense(w, name=f"decoder_{i}") for i, w in enumerate(dec)]
        self.dropout = nn.Dropout(self.dropout_rate)

    @property
    def num_layers(self) -> int:
        """Number ``L`` of encoder (and of decoder) layers."""
        return len(tuple(self.hidden)) + 1

    def encode(self, x: Float[Array, "n d"]) -> Float[Array, "n latent"]:
        """Embeds ``x`` [n, d] into ``z`` [n, latent] (linear last layer)."""
        return self._encode_to(x, self.num_layers)

    def decode(self, z: Float[Array, "n latent"]) -> Float[Array, "n d"]:
        """Reconstructs ``x_hat`` [n, d] from ``z`` [n, latent] (linear last layer)."""
        h = z
        last = self.num_layers - 1
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < last:
                h = self.activation(h)
        return h

    def __call__(
        self, x: Float[Array, "n d"]
    ) -> tuple[Float[Array, "n latent"], Float[Array, "n d"]]:
        """Returns ``(z, x_hat)``: the embedding [n, latent] and the reconstruction [n, d]."""
        z = self.encode(x)
        return z, self.decode(z)

    def _encode_to(self, x, depth: int):
        h = x
        last = self.num_layers - 1
        for i in range(depth):
            h = self.encoder[i](h)
            if i < last:
                h = self.activation(h)
        return h

    def greedy_stage(
        self, x: Float[Array, "n d"], stage: int, *, deterministic: bool = True
    ) -> tuple[Float[Array, "n w"], Float[Array, "n w"]]:
        """One denoising-autoencoder stage of DEC's greedy layer-wise pretraining.

        Stage ``i`` trains the pair ``encoder_i``/``decoder_{L-1-i}`` as a one-hidden-layer
        denoising autoencoder on ``h_i``, the output of the already trained encoder layers
        ``0..i-1`` (computed without dropout and under ``stop_gradient``), following DEC §3.2::

            h̃ = Dropout(h_i);  y = g1(encoder_i(h̃));  ỹ = Dropout(y);  r = g2(decoder_{L-1-i}(ỹ))

        ``g1`` is ReLU except in the last stage (linear embedding) and ``g2`` is ReLU except in
        the first stage (linear reconstruction of the data). Minimise ``‖r − h_i‖²``.

        Args:
          x: data [n, d].
          stage: stage index ``i`` in ``0..L-1`` (static).
          deterministic: if False, apply dropout corruption (needs a ``"dropout"`` rng).

        Returns:
          ``(target, reconstruction)``, both [n, w_i] with ``w_i`` the input width of layer i.

        Raises:
          ValueError: if ``stage`` is outside ``0..L-1``.
        """
        num = self.num_layers
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < num:
            raise ValueError(f"stage must be an int in [0, {num - 1}], got {stage!r}.")
        target = jax.lax.stop_gradient(self._encode_to(x, stage))
        y = self.encoder[stage](self.dropout(target, deterministic=deterministic))
        if stage < num - 1:
            y = self.activation(y)
        r = self.decoder[num - 1 - stage](self.dropout(y, deterministic=deterministic))
        if stage > 0:
            r = self.activation(r)
        return target, r


class PretrainStage(NamedTuple):
    """One stage of DEC's pretraining schedule, as listed by ``greedy_pretrain_stages``.

    Attributes:
      stage: the ``stage`` argument of ``MLPAutoencoder.greedy_stage``, or ``None`` for the
        final end-to-end fine-tuning of the whole autoencoder (``__call__``).
      mask: a pytree of bools with the structure of the parameters: True for the parameters
        trained in this stage (use with ``optax.masked`` or ``optax.multi_transform``).
      num_steps: number of SGD iterations DEC spends on the stage.
      dropout_rate: corruption applied during the stage (0 for fine-tuning).
    """

    stage: int | None
    mask: Any
    num_steps: int
    dropout_rate: float


def _unwrap(params):
    if isinstance(params, Mapping) and set(params) == {"params"}:
        return params["params"], True
    return params, False


def greedy_pretrain_stages(
    params: Mapping[str, Any],
    *,
    layer_steps: int = 50_000,
    finetune_steps: int = 100_000,
    dropout_rate: float = 0.2,
) -> tuple[PretrainStage, ...]:
    """DEC's stacked-denoising-autoencoder pretraining schedule for an ``MLPAutoencoder``.

    DEC (§3.2, §4.3) trains each encoder/decoder pair greedily as a denoising autoencoder with
    20% dropout for 50,000 iterations (stage ``i`` pairs ``encoder_i`` with
    ``decoder_{L-1-i}``, on the output of the trained encoder layers below it), then fine-tunes
    the whole autoencoder end-to-end without dropout for 100,000 iterations: batch 256, SGD with
    learning rate 0.1 divided by 10 every 20,000 iterations, no weight decay, squared error.
    This function returns the ``L + 1`` stages with the trainable-parameter mask of each; the
    training loop is the caller's (the gradients of frozen layers are zero in
    ``greedy_stage`` anyway, the mask also keeps optimiser state and weight decay off them).

    Args:
      params: the parameters of an ``MLPAutoencoder`` (``variables["params"]`` or
        ``variables`` itself), used for the layer names and the mask structure.
      layer_steps: iterations per greedy stage; DEC's 50,000.
      finetune_steps: iterations of end-to-end fine-tuning; DEC's 100,000.
      dropout_rate: corruption of the greedy stages; DEC's 0.2.

    Returns:
      A tuple of ``PretrainStage``: stages ``0..L-1``, then the fine-tuning stage (``stage``
      None, everything trainable, no dropout).

    Raises:
      ValueError: if ``params`` lacks matching ``encoder_i``/``decoder_i`` layers, or a step
        count or the dropout rate is out of range.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import MLPAutoencoder, greedy_pretrain_stages
      >>> model = MLPAutoencoder(features=8, hidden=(6, 5), latent=2)
      >>> params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8)))["params"]
      >>> stages = greedy_pretrain_stages(params)
      >>> [(s.stage, s.num_steps, s.dropout_rate) for s in stages]
      [(0, 50000, 0.2), (1, 50000, 0.2), (2, 50000, 0.2), (None, 100000, 0.0)]
      >>> sorted(name for name, leaf in stages[0].mask.items() if leaf["kernel"])
      ['decoder_2', 'encoder_0']

    References:
      J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for Clustering
      Analysis", ICML 2016. https://arxiv.org/abs/1511.06335

      P. Vincent et al., "Stacked Denoising Autoencoders", JMLR 11, 2010.
    """
    for value, name in ((layer_steps, "layer_steps"), (finetune_steps, "finetune_steps")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    _check_rate(dropout_rate, "dropout_rate")
    inner, wrapped = _unwrap(params)
    if not isinstance(inner, Mapping):
        raise ValueError(f"params must be a mapping of layer names, got {type(inner).__name__}.")
    num = sum(1 for name in inner if str(name).startswith("encoder_"))
    expected = {f"encoder_{i}" for i in range(num)} | {f"decoder_{i}" for i in range(num)}
    if num == 0 or set(inner) != expected:
        raise ValueError(
            f"params must hold the layers encoder_0..encoder_{{L-1}} and decoder_0..decoder_"
            f"{{L-1}} of an MLPAutoencoder, got {sorted(inner)}."
        )

    def mask_for(trainable):
        mask = {
            name: jax.tree.map(lambda _, t=(name in trainable): t, sub)
            for name, sub in inner.items()
        }
        return {"params": mask} if wrapped else mask

    stages = [
        PretrainStage(
            stage=i,
            mask=mask_for({f"encoder_{i}", f"decoder_{num - 1 - i}"}),
            num_steps=layer_steps,
            dropout_rate=float(dropout_rate),
        )
        for i in range(num)
    ]
    stages.append(PretrainStage(None, mask_for(expected), finetune_steps, 0.0))
    return tuple(stages)


class ConvAutoencoder(nn.Module):
    """DCEC's convolutional autoencoder: three stride-2 convolutions, a dense bottleneck, mirrored.

    Encoder: ``Conv(32, 5×5, s2, SAME) → Conv(64, 5×5, s2, SAME) → Conv(128, 3×3, s2, P) →
    Flatten → Dense(10)``, ReLU after each convolution; the decoder mirrors it with ``Dense →
    reshape → ConvTranspose(64, 3×3, s2, P) → ConvTranspose(32, 5×5, s2, SAME) →
    ConvTranspose(c, 5×5, s2, SAME)``. As in DCEC's code, ``P`` is ``SAME`` when the height is
    divisible by 8 (32×32×3: maps 16, 8, 4) and ``VALID`` otherwise (28×28×1: maps 14, 7, 3,
    decoded back through 7, 14, 28). The embedding and the output are linear.

    ``__call__(x)`` returns ``(z, x_hat)``; ``encode``/``decode`` give each half. For DEPICT,
    ``encode_layers``/``decode_layers`` return every activation of the (optionally
    dropout-corrupted) encoder and of the decoder, for layer-wise reconstruction losses, and a
    ``ClusteringHeads`` on ``z`` gives the softmax head.

    Attributes:
      image_shape: ``(h, w, c)`` of the inputs, e.g. ``(28, 28, 1)`` or ``(32, 32, 3)``.
      features: channels of the three convolutions; default ``(32, 64, 128)``.
      latent: embedding dimension; default 10.
      dropout_rate: corruption of the input and of each convolution's output when called with
        ``deterministic=False`` (DEPICT's noisy path); default 0 (DCEC).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.nn import ConvAutoencoder
      >>> model = ConvAutoencoder(image_shape=(28, 28, 1))
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
      >>> z, x_hat = jax.eval_shape(model.apply, variables, x)
      >>> z.shape, x_hat.shape
      ((2, 10), (2, 28, 28, 1))

    References:
      X. Guo, X. Liu, E. Zhu and J. Yin, "Deep Clustering with Convolutional Autoencoders",
      ICONIP 2017. https://xifengguo.github.io/papers/ICONIP17-DCEC.pdf

      K. Ghasedi Dizaji et al., "Deep Clustering via Joint Convolutional Autoencoder Embedding
      and Relative Entropy Minimization" (DEPICT), ICCV 2017. https://arxiv.org/abs/1704.06327
    """

    image_shape: Sequence[int] = (28, 28, 1)
    features: Sequence[int] = (32, 64, 128)
    latent: int = 10
    dropout_rate: float = 0.0

    def _geometry(self):
        shape = _check_dims(self.image_shape, "image_shape")
        features = _check_dims(self.features, "features")
        if len(shape) != 3 or len(features) != 3:
            raise ValueError(
                f"image_shape must be (h, w, c) and features three channel counts, got "
                f"image_shape={shape!r}, features={features!r}."
            )
        _check_dims((self.latent,), "latent")
        _check_rate(self.dropout_rate, "dropout_rate")
        pad3 = "SAME" if shape[0] % 8 == 0 and shape[1] % 8 == 0 else "VALID"
        sizes = []
        for s in shape[:2]:
            a = -(-s // 2)
            b = -(-a // 2)
            sizes.append(-(-b // 2) if pad3 == "SAME" else (b - 3) // 2 + 1)
            if pad3 == "VALID" and (2 * sizes[-1] + 1 != b or 2 * b != a or 2 * a != s):
                raise ValueError(
                    f"image_shape {shape!r} cannot be decoded back to its size: use a height and "
                    f"width divisible by 8, or of the form 4·(2m + 1) such as 28."
                )
        return shape, features, pad3, tuple(sizes)

    def setup(self):
        shape, features, pad3, sizes = self._geometry()
        self._pad3 = pad3
        self._bottleneck = (*sizes, features[2])
        self.conv = [
            nn.Conv(features[0], (5, 5), strides=2, padding="SAME", name="conv_0"),
            nn.Conv(features[1], (5, 5), strides=2, padding="SAME", name="conv_1"),
            nn.Conv(features[2], (3, 3), strides=2, padding=pad3, name="conv_2"),
        ]
        self.embed = nn.Dense(self.latent, name="embed")
        self.dropout = nn.Dropout(self.dropout_rate)
        self.expand = nn.Dense(sizes[0] * sizes[1] * features[2], name="expand")
        self.deconv = [
            nn.ConvTranspose(features[1], (3, 3), strides=(2, 2), padding=pad3, name="deconv_0"),
            nn.ConvTranspose(features[0], (5, 5), strides=(2, 2), padding="SAME", name="deconv_1"),
            nn.ConvTranspose(shape[2], (5, 5), strides=(2, 2), padding="SAME", name="deconv_2"),
        ]

    def encode_layers(
        self, x: Float[Array, "n h w c"], *, deterministic: bool = True
    ) -> list[Float[Array, "n ..."]]:
        """Every encoder activation ``[x̃, h1, h2, h3, z]``, for ladder-style reconstruction.

        With ``deterministic=False`` (needs a ``"dropout"`` rng) the input and each
        convolution's output are corrupted by dropout at ``dropout_rate``: DEPICT's noisy
        encoder path. The clean path (``deterministic=True``) gives the targets.
        """
        if tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"x must have shape [n, {', '.join(map(str, self.image_shape))}], got "
                f"{tuple(x.shape)}."
            )
        h = self.dropout(x, deterministic=deterministic)
        layers = [h]
        for conv in self.conv:
            h = self.dropout(nn.relu(conv(h)), deterministic=deterministic)
            layers.append(h)
        layers.append(self.embed(h.reshape(h.shape[0], -1)))
        return layers

    def decode_layers(self, z: Float[Array, "n latent"]) -> list[Float[Array, "n ..."]]:
        """Every decoder activation, mirroring ``encode_layers``: ``[ĥ3, ĥ2, ĥ1, x̂]``."""
        h = nn.relu(self.expand(z)).reshape(z.shape[0], *self._bottleneck)
        layers = [h]
        for i, deconv in enumerate(self.deconv):
            h = deconv(h)
            if i < 2:
                h = nn.relu(h)
            layers.append(h)
        return layers

    def encode(
        self, x: Float[Array, "n h w c"], *, deterministic: bool = True
    ) -> Float[Array, "n latent"]:
        """Embeds images [n, h, w, c] into ``z`` [n, latent]."""
        return self.encode_layers(x, deterministic=deterministic)[-1]

    def decode(self, z: Float[Array, "n latent"]) -> Float[Array, "n h w c"]:
        """Reconstructs images [n, h, w, c] from ``z`` [n, latent]; the output is linear."""
        return self.decode_layers(z)[-1]

    def __call__(
        self, x: Float[Array, "n h w c"], *, deterministic: bool = True
    ) -> tuple[Float[Array, "n latent"], Float[Array, "n h w c"]]:
        """Returns ``(z, x_hat)``: embedding [n, latent] and reconstruction [n, h, w, c]."""
        z = self.encode(x, deterministic=deterministic)
        return z, self.decode(z)
