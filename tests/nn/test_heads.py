"""Tests for jaxclust.nn heads: projection, prototypes, multi-head clustering, DEC's layer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.nn import (
    ClusteringHeads,
    DECClusteringLayer,
    ProjectionHead,
    PrototypeHead,
    normalize_prototypes,
)


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _random(model, x, rng, **kw):
    shapes = jax.eval_shape(functools.partial(model.init, **kw), jax.random.key(0), x)
    return jax.tree.map(lambda s: rng.standard_normal(s.shape), shapes)


def _unit(a, axis=-1):
    return a / np.linalg.norm(a, axis=axis, keepdims=True)


# ------------------------------------------------------------------ projection head


@pytest.mark.parametrize("batch_norm", [False, True])
def test_projection_head_matches_numpy_and_counts(batch_norm):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6))
    head = ProjectionHead(features=3, hidden=7, num_layers=3, batch_norm=batch_norm)
    variables = _random(head, x, rng)
    # Hidden Dense layers drop their bias when followed by BatchNorm (γ, β replace it).
    hidden_params = (6 * 7 + 7 * 7) + (0 if batch_norm else 2 * 7) + (4 * 7 if batch_norm else 0)
    assert _count(variables["params"]) == hidden_params + 7 * 3 + 3

    out, _ = jax.jit(functools.partial(head.apply, train=True, mutable=["batch_stats"]))(
        variables, x
    )
    p = jax.tree.map(np.asarray, variables["params"])
    h = x
    for i in range(2):
        h = h @ p[f"dense{i}"]["kernel"] + (0 if batch_norm else p[f"dense{i}"]["bias"])
        if batch_norm:  # training mode: batch statistics, biased variance
            bn = p[f"bn{i}"]
            h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * bn["scale"] + bn["bias"]
        h = np.maximum(h, 0)
    ref = _unit(h @ p["dense2"]["kernel"] + p["dense2"]["bias"])
    np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-10)


def test_projection_head_default_width_zero_input_and_gradients():
    head = ProjectionHead(features=4)
    x = jnp.zeros((2, 5))
    variables = jax.eval_shape(head.init, jax.random.key(0), x)
    assert variables["params"]["dense0"]["kernel"].shape == (5, 5)  # hidden = input width (SimCLR)
    variables = _random(head, x, np.random.default_rng(1))
    variables["params"]["dense0"]["bias"] = np.zeros(5)  # zero input → zero pre-normalisation
    variables["params"]["dense1"]["bias"] = np.zeros(4)

    @jax.jit
    def run(v):
        return head.apply(v, x), jax.grad(lambda v: jnp.sum(head.apply(v, x + 1.0)))(v)

    out, grads = run(variables)
    np.testing.assert_array_equal(out, np.zeros((2, 4)))  # the zero vector stays zero, no NaN
    assert all(np.isfinite(g).all() and np.any(g != 0) for g in jax.tree.leaves(grads))


# ------------------------------------------------------------------ prototype head


def test_prototype_head_is_cosine_over_temperature():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 3))
    head = PrototypeHead(num_prototypes=5, temperature=0.1)
    variables = _random(head, z, rng)
    kernel = np.asarray(variables["params"]["prototypes"]["kernel"])
    assert kernel.shape == (3, 5) and _count(variables) == 15

    raw = PrototypeHead(num_prototypes=5, normalize_weights=False)

    @jax.jit
    def run(v):
        return head.apply(v, z), raw.apply(v, z), raw.apply(normalize_prototypes(v), z)

    logits, raw_logits, renormalised = run(variables)
    np.testing.assert_allclose(logits, _unit(z) @ _unit(kernel, 0) / 0.1, rtol=1e-10)
    np.testing.assert_allclose(raw_logits, _unit(z) @ kernel, rtol=1e-10)
    # SwAV: raw dot products with re-normalised prototypes are the cosine logits.
    np.testing.assert_allclose(renormalised, logits * 0.1, rtol=1e-10)


def test_normalize_prototypes_touches_only_prototypes_and_jits():
    rng = np.random.default_rng(3)
    params = {
        "encoder": {"dense": {"kernel": rng.standard_normal((3, 4)), "bias": np.ones(4)}},
        "head": {"prototypes": {"kernel": rng.standard_normal((4, 6))}},
    }
    out = jax.jit(normalize_prototypes)(params)
    np.testing.assert_allclose(np.linalg.norm(out["head"]["prototypes"]["kernel"], axis=0), 1.0)
    np.testing.assert_allclose(
        out["head"]["prototypes"]["kernel"], _unit(params["head"]["prototypes"]["kernel"], 0)
    )
    np.testing.assert_array_equal(
        out["encoder"]["dense"]["kernel"], params["encoder"]["dense"]["kernel"]
    )
    assert jax.tree.structure(out) == jax.tree.structure(params)
    with pytest.raises(ValueError, match="holds no 'prototypes' kernel"):
        normalize_prototypes({"encoder": params["encoder"]})


def test_prototype_head_bad_input():
    z = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        jax.eval_shape(PrototypeHead(4, temperature=0.0).init, jax.random.key(0), z)
    with pytest.raises(ValueError, match="num_prototypes must be a positive int"):
        jax.eval_shape(PrototypeHead(0).init, jax.random.key(0), z)


# ------------------------------------------------------------------ multi-head clustering


def test_clustering_heads_equal_sizes_match_per_head_dense():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))
    heads = ClusteringHeads(num_clusters=4, num_heads=3)
    variables = jax.jit(heads.init)(jax.random.key(0), x)  # the real initialiser, once
    p = variables["params"]
    assert p["kernel"].shape == (3, 5, 4) and p["bias"].shape == (3, 4)
    assert _count(variables) == 3 * (5 * 4 + 4)
    # Each head's kernel is initialised independently with fan-in 5 (not 3·5).
    assert not np.allclose(p["kernel"][0], p["kernel"][1])
    assert 0.1 < np.asarray(p["kernel"]).std() * np.sqrt(5) < 2.0
    variables = _random(heads, x, rng)
    logits = jax.jit(heads.apply)(variables, x)
    assert logits.shape == (3, 6, 4)
    for h in range(3):
        ref = x @ variables["params"]["kernel"][h] + variables["params"]["bias"][h]
        np.testing.assert_allclose(logits[h], ref, rtol=1e-10)


def test_clustering_heads_uneven_sizes_split_one_dense_and_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5))
    heads = ClusteringHeads(num_clusters=(2, 7, 3))
    variables = _random(heads, x, rng)
    assert _count(variables) == 5 * 12 + 12

    @jax.jit
    def run(v):
        outs = heads.apply(v, x)
        def loss(v):
            return sum(jnp.sum(jax.nn.log_softmax(o)[:, 0]) for o in heads.apply(v, x))

        return outs, jax.grad(loss)(v)

    outs, grads = run(variables)
    assert [o.shape for o in outs] == [(6, 2), (6, 7), (6, 3)]
    full = x @ variables["params"]["dense"]["kernel"] + variables["params"]["dense"]["bias"]
    np.testing.assert_allclose(np.concatenate(outs, axis=-1), full, rtol=1e-10)
    assert all(np.isfinite(g).all() and np.any(g != 0) for g in jax.tree.leaves(grads))


def test_clustering_heads_bad_input():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        jax.eval_shape(ClusteringHeads(4, num_heads=0).init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="each entry of num_clusters must be a positive int"):
        jax.eval_shape(ClusteringHeads((3, 0)).init, jax.random.key(0), x)


# ------------------------------------------------------------------ DEC clustering layer


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_dec_layer_matches_student_t_and_has_finite_gradients(alpha):
    rng = np.random.default_rng(6)
    z = rng.standard_normal((7, 3))
    layer = DECClusteringLayer(num_clusters=4, alpha=alpha)
    variables = _random(layer, z, rng)
    mu = np.asarray(variables["params"]["centroids"])
    assert mu.shape == (4, 3)
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    kernel = (1 + d2 / alpha) ** (-(alpha + 1) / 2)  # DEC Eq. 1
    ref = kernel / kernel.sum(1, keepdims=True)

    @jax.jit
    def run(v):
        q = layer.apply(v, z)
        return q, jax.grad(lambda v: jnp.sum(jnp.log(layer.apply(v, z))[:, 0]))(v)

    q, grads = run(variables)
    np.testing.assert_allclose(q, ref, rtol=1e-10)
    g = grads["params"]["centroids"]
    assert np.isfinite(g).all() and np.any(g != 0)


def test_dec_layer_bad_input():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        jax.eval_shape(DECClusteringLayer(3, alpha=0.0).init, jax.random.key(0), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"z must have rank 2 with shape \[n, d\]"):
        jax.eval_shape(DECClusteringLayer(3).init, jax.random.key(0), jnp.zeros((2, 2, 2)))
