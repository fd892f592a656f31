"""Tests for DeepCluster helpers (jaxclust.losses._deepcluster)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from jaxclust.losses import align_labels, class_balanced_weights, recluster, sample_class_balanced


def test_align_labels_maximises_agreement_brute_force(rng):
    old = rng.integers(0, 4, 40)
    new = np.where(rng.uniform(size=40) < 0.8, np.array([2, 0, 3, 1])[old], rng.integers(0, 4, 40))
    out = np.asarray(jax.jit(lambda a, b: align_labels(a, b, num_clusters=4))(jnp.asarray(new), jnp.asarray(old)))
    best = max(np.mean(np.array(perm)[new] == old) for perm in itertools.permutations(range(4)))
    assert np.mean(out == old) == best
    # A renaming: clusters of `new` map one-to-one onto clusters of `out`.
    assert len({(a, b) for a, b in zip(new, out)}) == len(set(new))


def test_recluster_aligns_to_previous_labels(rng):
    x = np.concatenate([rng.normal(size=(10, 2)) + c for c in ([0, 0], [8, 0], [0, 8])])
    previous = np.repeat([2, 0, 1], 10)
    out = recluster(jnp.asarray(x), k=3, key=jax.random.key(0), previous_labels=jnp.asarray(previous))
    np.testing.assert_array_equal(out, previous)


def test_class_balanced_weights_numpy_where_and_sharding(rng):
    labels = rng.integers(0, 5, 32)
    labels[labels == 4] = 3  # class 4 empty
    where = rng.uniform(size=32) < 0.75
    w = class_balanced_weights(jnp.asarray(labels), num_clusters=5, where=jnp.asarray(where))
    valid = labels[where]
    counts = np.bincount(valid, minlength=5)
    ref = np.where(where, len(valid) / ((counts > 0).sum() * np.maximum(counts[labels], 1)), 0.0)
    np.testing.assert_allclose(w, ref, rtol=1e-12)
    per_class = np.bincount(labels, weights=np.asarray(w), minlength=5)
    np.testing.assert_allclose(per_class[counts > 0], len(valid) / (counts > 0).sum(), rtol=1e-12)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    mapped = jax.jit(jax.shard_map(
        lambda y, m: class_balanced_weights(y, num_clusters=5, where=m, axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P("data"),
    ))(jnp.asarray(labels), jnp.asarray(where))
    np.testing.assert_allclose(mapped, w, rtol=1e-12)


def test_sampler_is_uniform_over_nonempty_classes():
    labels = jnp.asarray(np.repeat([0, 1, 3], [50, 10, 2]))
    where = jnp.ones(62, bool).at[0].set(False)
    idx = np.asarray(jax.jit(lambda k: sample_class_balanced(k, labels, 6000, num_clusters=4, where=where))(jax.random.key(0)))
    assert 0 not in idx  # masked
    freq = np.bincount(np.asarray(labels)[idx], minlength=4) / 6000
    np.testing.assert_allclose(freq, [1 / 3, 1 / 3, 0, 1 / 3], atol=0.03)


class TestBadInput:
    def test_labels(self):
        with pytest.raises(TypeError, match="new_labels must have an integer dtype"):
            align_labels(jnp.zeros(4), jnp.zeros(4, int), num_clusters=2)
        with pytest.raises(ValueError, match="new_labels and old_labels must have the same length"):
            align_labels(jnp.zeros(4, int), jnp.zeros(5, int), num_clusters=2)

    def test_counts(self):
        with pytest.raises(ValueError, match="num_samples must be >= 1"):
            sample_class_balanced(jax.random.key(0), jnp.zeros(4, int), 0, num_clusters=2)
