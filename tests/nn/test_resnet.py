"""Tests for jaxclust.nn.ResNet / ResNet18: parameter counts, shapes, BN modes, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.nn import ResNet, ResNet18


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _expected_counts(stage_sizes, widths, stem_kernel, in_channels=3):
    """(params, batch-stat entries) of a BasicBlock ResNet without classifier, from the formula."""
    conv = lambda k, cin, cout: k * k * cin * cout  # noqa: E731  (no conv biases)
    params = conv(stem_kernel, in_channels, widths[0]) + 2 * widths[0]  # conv + BN γ, β
    stats = 2 * widths[0]  # BN running mean and variance
    cin = widths[0]
    for i, (blocks, w) in enumerate(zip(stage_sizes, widths)):
        for j in range(blocks):
            params += conv(3, cin, w) + conv(3, w, w) + 2 * (2 * w)
            stats += 2 * (2 * w)
            if (i > 0 and j == 0) or cin != w:  # 1×1 projection + BN where the shape changes
                params += conv(1, cin, w) + 2 * w
                stats += 2 * w
            cin = w
    return params, stats


def _shapes(model, x):
    return jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)


def test_resnet18_cifar_parameter_count_matches_formula_and_torchvision():
    variables = _shapes(ResNet18(), jnp.zeros((2, 32, 32, 3)))
    params, stats = _expected_counts((2, 2, 2, 2), (64, 128, 256, 512), stem_kernel=3)
    assert _count(variables["params"]) == params
    assert _count(variables["batch_stats"]) == stats
    # torchvision's resnet18 has 11,689,512 parameters: its 7×7 stem (9,408 weights) replaced by a
    # 3×3 one (1,728) and its fc (512·1000 + 1000) removed gives the CIFAR backbone.
    assert params == 11_689_512 - 9_408 + 1_728 - (512 * 1000 + 1000)


def test_imagenet_stem_and_other_depths_match_formula():
    variables = _shapes(ResNet18(stem="imagenet"), jnp.zeros((1, 64, 64, 3)))
    params, _ = _expected_counts((2, 2, 2, 2), (64, 128, 256, 512), stem_kernel=7)
    assert _count(variables["params"]) == params == 11_689_512 - (512 * 1000 + 1000)
    model = ResNet(stage_sizes=(3, 4, 6, 3))  # ResNet-34
    variables = _shapes(model, jnp.zeros((1, 32, 32, 3)))
    assert _count(variables["params"]) == _expected_counts(
        (3, 4, 6, 3), (64, 128, 256, 512), stem_kernel=3
    )[0]


def test_resnet18_final_maps_are_4x4_for_cifar_and_output_is_512():
    model = ResNet18()
    x = jnp.zeros((2, 32, 32, 3))
    variables = _shapes(model, x)
    fn = functools.partial(model.apply, train=False, capture_intermediates=True)
    out, state = jax.eval_shape(fn, variables, x)
    assert out.shape == (2, 512)
    assert state["intermediates"]["stage4_block2"]["__call__"][0].shape == (2, 4, 4, 512)
    assert state["intermediates"]["stage1_block2"]["__call__"][0].shape == (2, 32, 32, 64)


def _random_variables(model, x):
    rng = np.random.default_rng(0)
    shapes = _shapes(model, x)
    params = jax.tree.map(lambda s: 0.1 * rng.standard_normal(s.shape), shapes["params"])
    stats = jax.tree.map(lambda s: np.zeros(s.shape), shapes["batch_stats"])
    stats = {  # running variances start at one, as flax's init
        name: jax.tree_util.tree_map_with_path(
            lambda p, a: a + 1 if p[-1].key == "var" else a, sub
        )
        for name, sub in stats.items()
    }
    return {"params": params, "batch_stats": stats}


def test_resnet18_forward_train_and_eval_modes():
    model = ResNet18()
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 32, 32, 3)))
    variables = _random_variables(model, x)

    @jax.jit
    def run(v):
        train_out, updates = model.apply(v, x, train=True, mutable=["batch_stats"])
        eval_out = model.apply(v, x, train=False)
        return train_out, updates, eval_out

    train_out, updates, eval_out = run(variables)
    assert train_out.shape == eval_out.shape == (2, 512)
    assert np.isfinite(train_out).all() and np.isfinite(eval_out).all()
    assert not np.allclose(train_out, eval_out)  # batch statistics vs running averages
    # Training updates the running stats with momentum 0.9 (torch 0.1): mean = 0.1·batch mean.
    stem_mean = updates["batch_stats"]["stem_bn"]["mean"]
    stem_out = jax.lax.conv_general_dilated(
        x, variables["params"]["stem_conv"]["kernel"], (1, 1), ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(stem_mean, 0.1 * np.asarray(stem_out).mean(axis=(0, 1, 2)),
                               rtol=1e-8, atol=1e-12)


def test_resnet_gradients_reach_every_parameter_on_a_small_network():
    # The same BasicBlock code path as ResNet-18, at a size that compiles quickly.
    model = ResNet(stage_sizes=(1, 1), widths=(4, 8))
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(3, 8, 8, 3)))
    variables = _random_variables(model, x)

    @jax.jit
    def grads(params):
        def loss(p):
            out, _ = model.apply(
                {"params": p, "batch_stats": variables["batch_stats"]},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.sum(out**2)

        return jax.grad(loss)(params)

    g = grads(variables["params"])
    assert "proj" in g["stage2_block1"] and "proj" not in g["stage1_block1"]
    for leaf in jax.tree.leaves(g):
        assert np.isfinite(leaf).all() and np.any(leaf != 0)


def test_resnet_bad_input():
    with pytest.raises(ValueError, match=r"stem must be one of \['cifar', 'imagenet'\]"):
        _shapes(ResNet18(stem="tiny"), jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="stage_sizes and widths must be non-empty"):
        _shapes(ResNet(stage_sizes=(2, 2), widths=(4,)), jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match=r"x must have rank 4 with shape \[n, h, w, c\]"):
        _shapes(ResNet18(), jnp.zeros((32, 32, 3)))
