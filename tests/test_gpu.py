"""GPU correctness: the main solvers on a GPU agree with the same calls on the CPU.

Skipped unless JAX sees a GPU. The test suite pins ``JAX_PLATFORMS=cpu`` by default; run these
on a GPU machine with both backends visible::

    JAX_PLATFORMS=cuda,cpu python -m pytest tests/test_gpu.py -p no:xdist

Each test runs one computation on ``jax.devices("gpu")[0]`` and on ``jax.devices("cpu")[0]``
(same inputs, same PRNG keys, float32 unless stated) and compares. GPU matrix products default to
TF32 on recent NVIDIA chips, so these tests are what guards the ``Precision.HIGHEST`` choices in
the distance and assignment kernels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import jaxclust

try:
    _GPU = jax.devices("gpu")[0]
except RuntimeError:
    _GPU = None

pytestmark = pytest.mark.skipif(_GPU is None, reason="no GPU visible to JAX")
_CPU = jax.devices("cpu")[0]


def _on(device, fn, *args):
    """``fn(*args)`` with every array committed to ``device``; results as numpy (on host)."""
    args = jax.device_put(args, device)
    with jax.default_device(device):
        out = fn(*args)
    return jax.tree.map(np.asarray, out)


def _digits() -> np.ndarray:
    x = load_digits().data.astype(np.float32)
    return x / 16.0


def test_kmeans_gpu_matches_cpu():
    x = _digits()
    key = jax.random.key(0)

    def fit(x):
        return jaxclust.cluster.kmeans(x, k=10, key=key, n_init=3)

    gpu, cpu = _on(_GPU, fit, x), _on(_CPU, fit, x)
    assert np.mean(gpu.labels == cpu.labels) > 0.999
    np.testing.assert_allclose(gpu.inertia, cpu.inertia, rtol=1e-4)
    np.testing.assert_allclose(gpu.centroids, cpu.centroids, atol=1e-3)
    # the GPU inertia is the true inertia of the returned centroids (float64 on the host)
    d = ((x[:, None, :].astype(np.float64) - gpu.centroids[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(gpu.inertia, d.min(1).sum(), rtol=1e-4)


def test_sinkhorn_gpu_matches_cpu_and_marginals():
    rng = np.random.default_rng(0)
    for n, k in [(1024, 1024), (4096, 64)]:  # the fused sweep, and a SwAV-like shape
        x = rng.normal(size=(n, 16)).astype(np.float32)
        y = rng.normal(size=(k, 16)).astype(np.float32)
        cost = ((x[:, None] - y[None]) ** 2).sum(-1)
        cost = cost / cost.max()

        def solve(c):
            r = jaxclust.assign.sinkhorn(c, epsilon=0.01, tol=1e-4)
            return r, jaxclust.assign.plan(r, c)

        (rg, pg), (rc, pc) = _on(_GPU, solve, cost), _on(_CPU, solve, cost)
        assert bool(rg.converged) and bool(rc.converged)
        assert abs(int(rg.num_steps) - int(rc.num_steps)) <= 10
        # the stopping rule bounds the row error in L1; columns are exact after the last update
        assert np.abs(pg.sum(1) - 1 / n).sum() < 2e-4
        np.testing.assert_allclose(pg.sum(0), np.full(k, 1 / k), rtol=1e-4)
        assert np.abs(pg - pc).sum() < 1e-3
        np.testing.assert_allclose(rg.cost, rc.cost, rtol=1e-4)


def test_sinkhorn_gradient_gpu_matches_cpu():
    rng = np.random.default_rng(1)
    cost = rng.uniform(size=(256, 32)).astype(np.float32)

    def grad(c):
        return jax.grad(lambda c: jaxclust.assign.sinkhorn(c, epsilon=0.05, tol=1e-6).cost)(c)

    np.testing.assert_allclose(_on(_GPU, grad, cost), _on(_CPU, grad, cost), atol=1e-6)


def test_sinkhorn_knopp_gpu_matches_float64_reference():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(4096, 3000)).astype(np.float32)  # SwAV's batch x prototypes
    q = _on(_GPU, lambda s: jaxclust.assign.sinkhorn_knopp(s, epsilon=0.05, num_steps=3), scores)
    # three iterations of the SwAV update, in float64 on the host
    ref = np.exp((scores.astype(np.float64) - scores.max()) / 0.05).T
    ref /= ref.sum()
    for _ in range(3):
        ref /= ref.sum(axis=1, keepdims=True) * ref.shape[0]
        ref /= ref.sum(axis=0, keepdims=True) * ref.shape[1]
    ref = (ref * ref.shape[1]).T
    assert np.isfinite(q).all()
    np.testing.assert_allclose(q, ref, rtol=2e-3, atol=1e-6)


def test_p2ot_gpu_matches_cpu():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2048, 10)).astype(np.float32)

    def solve(z):
        r = jaxclust.assign.p2ot(z, rho=0.3)
        return r.assignments, r.cost

    (pg, cg), (pc, cc) = _on(_GPU, solve, logits), _on(_CPU, solve, logits)
    assert np.isfinite(pg).all()
    np.testing.assert_allclose(pg, pc, atol=1e-5)
    np.testing.assert_allclose(cg, cc, rtol=1e-4)


def test_gmm_gpu_matches_cpu():
    x = _digits()[:, ::4]  # 16 features: well-conditioned full covariances

    def fit(x):
        r = jaxclust.cluster.gmm(x, k=5, key=jax.random.key(0), max_steps=50)
        return r.log_likelihood, r.labels

    (lg, yg), (lc, yc) = _on(_GPU, fit, x), _on(_CPU, fit, x)
    np.testing.assert_allclose(lg, lc, rtol=1e-3)
    assert np.mean(yg == yc) > 0.99


def test_metrics_gpu_match_sklearn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 10, 5000)
    pred = np.where(rng.uniform(size=5000) < 0.7, y, rng.integers(0, 10, 5000))
    nmi = _on(_GPU, lambda a, b: jaxclust.metrics.nmi(a, b), y, pred)
    ari = _on(_GPU, lambda a, b: jaxclust.metrics.ari(a, b), y, pred)
    np.testing.assert_allclose(nmi, normalized_mutual_info_score(y, pred), atol=1e-5)
    np.testing.assert_allclose(ari, adjusted_rand_score(y, pred), atol=1e-5)


def test_dec_recipe_smoke_on_gpu(tmp_path):
    """A one-step DEC run (trainer, checkpoints, evaluation) with the GPU as default device."""
    from experiments import train
    from experiments.configs import dec

    config = dec.get_config("smoke")
    with jax.default_device(_GPU):
        metrics = train.train_and_evaluate(config, tmp_path)
    assert metrics["steps"] == 2
    assert np.isfinite(metrics["results"]["jaxclust dec"]["acc"])


def test_ward_token_pool_gpu_matches_scipy():
    """Batched Ward pooling on the GPU gives SciPy's partitions (padded documents included)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    rng = np.random.default_rng(5)
    docs = rng.normal(size=(64, 96, 32)).astype(np.float32)
    lengths = rng.integers(20, 97, 64)
    mask = np.arange(96)[None, :] < lengths[:, None]

    def pool(x, m):
        return jax.vmap(lambda a, b: jaxclust.multivector.token_pool(a, b, pool_factor=2))(x, m)

    out = _on(_GPU, pool, docs, mask)
    for i, n in enumerate(lengths):
        x = docs[i, :n].astype(np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        ref = fcluster(linkage(x, "ward"), n // 2, "maxclust")
        got = out.labels[i, :n]
        assert (out.labels[i, n:] == -1).all()
        np.testing.assert_array_equal(got[:, None] == got[None, :], ref[:, None] == ref[None, :])


def test_nmf_gpu_matches_cpu():
    x = _digits()
    rng = np.random.default_rng(6)
    w0 = rng.uniform(0.1, 1.0, (x.shape[0], 8)).astype(np.float32)
    h0 = rng.uniform(0.1, 1.0, (8, x.shape[1])).astype(np.float32)
    for loss in ("frobenius", "kullback-leibler"):

        def fit(x, w0, h0, loss=loss):
            r = jaxclust.cluster.nmf(x, rank=8, init=(w0, h0), loss=loss, max_steps=100, tol=0.0)
            return r.w, r.h, r.reconstruction_error

        (wg, hg, eg), (wc, hc, ec) = _on(_GPU, fit, x, w0, h0), _on(_CPU, fit, x, w0, h0)
        np.testing.assert_allclose(eg, ec, rtol=1e-4)
        np.testing.assert_allclose(hg, hc, rtol=1e-3, atol=1e-5 * np.abs(hc).max())


def test_maxsim_gpu_matches_cpu_in_steps():
    rng = np.random.default_rng(7)
    q = rng.normal(size=(8, 32, 64)).astype(np.float32)
    d = rng.normal(size=(500, 96, 64)).astype(np.float32)
    dm = np.arange(96)[None, :] < rng.integers(10, 97, 500)[:, None]

    def score(q, d, dm):
        # maxsim keeps the backend's default matmul precision (TF32 on recent GPUs, like the
        # einsum a user would write); full float32 here, to compare the step logic tightly.
        with jax.default_matmul_precision("highest"):
            steps = jaxclust.multivector.maxsim(q, None, d, dm, block_size=64)  # 8 strided steps
            return steps, jaxclust.multivector.maxsim(q, None, d, dm)

    (sg, ag), (sc, _) = _on(_GPU, score, q, d, dm), _on(_CPU, score, q, d, dm)
    np.testing.assert_allclose(sg, ag, rtol=1e-6, atol=1e-5)  # the step size changes nothing
    np.testing.assert_allclose(sg, sc, rtol=1e-5, atol=1e-4)
