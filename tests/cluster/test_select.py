"""Tests for jaxclust.cluster.choose_k, format_choose_k and plot_choose_k."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from jaxclust.cluster import ChooseKResult, choose_k, format_choose_k, plot_choose_k
from jaxclust.cluster._select import _elbow

# Four well-separated spherical blobs: every criterion, AIC included, picks 4 for data seeds 0-3.
X, _ = make_blobs(160, centers=[[-6, -6], [6, -6], [-6, 6], [6, 6]], cluster_std=1.0, random_state=0)
KS = [2, 3, 4, 5, 6]
INITS = {k: kmeans_plusplus(X, k, random_state=0)[0] for k in KS}


@pytest.fixture(scope="module")
def result():
    return choose_k(jnp.asarray(X), KS, key=jax.random.key(0), covariance_type="spherical",
                    n_init=1, kmeans_init=INITS)


def test_every_criterion_picks_the_true_k(result):
    assert (result.best_elbow, result.best_silhouette, result.best_bic, result.best_aic) == (4, 4, 4, 4)
    np.testing.assert_array_equal(result.ks, KS)
    for name in ("inertia", "silhouette", "bic", "aic"):
        values = getattr(result, name)
        assert values.shape == (len(KS),) and np.isfinite(values).all()


def test_inertia_and_silhouette_match_sklearn_from_same_init(result):
    for i, k in enumerate(KS):
        ref = KMeans(k, init=INITS[k], n_init=1, algorithm="lloyd").fit(X)
        np.testing.assert_allclose(result.inertia[i], ref.inertia_, rtol=1e-9)
        np.testing.assert_allclose(result.silhouette[i], silhouette_score(X, ref.labels_), rtol=1e-9)


def test_elbow_is_the_kneedle_point():
    ks = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # Normalised chord distance (1 − k̃) − Ĩ: [0, 0.25, 0.45, 0.2, 0] → elbow at k = 3.
    inertia = np.array([100.0, 75.0, 10.0, 5.0, 0.0]) * np.array([1, 1, 1, 1, 1])
    scaled = (1 - (ks - 1) / 4) - inertia / 100
    assert _elbow(ks, inertia) == int(ks[np.argmax(scaled)]) == 3
    assert _elbow(np.array([2.0, 3.0]), np.array([5.0, 1.0])) == 2


def test_subset_of_criteria_and_table(result):
    # Same static options as the fixture for k-means: the compiled programs are reused.
    only = choose_k(jnp.asarray(X), [2, 3, 4], key=jax.random.key(0),
                    criteria=("inertia", "silhouette"), kmeans_init=INITS)
    assert only.bic is None and only.aic is None and only.best_bic is None and only.best_aic is None
    np.testing.assert_allclose(only.inertia, result.inertia[:3], rtol=1e-12)
    np.testing.assert_allclose(only.silhouette, result.silhouette[:3], rtol=1e-12)
    text = result.table()
    assert text == format_choose_k(result)
    lines = text.splitlines()
    assert lines[0].split() == ["k", "inertia", "silhouette", "bic", "aic"]
    assert len(lines) == len(KS) + 2 and lines[-1] == "best: elbow k=4, silhouette k=4, bic k=4, aic k=4"
    row4 = lines[1 + KS.index(4)]
    assert row4.count("*") == 4 and f"{result.bic[2]:.4f}" in row4


def test_plot_writes_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "choose_k.png"
    fig = plot_choose_k(result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 4
    import matplotlib.pyplot as plt

    fig2, ax = plt.subplots()
    assert plot_choose_k(result, ax) is fig2
    assert len(ax.get_lines()) == 8  # 4 curves and 4 best-k markers
    plt.close(fig2)


class TestBadInput:
    x = jnp.asarray(X[:10])
    key = jax.random.key(0)

    @pytest.mark.parametrize("ks", [[1, 2], [2, 11], [0]])
    def test_ks_out_of_range(self, ks):
        with pytest.raises(ValueError, match=r"ks must lie in \[2, n\] = \[2, 10\]"):
            choose_k(self.x, ks, key=self.key)

    def test_ks_empty_repeated_or_not_ints(self):
        with pytest.raises(ValueError, match="at least one candidate"):
            choose_k(self.x, [], key=self.key)
        with pytest.raises(ValueError, match="ks must not repeat values"):
            choose_k(self.x, [2, 3, 2], key=self.key)
        with pytest.raises(TypeError, match="ks must be a sequence of ints"):
            choose_k(self.x, [2.0, 3.0], key=self.key)
        with pytest.raises(TypeError, match="ks must be a sequence of ints"):
            choose_k(self.x, 3, key=self.key)

    def test_criteria_and_inits(self):
        with pytest.raises(ValueError, match="criteria must be one of"):
            choose_k(self.x, [2], key=self.key, criteria=("gap",))
        with pytest.raises(ValueError, match="kmeans_init has no initial centres for k in \\[3\\]"):
            choose_k(self.x, [2, 3], key=self.key, kmeans_init={2: X[:2]})
        with pytest.raises(TypeError, match="x must have a floating-point dtype"):
            choose_k(jnp.ones((10, 2), jnp.int32), [2], key=self.key)

    def test_format_and_plot_types(self):
        with pytest.raises(TypeError, match="result must be a ChooseKResult"):
            format_choose_k({"ks": [2]})
        with pytest.raises(TypeError, match="result must be a ChooseKResult"):
            plot_choose_k(None)
        assert ChooseKResult._fields[0] == "ks"
