"""Prototypical-network loss for few-shot episodes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxclust import _checks, _collectives
from jaxclust.losses._contrastive import _mask, _squared_distances


def prototypical_loss(
    support: Float[Array, "m d"],
    support_labels: Int[Array, " m"],
    queries: Float[Array, "n d"],
    query_labels: Int[Array, " n"],
    *,
    num_classes: int,
    support_where: Bool[Array, " m"] | None = None,
    where: Bool[Array, " n"] | None = None,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    r"""Negative log-likelihood of each query under the prototypical-network classifier.

    Prototypes are the (masked) class means of the support embeddings,
    ``c_k = Σ_s m_s 1[y_s=k] f(s) / Σ_s m_s 1[y_s=k]``; a query's class posterior is
    ``p(y=k|x) = softmax_k(−‖f(x) − c_k‖²)`` (squared Euclidean) and its loss is
    ``−ln p(y_x|x)`` (METHODS.md §3.18). The mean over queries is the episode loss.

    Classes with no valid support example get no prototype and are left out of every softmax;
    a query whose own class has none is given loss 0 (like an invalid query), since its
    likelihood is undefined.

    Args:
      support: embedded support set, shape [m, d].
      support_labels: class of each support example in ``[0, num_classes)``, shape [m]; other
        values (e.g. ``-1``) mark padding.
      queries: embedded queries, shape [n, d].
      query_labels: class of each query, shape [n].
      num_classes: number of classes ``N_way`` in the episode (static: changing it recompiles).
      support_where: optional validity mask [m] over support examples.
      where: optional validity mask [n] over queries; invalid queries get 0.
      axis_name: set only inside ``jax.shard_map`` with the sample axes of both the support set
        and the queries split over this mesh axis; then ``m`` and ``n`` are per-shard counts,
        the prototypes are the class means of the global support set (per-class sums and counts
        combined with ``psum``), and the result equals the single-device losses of this shard's
        queries. Under plain ``jax.jit`` on sharded arrays leave it None and XLA inserts the
        collectives.

    Returns:
      Per-query losses, shape [n].

    Raises:
      TypeError: non-floating embeddings, non-integer labels, non-boolean masks.
      ValueError: bad ranks or lengths, feature dimensions that differ, ``num_classes < 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxclust.losses import prototypical_loss
      >>> s = jnp.array([[0.0], [2.0], [10.0]])
      >>> prototypical_loss(s, jnp.array([0, 0, 1]), jnp.array([[1.0]]), jnp.array([0]),
      ...                   num_classes=2).round(4)
      Array([0.], dtype=float...)

    References:
      Snell, Swersky, Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017,
      https://arxiv.org/abs/1703.05175.
    """
    support = _checks.as_float_array(support, "support", 2, "[m, d]")
    queries = _checks.as_float_array(queries, "queries", 2, "[n, d]")
    support_labels = _checks.as_int_array(support_labels, "support_labels", 1, "[m]")
    query_labels = _checks.as_int_array(query_labels, "query_labels", 1, "[n]")
    _checks.check_same_leading([support, support_labels], ["support", "support_labels"])
    _checks.check_same_leading([queries, query_labels], ["queries", "query_labels"])
    if support.shape[1] != queries.shape[1]:
        raise ValueError(
            f"support and queries must have the same feature dimension d, got "
            f"{support.shape[1]} and {queries.shape[1]}."
        )
    k = _checks.check_positive_int(num_classes, "num_classes")
    s_valid = _mask(support_where, support.shape[0], "support_where", "support")
    q_valid = _mask(where, queries.shape[0], "where", "queries")
    s_valid = s_valid & (support_labels >= 0) & (support_labels < k)
    w = s_valid.astype(support.dtype)
    ids = jnp.where(s_valid, support_labels, k)  # out of range: dropped
    sums = _collectives.psum(_collectives.segment_sum(w[:, None] * support, ids, k), axis_name)
    counts = _collectives.psum(_collectives.segment_sum(w, ids, k), axis_name)
    present = counts > 0
    protos = sums / jnp.maximum(counts, 1.0)[:, None]
    logits = jnp.where(present[None, :], -_squared_distances(queries, protos), -jnp.inf)
    in_range = (query_labels >= 0) & (query_labels < k)
    target = jnp.clip(query_labels, 0, k - 1)
    ok = q_valid & in_range & present[target]
    logits = jnp.where(ok[:, None], logits, 0.0)  # excluded rows: finite, zero-gradient values
    log_p = jax.nn.log_softmax(logits, axis=1)
    nll = -jnp.take_along_axis(log_p, target[:, None], axis=1)[:, 0]
    return jnp.where(ok, nll, 0.0)
