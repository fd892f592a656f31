"""Runs the composition example of docs/losses.md (IDEC + SwAV) and checks its gradients."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np

import jaxclust.losses as L

_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "losses.md"


def test_idec_plus_swav_snippet_runs_and_differentiates(rng):
    blocks = re.findall(r"```python\n(.*?)```", _DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    code_lines = [line for line in blocks[0].splitlines() if line.strip() and not line.startswith(("import", "from"))]
    assert len(code_lines) < 15  # the example stays short
    namespace: dict = {}
    exec(compile(blocks[0], str(_DOC), "exec"), namespace)
    n, big_d, d, k, m = 12, 6, 3, 2, 4
    params = {
        "enc": jnp.asarray(rng.normal(size=(big_d, d))),
        "dec": jnp.asarray(rng.normal(size=(d, big_d))),
        "centroids": jnp.asarray(rng.normal(size=(k, d))),
        "protos": jnp.asarray(rng.normal(size=(m, d))),
    }
    x = jnp.asarray(rng.normal(size=(n, big_d)))
    views = x[None] + 0.1 * jnp.asarray(rng.normal(size=(2, n, big_d)))
    p = L.dec_target(L.dec_soft_assignment(x @ params["enc"], params["centroids"]))
    value = namespace["loss_fn"](params, x, views, p)
    q = L.dec_soft_assignment(x @ params["enc"], params["centroids"])
    idec = np.mean(L.idec_loss(x, x @ params["enc"] @ params["dec"], q, p, gamma=0.1))
    assert float(value) > idec  # the SwAV term is positive
    grads = jax.jit(namespace["grads"])(params, x, views, p)
    assert all(np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0
               for g in jax.tree.leaves(grads))
