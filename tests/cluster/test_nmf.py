"""Tests for jaxclust.cluster.nmf against scikit-learn's multiplicative-update NMF."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF

from jaxclust.cluster import NMFResult, nmf

LOSSES = ["frobenius", "kullback-leibler"]
RANK = 6


def _data():
    x = load_digits().data[:400] / 16.0  # non-negative, with many exact zeros
    rng = np.random.default_rng(0)
    w0 = rng.uniform(0.1, 1.0, (x.shape[0], RANK))
    h0 = rng.uniform(0.1, 1.0, (RANK, x.shape[1]))
    return x, w0, h0


def _sklearn(x, w0, h0, loss, max_iter, tol=0.0):
    model = NMF(RANK, solver="mu", beta_loss=loss, init="custom", max_iter=max_iter, tol=tol)
    w = model.fit_transform(x, W=w0.copy(), H=h0.copy())
    return w, model.components_, model.reconstruction_err_, model.n_iter_


@pytest.mark.parametrize("loss", LOSSES)
def test_matches_sklearn_from_the_same_start(loss):
    x, w0, h0 = _data()
    ours = jax.jit(lambda x, w, h: nmf(x, rank=RANK, init=(w, h), loss=loss, max_steps=50, tol=0.0))(
        jnp.asarray(x), jnp.asarray(w0), jnp.asarray(h0)
    )
    assert isinstance(ours, NMFResult)
    w, h, err, _ = _sklearn(x, w0, h0, loss, 50)
    np.testing.assert_allclose(float(ours.reconstruction_error), err, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.w), w, rtol=1e-4, atol=1e-7 * np.abs(w).max())
    np.testing.assert_allclose(np.asarray(ours.h), h, rtol=1e-4, atol=1e-7 * np.abs(h).max())
    assert int(ours.num_steps) == 50 and not bool(ours.converged)
    # the reported loss is the divergence of the returned factors, recomputed here in NumPy
    wh = np.asarray(ours.w) @ np.asarray(ours.h)
    if loss == "frobenius":
        ref = 0.5 * np.sum((x - wh) ** 2)
    else:
        pos = x > 0
        ref = np.sum(x[pos] * np.log(x[pos] / wh[pos])) - x.sum() + wh.sum()
    np.testing.assert_allclose(float(ours.loss), ref, rtol=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
def test_the_objective_never_increases(loss):
    x, w0, h0 = _data()
    step = jax.jit(lambda x, w, h: nmf(x, rank=RANK, init=(w, h), loss=loss, max_steps=1, tol=0.0))
    w, h = jnp.asarray(w0), jnp.asarray(h0)
    losses = []
    for _ in range(30):
        r = step(jnp.asarray(x), w, h)
        w, h = r.w, r.h
        losses.append(float(r.loss))
    assert np.all(np.diff(losses) <= 1e-12 * np.abs(losses[:-1]))
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("loss", LOSSES)
def test_tolerance_stops_at_sklearns_step(loss):
    x, w0, h0 = _data()
    ours = nmf(jnp.asarray(x), rank=RANK, init=(jnp.asarray(w0), jnp.asarray(h0)), loss=loss,
               max_steps=500, tol=1e-3)
    *_, n_iter = _sklearn(x, w0, h0, loss, 500, tol=1e-3)
    assert bool(ours.converged) and int(ours.num_steps) == n_iter < 500
    assert int(ours.num_steps) % 10 == 0


def test_where_equals_dropping_the_rows_and_vmaps():
    x, w0, h0 = _data()
    rng = np.random.default_rng(1)
    keep = rng.random(x.shape[0]) < 0.7
    junk = np.where(keep[:, None], x, rng.uniform(0, 1e6, x.shape))  # padding rows hold garbage
    run = jax.jit(lambda x, w, h, m: nmf(x, rank=RANK, init=(w, h), max_steps=40, tol=0.0, where=m))
    masked = run(jnp.asarray(junk), jnp.asarray(w0), jnp.asarray(h0), jnp.asarray(keep))
    plain = nmf(jnp.asarray(x[keep]), rank=RANK, init=(jnp.asarray(w0[keep]), jnp.asarray(h0)),
                max_steps=40, tol=0.0)
    np.testing.assert_allclose(np.asarray(masked.h), np.asarray(plain.h), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(masked.w)[keep], np.asarray(plain.w), rtol=1e-10)
    assert np.all(np.asarray(masked.w)[~keep] == 0)
    np.testing.assert_allclose(float(masked.loss), float(plain.loss), rtol=1e-10)
    # two padded sets at once
    masks = jnp.asarray(np.stack([keep, ~keep]))
    both = jax.vmap(run, in_axes=(None, None, None, 0))(jnp.asarray(x), jnp.asarray(w0),
                                                        jnp.asarray(h0), masks)
    np.testing.assert_allclose(np.asarray(both.h[0]), np.asarray(plain.h), rtol=1e-10)


@pytest.mark.parametrize("loss", LOSSES)
def test_shard_map_and_jit_on_sharded_rows_equal_single_device(loss):
    x, w0, h0 = _data()  # 400 rows: 50 per device
    single = nmf(jnp.asarray(x), rank=RANK, init=(jnp.asarray(w0), jnp.asarray(h0)), loss=loss,
                 max_steps=30, tol=1e-4)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    xs = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
    ws = jax.device_put(jnp.asarray(w0), NamedSharding(mesh, P("data")))
    h = jnp.asarray(h0)
    mapped = jax.jit(jax.shard_map(
        lambda x, w, h: nmf(x, rank=RANK, init=(w, h), loss=loss, max_steps=30, tol=1e-4,
                            axis_name="data"),
        mesh=mesh, in_specs=(P("data"), P("data"), P()),
        out_specs=NMFResult(P("data"), P(), P(), P(), P(), P()),
    ))(xs, ws, h)
    on_sharded = jax.jit(lambda x, w, h: nmf(x, rank=RANK, init=(w, h), loss=loss, max_steps=30,
                                             tol=1e-4))(xs, ws, h)
    explicit_mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(explicit_mesh):
        xe = jax.device_put(jnp.asarray(x), NamedSharding(explicit_mesh, P("data")))
        we = jax.device_put(jnp.asarray(w0), NamedSharding(explicit_mesh, P("data")))
        explicit = jax.jit(lambda x, w, h: nmf(x, rank=RANK, init=(w, h), loss=loss,
                                               max_steps=30, tol=1e-4))(xe, we, h)
    for other in (mapped, on_sharded, explicit):
        np.testing.assert_allclose(np.asarray(other.h), np.asarray(single.h), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(other.w), np.asarray(single.w), rtol=1e-9)
        np.testing.assert_allclose(float(other.loss), float(single.loss), rtol=1e-9)
        assert int(other.num_steps) == int(single.num_steps)


def test_random_init_scale_and_no_retrace():
    x, _, _ = _data()
    fit = jax.jit(lambda x, key: nmf(x, rank=RANK, key=key, init="random", max_steps=100))
    first = fit(jnp.asarray(x), jax.random.key(0))
    size = fit._cache_size()
    second = fit(jnp.asarray(x), jax.random.key(1))
    assert fit._cache_size() == size
    for r in (first, second):
        assert np.all(np.asarray(r.w) >= 0) and np.all(np.asarray(r.h) >= 0)
        assert np.isfinite(float(r.loss))
    # the random start (max_steps=0) follows scikit-learn's scale: mean(WH) ≈ mean(X)·(2/π)·…
    start = nmf(jnp.asarray(x), rank=RANK, key=jax.random.key(0), init="random", max_steps=0)
    ref_scale = np.sqrt(x.mean() / RANK)
    assert 0.5 < np.asarray(start.h).mean() / (ref_scale * np.sqrt(2 / np.pi)) < 1.5
    assert float(first.reconstruction_error) < 0.8 * float(start.reconstruction_error)
    # as good as scikit-learn from its own random start (different random numbers)
    sk = NMF(RANK, solver="mu", init="random", random_state=0, max_iter=100).fit(x)
    assert float(first.reconstruction_error) < 1.05 * sk.reconstruction_err_


class TestBadInput:
    x = jnp.asarray(_data()[0])

    def test_data(self):
        with pytest.raises(ValueError, match="x must be non-negative"):
            nmf(-self.x, rank=2, key=jax.random.key(0))
        with pytest.raises(ValueError, match="x must have rank 2"):
            nmf(self.x[0], rank=2, key=jax.random.key(0))
        with pytest.raises(TypeError, match="floating-point dtype"):
            nmf(jnp.ones((4, 3), int), rank=2, key=jax.random.key(0))
        with pytest.raises(ValueError, match="NaN or Inf"):
            nmf(self.x.at[0, 0].set(jnp.nan), rank=2, key=jax.random.key(0))

    def test_options(self):
        with pytest.raises(ValueError, match="loss must be one of"):
            nmf(self.x, rank=2, key=jax.random.key(0), loss="itakura-saito")
        with pytest.raises(ValueError, match="rank must be"):
            nmf(self.x, rank=0, key=jax.random.key(0))
        with pytest.raises(ValueError, match="init='random' needs key"):
            nmf(self.x, rank=2, init="random")
        with pytest.raises(ValueError, match="init must be one of"):
            nmf(self.x, rank=2, init="nndsvdar")
        with pytest.raises(ValueError, match=r"needs rank <= min\(n, m\)"):
            nmf(self.x[:3], rank=4)
        with pytest.raises(ValueError, match="needs the whole unmasked x"):
            nmf(self.x, rank=2, where=jnp.ones(self.x.shape[0], bool))
        with pytest.raises(ValueError, match="tol"):
            nmf(self.x, rank=2, key=jax.random.key(0), tol=-1.0)

    def test_init(self):
        n, m = self.x.shape
        with pytest.raises(ValueError, match=r"init must be \(W0 \[n, r\], H0 \[r, m\]\)"):
            nmf(self.x, rank=2, init=(jnp.ones((n, 3)), jnp.ones((2, m))))
        with pytest.raises(ValueError, match="strictly positive"):
            nmf(self.x, rank=2, init=(jnp.zeros((n, 2)), jnp.ones((2, m))))
        with pytest.raises(TypeError, match="init must be one of"):
            nmf(self.x, rank=2, init=jnp.ones((n, 2)))
        with pytest.raises(ValueError, match="where"):
            nmf(self.x, rank=2, key=jax.random.key(0), where=jnp.ones(3, bool))


@pytest.mark.parametrize("loss", LOSSES)
def test_fixed_components_match_sklearn_transform_solve(loss):
    """update_h=False fits W alone: scikit-learn's non_negative_factorization(update_H=False)."""
    from sklearn.decomposition import non_negative_factorization

    x, w0, h0 = _data()
    ours = nmf(jnp.asarray(x), rank=RANK, init=(jnp.asarray(w0), jnp.asarray(h0)), loss=loss,
               max_steps=40, tol=0.0, update_h=False)
    np.testing.assert_array_equal(np.asarray(ours.h), h0)
    w, h, _ = non_negative_factorization(x, W=None, H=h0.copy(), n_components=RANK, init="custom",
                                         update_H=False, solver="mu", beta_loss=loss,
                                         max_iter=40, tol=0.0)
    # scikit-learn starts W at the constant sqrt(mean(X) / r) when H is fixed
    ours_const = nmf(jnp.asarray(x), rank=RANK,
                     init=(jnp.full(w0.shape, np.sqrt(x.mean() / RANK)), jnp.asarray(h0)),
                     loss=loss, max_steps=40, tol=0.0, update_h=False)
    np.testing.assert_allclose(np.asarray(ours_const.w), w, rtol=1e-4, atol=1e-7 * np.abs(w).max())


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda"])
def test_nndsvd_start_matches_sklearn(init):
    from sklearn.decomposition._nmf import _initialize_nmf

    x, _, _ = _data()
    start = nmf(jnp.asarray(x), rank=RANK, init=init, max_steps=0)
    # scikit-learn's SVD is randomized (accurate to about 1e-4 in the 6th triplet here)
    w_ref, h_ref = _initialize_nmf(x, RANK, init=init, random_state=0)
    np.testing.assert_allclose(np.asarray(start.w), w_ref, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(np.asarray(start.h), h_ref, rtol=1e-3, atol=1e-6)
    if init == "nndsvd":
        assert (np.asarray(start.w) == 0).any()  # sign-split zeros are kept
    else:
        assert (np.asarray(start.w) > 0).all() and (np.asarray(start.h) > 0).all()
    # and the whole default fit equals scikit-learn's NMF(solver="mu", init=...) fit
    ours = nmf(jnp.asarray(x), rank=RANK, init=init, max_steps=50, tol=0.0)
    ref = NMF(RANK, solver="mu", init=init, max_iter=50, tol=0.0, random_state=0)
    np.testing.assert_allclose(float(ours.reconstruction_error),
                               ref.fit(x).reconstruction_err_, rtol=1e-5)
