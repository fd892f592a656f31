"""Tests for jaxclust.nn.ViT: parameter count, a NumPy forward pass, jit, gradients, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.nn import ViT


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _expected_count(image, patch, width, depth, mlp_ratio):
    h, w, c = image
    tokens = (h // patch) * (w // patch) + 1
    hidden = int(round(mlp_ratio * width))
    embed = patch * patch * c * width + width + width + tokens * width  # conv, CLS, positions
    block = (
        2 * (2 * width)  # two LayerNorms
        + 4 * (width * width + width)  # q, k, v and output projections
        + (width * hidden + hidden) + (hidden * width + width)  # MLP
    )
    return embed + depth * block + 2 * width  # final LayerNorm


def test_parameter_count_matches_formula():
    model = ViT(patch_size=4, width=48, depth=3, num_heads=6, mlp_ratio=2.5)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    assert _count(variables) == _expected_count((32, 32, 3), 4, 48, 3, 2.5)
    # ViT-Tiny/16 at 224: the published 5.7M parameters minus the 1000-way head (192·1000+1000).
    tiny = ViT(patch_size=16, width=192, depth=12, num_heads=3)
    variables = jax.eval_shape(tiny.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    assert _count(variables) == _expected_count((224, 224, 3), 16, 192, 12, 4.0)
    assert abs(_count(variables) + 193_000 - 5_717_416) == 0


def _layer_norm(x, p, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _np_vit(x, p, patch, heads, depth):
    n, h, w, c = x.shape
    # Patches in row-major order, each flattened as (row, column, channel).
    patches = x.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    patches = patches.reshape(n, -1, patch * patch * c)
    kernel = p["patch_embed"]["kernel"].reshape(-1, p["patch_embed"]["kernel"].shape[-1])
    t = patches @ kernel + p["patch_embed"]["bias"]
    width = t.shape[-1]
    t = np.concatenate([np.broadcast_to(p["cls"], (n, 1, width)), t], axis=1) + p["pos_embedding"]
    dh = width // heads
    for i in range(depth):
        b = p[f"block{i}"]
        y = _layer_norm(t, b["ln1"])
        att = b["attention"]
        q, k, v = (
            np.einsum("ntd,dhe->nthe", y, att[name]["kernel"]) + att[name]["bias"]
            for name in ("query", "key", "value")
        )
        logits = np.einsum("nqhe,nkhe->nhqk", q, k) / math.sqrt(dh)
        logits -= logits.max(-1, keepdims=True)
        a = np.exp(logits)
        a /= a.sum(-1, keepdims=True)
        o = np.einsum("nhqk,nkhe->nqhe", a, v)
        t = t + np.einsum("nqhe,hed->nqd", o, att["out"]["kernel"]) + att["out"]["bias"]
        y = _layer_norm(t, b["ln2"])
        y = _gelu_tanh(y @ b["mlp_in"]["kernel"] + b["mlp_in"]["bias"])
        t = t + y @ b["mlp_out"]["kernel"] + b["mlp_out"]["bias"]
    t = _layer_norm(t, p["ln_final"])
    return t[:, 0], t[:, 1:].mean(1)


def test_forward_matches_numpy_transcription_and_runs_under_jit():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 8, 8, 3))
    model = ViT(patch_size=4, width=8, depth=2, num_heads=2, mlp_ratio=2.0)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    # NumPy parameters: random, so that every term (biases, CLS, positions) matters.
    params = jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape), shapes)["params"]
    mean_model = ViT(patch_size=4, width=8, depth=2, num_heads=2, mlp_ratio=2.0, pool="mean")

    @jax.jit
    def run(p):
        return model.apply({"params": p}, x), mean_model.apply({"params": p}, x)

    cls_out, mean_out = run(params)
    cls_ref, mean_ref = _np_vit(x, jax.tree.map(np.asarray, params), 4, 2, 2)
    assert cls_out.shape == (2, 8)
    np.testing.assert_allclose(cls_out, cls_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mean_out, mean_ref, rtol=1e-9, atol=1e-10)


def test_gradients_reach_every_parameter_and_dropout_is_train_only():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 8, 8, 1))
    model = ViT(patch_size=4, width=8, depth=1, num_heads=2, dropout_rate=0.5)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    params = jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape), shapes)["params"]

    @jax.jit
    def run(p):
        grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x) ** 2))(p)
        eval1 = model.apply({"params": p}, x)
        eval2 = model.apply({"params": p}, x, train=False)
        train = model.apply({"params": p}, x, train=True, rngs={"dropout": jax.random.key(0)})
        return grads, eval1, eval2, train

    grads, eval1, eval2, train = run(params)
    for leaf in jax.tree.leaves(grads):
        assert np.isfinite(leaf).all() and np.any(leaf != 0)
    np.testing.assert_array_equal(eval1, eval2)
    assert not np.allclose(train, eval1)


def test_bad_input():
    x = jnp.zeros((1, 30, 30, 3))
    with pytest.raises(ValueError, match="patch_size must divide the image height and width"):
        jax.eval_shape(ViT(patch_size=4).init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="num_heads must divide width"):
        jax.eval_shape(ViT(width=10, num_heads=3).init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"pool must be one of \['cls', 'mean'\]"):
        jax.eval_shape(ViT(pool="max").init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"x must have rank 4"):
        jax.eval_shape(ViT().init, jax.random.key(0), jnp.zeros((8, 8, 3)))
