"""Tests for jaxclust.nn autoencoders: DEC's MLP (with greedy stages) and DCEC's conv AE."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.nn import ConvAutoencoder, MLPAutoencoder, PretrainStage, greedy_pretrain_stages


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _dense_count(dims):
    # A Dense layer a → b has a·b weights and b biases.
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


# ------------------------------------------------------------------ MLP autoencoder


def test_dec_parameter_count_matches_architecture_formula():
    model = MLPAutoencoder(features=784)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 784)))
    dims = [784, 500, 500, 2000, 10]
    expected = _dense_count(dims) + _dense_count(dims[::-1])
    assert _count(variables) == expected
    kernels = [variables["params"][f"encoder_{i}"]["kernel"].shape for i in range(4)]
    assert kernels == [(784, 500), (500, 500), (500, 2000), (2000, 10)]
    kernels = [variables["params"][f"decoder_{i}"]["kernel"].shape for i in range(4)]
    assert kernels == [(10, 2000), (2000, 500), (500, 500), (500, 784)]


def _random_variables(model, *args):
    # Parameters of the right shapes from NumPy: compiling random initialisers is slow on CPU.
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(model.init, jax.random.key(0), *args)
    return jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape), shapes)


def _np_mlp(x, layers, relu_last=False):
    h = x
    for i, p in enumerate(layers):
        h = h @ np.asarray(p["kernel"]) + np.asarray(p["bias"])
        if i < len(layers) - 1 or relu_last:
            h = np.maximum(h, 0)
    return h


@pytest.fixture(scope="module")
def small_ae():
    model = MLPAutoencoder(features=6, hidden=(5, 4), latent=3)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((7, 6)))
    variables = _random_variables(model, x)
    return model, variables, x


def test_mlp_forward_matches_numpy_with_linear_bottleneck_and_output(small_ae):
    model, variables, x = small_ae
    p = variables["params"]
    z, x_hat = jax.jit(model.apply)(variables, x)
    z_ref = _np_mlp(np.asarray(x), [p[f"encoder_{i}"] for i in range(3)])
    x_ref = _np_mlp(z_ref, [p[f"decoder_{i}"] for i in range(3)])
    np.testing.assert_allclose(z, z_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_hat, x_ref, rtol=1e-10, atol=1e-12)
    # Linear embedding and reconstruction: both take negative values.
    assert (np.asarray(z) < 0).any() and (np.asarray(x_hat) < 0).any()
    enc = jax.jit(functools.partial(model.apply, method=MLPAutoencoder.encode))(variables, x)
    dec = jax.jit(functools.partial(model.apply, method=MLPAutoencoder.decode))(variables, enc)
    np.testing.assert_allclose(enc, z, rtol=1e-12)
    np.testing.assert_allclose(dec, x_hat, rtol=1e-12)


def test_mlp_activation_is_applied_between_layers_only(small_ae):
    _, variables, x = small_ae
    model = MLPAutoencoder(features=6, hidden=(5, 4), latent=3, activation=jax.nn.leaky_relu)
    p = variables["params"]

    def np_leaky(h, layers):
        for i, layer in enumerate(layers):
            h = h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"])
            if i < len(layers) - 1:
                h = np.where(h >= 0, h, 0.01 * h)
        return h

    z, x_hat = jax.jit(model.apply)(variables, x)
    z_ref = np_leaky(np.asarray(x), [p[f"encoder_{i}"] for i in range(3)])
    np.testing.assert_allclose(z, z_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_hat, np_leaky(z_ref, [p[f"decoder_{i}"] for i in range(3)]),
                               rtol=1e-10, atol=1e-12)
    relu_z, _ = jax.jit(MLPAutoencoder(features=6, hidden=(5, 4), latent=3).apply)(variables, x)
    assert not np.allclose(z, relu_z)  # the random weights do produce negative pre-activations


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_greedy_stage_matches_dec_denoising_pair(small_ae, stage):
    model, variables, x = small_ae
    p = variables["params"]
    target, recon = jax.jit(
        functools.partial(model.apply, method=MLPAutoencoder.greedy_stage), static_argnums=2
    )(variables, x, stage)
    enc = [p[f"encoder_{i}"] for i in range(3)]
    # Input of stage i: the encoder layers below it, all ReLU (none of them is the embedding).
    t_ref = _np_mlp(np.asarray(x), enc[:stage], relu_last=True) if stage else np.asarray(x)
    y = t_ref @ np.asarray(enc[stage]["kernel"]) + np.asarray(enc[stage]["bias"])
    if stage < 2:  # g1 is linear only for the last pair (the embedding)
        y = np.maximum(y, 0)
    dec = p[f"decoder_{2 - stage}"]
    r = y @ np.asarray(dec["kernel"]) + np.asarray(dec["bias"])
    if stage > 0:  # g2 is linear only for the first pair (reconstructs the data)
        r = np.maximum(r, 0)
    np.testing.assert_allclose(target, t_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(recon, r, rtol=1e-10, atol=1e-12)


def test_greedy_stage_gradients_only_reach_its_pair_and_dropout_corrupts(small_ae):
    model, variables, x = small_ae
    stages = greedy_pretrain_stages(variables)

    def loss(params, stage, deterministic):
        t, r = model.apply(
            params,
            x,
            stage,
            deterministic=deterministic,
            method=MLPAutoencoder.greedy_stage,
            rngs={"dropout": jax.random.key(3)},
        )
        return jnp.sum((t - r) ** 2)

    @jax.jit
    def run(v):
        grads = [jax.grad(loss)(v, st.stage, False) for st in stages[:-1]]
        clean = model.apply(v, x, 0, method=MLPAutoencoder.greedy_stage)
        noisy = model.apply(
            v,
            x,
            0,
            deterministic=False,
            method=MLPAutoencoder.greedy_stage,
            rngs={"dropout": jax.random.key(3)},
        )
        return grads, clean, noisy

    all_grads, (t0, r0), (t1, r1) = run(variables)
    for st, grads in zip(stages, all_grads):
        for g, m in zip(jax.tree.leaves(grads), jax.tree.leaves(st.mask)):
            assert bool(jnp.any(g != 0)) == m
    np.testing.assert_array_equal(t0, t1)  # the target is never corrupted
    assert not np.allclose(r0, r1)


def test_full_autoencoder_gradient_reaches_every_parameter(small_ae):
    model, variables, x = small_ae
    grads = jax.jit(jax.grad(lambda v: jnp.sum((model.apply(v, x)[1] - x) ** 2)))(variables)
    assert all(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_greedy_pretrain_stages_schedule_and_masks(small_ae):
    _, variables, _ = small_ae
    stages = greedy_pretrain_stages(variables, layer_steps=7, finetune_steps=11, dropout_rate=0.1)
    assert all(isinstance(s, PretrainStage) for s in stages)
    assert [s.stage for s in stages] == [0, 1, 2, None]
    assert [s.num_steps for s in stages] == [7, 7, 7, 11]
    assert [s.dropout_rate for s in stages] == [0.1, 0.1, 0.1, 0.0]
    for s in stages:
        assert jax.tree.structure(s.mask) == jax.tree.structure(variables)
    for i in range(3):
        trained = {n for n, sub in stages[i].mask["params"].items() if sub["kernel"]}
        assert trained == {f"encoder_{i}", f"decoder_{2 - i}"}
        assert all(sub["bias"] == sub["kernel"] for sub in stages[i].mask["params"].values())
    assert all(jax.tree.leaves(stages[-1].mask))
    # The unwrapped params give the unwrapped structure.
    inner = greedy_pretrain_stages(variables["params"])
    assert jax.tree.structure(inner[0].mask) == jax.tree.structure(variables["params"])


def test_greedy_pretrain_stages_bad_input(small_ae):
    _, variables, _ = small_ae
    with pytest.raises(ValueError, match="encoder_0..encoder_"):
        greedy_pretrain_stages({"params": {"dense": {"kernel": 1}}})
    with pytest.raises(ValueError, match="layer_steps must be an int >= 0"):
        greedy_pretrain_stages(variables, layer_steps=-1)
    with pytest.raises(ValueError, match=r"dropout_rate must lie in \[0, 1\)"):
        greedy_pretrain_stages(variables, dropout_rate=1.0)


def test_mlp_bad_configuration(small_ae):
    _, variables, x = small_ae
    with pytest.raises(ValueError, match="hidden must be a non-empty sequence"):
        MLPAutoencoder(features=6, hidden=()).init(jax.random.key(0), x)
    model = MLPAutoencoder(features=6, hidden=(5, 4), latent=3)
    with pytest.raises(ValueError, match=r"stage must be an int in \[0, 2\]"):
        model.apply(variables, x, 3, method=MLPAutoencoder.greedy_stage)


# ------------------------------------------------------------------ convolutional autoencoder


def _conv_count(k, cin, cout):
    return k * k * cin * cout + cout


@pytest.mark.parametrize(
    ("shape", "bottleneck"), [((28, 28, 1), (3, 3, 128)), ((32, 32, 3), (4, 4, 128))]
)
def test_conv_autoencoder_parameter_count_and_shapes(shape, bottleneck):
    model = ConvAutoencoder(image_shape=shape)
    x = jnp.zeros((2, *shape))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    c = shape[2]
    flat = int(np.prod(bottleneck))
    expected = (
        _conv_count(5, c, 32) + _conv_count(5, 32, 64) + _conv_count(3, 64, 128)
        + (flat * 10 + 10) + (10 * flat + flat)
        + _conv_count(3, 128, 64) + _conv_count(5, 64, 32) + _conv_count(5, 32, c)
    )
    assert _count(variables) == expected
    z, x_hat = jax.eval_shape(model.apply, variables, x)
    assert z.shape == (2, 10) and x_hat.shape == (2, *shape)
    # The encoder's last maps have the DCEC bottleneck size.
    _, state = jax.eval_shape(
        functools.partial(model.apply, capture_intermediates=True), variables, x
    )
    assert state["intermediates"]["conv_2"]["__call__"][0].shape == (2, *bottleneck)


def test_conv_autoencoder_forward_jit_and_gradients():
    model = ConvAutoencoder(image_shape=(28, 28, 1), features=(4, 6, 8), latent=3)
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 28, 28, 1)))
    variables = _random_variables(model, x)

    @jax.jit
    def run(v):
        (z, x_hat), state = model.apply(v, x, capture_intermediates=True)
        grads = jax.grad(lambda v: jnp.mean((model.apply(v, x)[1] - x) ** 2))(v)
        z_enc = model.apply(v, x, method=ConvAutoencoder.encode)
        return z, x_hat, state["intermediates"]["conv_0"]["__call__"][0], grads, z_enc

    z, x_hat, h1, grads, z_enc = run(variables)
    assert z.shape == (2, 3) and x_hat.shape == x.shape
    np.testing.assert_allclose(z, z_enc, rtol=1e-10, atol=1e-12)
    # The encoder's first layer is a SAME stride-2 5×5 convolution: check one output entry.
    kernel = np.asarray(variables["params"]["conv_0"]["kernel"])
    bias = np.asarray(variables["params"]["conv_0"]["bias"])
    padded = np.pad(np.asarray(x[0, :, :, 0]), ((1, 2), (1, 2)))  # SAME for 28, k=5, s=2
    patch = padded[2 * 5 : 2 * 5 + 5, 2 * 7 : 2 * 7 + 5]
    ref = np.sum(patch * kernel[:, :, 0, 0]) + bias[0]
    np.testing.assert_allclose(h1[0, 5, 7, 0], ref, rtol=1e-10)
    assert all(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads))


def test_conv_autoencoder_layers_mirror_and_dropout_corrupts_only_when_asked():
    model = ConvAutoencoder(image_shape=(28, 28, 1), features=(4, 6, 8), latent=3, dropout_rate=0.5)
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 28, 28, 1)))
    variables = _random_variables(model, x)

    @jax.jit
    def run(v):
        def layers(deterministic):
            return model.apply(
                v,
                x,
                deterministic=deterministic,
                method=ConvAutoencoder.encode_layers,
                rngs={"dropout": jax.random.key(0)},
            )

        clean, noisy = layers(True), layers(False)
        decoded = model.apply(v, clean[-1], method=ConvAutoencoder.decode_layers)
        return clean, noisy, decoded, model.apply(v, x)

    clean, noisy, decoded, (z, x_hat) = run(variables)
    assert [a.shape for a in clean] == [(2, 28, 28, 1), (2, 14, 14, 4), (2, 7, 7, 6), (2, 3, 3, 8),
                                        (2, 3)]
    # The decoder mirrors the encoder, so each decoded layer can be compared with its target.
    assert [a.shape for a in decoded] == [a.shape for a in clean[1:4][::-1]] + [x.shape]
    np.testing.assert_array_equal(clean[0], x)
    np.testing.assert_allclose(clean[-1], z, rtol=1e-12)
    np.testing.assert_allclose(decoded[-1], x_hat, rtol=1e-12)
    # Dropout zeroes about half the entries and rescales the others by 1/(1 - 0.5).
    kept = np.asarray(noisy[0]) != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(np.asarray(noisy[0])[kept], 2 * np.asarray(x)[kept], rtol=1e-12)


def test_conv_autoencoder_bad_input():
    with pytest.raises(ValueError, match="cannot be decoded back"):
        jax.eval_shape(ConvAutoencoder(image_shape=(30, 30, 1)).init, jax.random.key(0),
                       jnp.zeros((1, 30, 30, 1)))
    model = ConvAutoencoder(image_shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"x must have shape \[n, 28, 28, 1\]"):
        jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))


def test_mlp_kernel_and_bias_initialisers_reach_every_layer():
    # PyTorch's nn.Linear default U(±1/√fan_in) through variance_scaling(1/3, fan_in, uniform).
    init = jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    model = MLPAutoencoder(features=64, hidden=(48, 96), latent=5, kernel_init=init,
                           bias_init=jax.nn.initializers.constant(0.5))
    params = model.init(jax.random.key(0), jnp.zeros((1, 64)))["params"]
    assert len(params) == 6
    for name, layer in params.items():
        fan_in = layer["kernel"].shape[0]
        bound = 1 / np.sqrt(fan_in)
        w = np.asarray(layer["kernel"])
        assert np.abs(w).max() <= bound, name
        assert np.abs(w).max() > 0.9 * bound, name  # uniform over the whole interval
        np.testing.assert_array_equal(np.asarray(layer["bias"]), 0.5)
