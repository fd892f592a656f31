"""Choosing the number of clusters: elbow of the k-means inertia, silhouette, GMM BIC and AIC."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxclust import _checks
from jaxclust._typing import KeyArray

_CRITERIA = ("inertia", "silhouette", "bic", "aic")


class ChooseKResult(NamedTuple):
    """Output of :func:`choose_k`: one row per candidate ``k``, NumPy arrays.

    A criterion that was not requested is None, and so is its best ``k``.

    Attributes:
      ks: the candidates, increasing, int ndarray [m].
      inertia: k-means inertia ``Σ_i w_i ‖x_i − μ_{c_i}‖²`` for each ``k``, float ndarray [m].
      silhouette: mean silhouette coefficient of the k-means labels, float ndarray [m].
      bic: Gaussian-mixture BIC (:func:`gmm_bic`) for each ``k``, float ndarray [m].
      aic: Gaussian-mixture AIC (:func:`gmm_aic`) for each ``k``, float ndarray [m].
      best_elbow: the elbow of the inertia curve (see :func:`choose_k`), int.
      best_silhouette: ``k`` of the largest silhouette, int.
      best_bic: ``k`` of the smallest BIC, int.
      best_aic: ``k`` of the smallest AIC, int.
    """

    ks: np.ndarray
    inertia: np.ndarray | None
    silhouette: np.ndarray | None
    bic: np.ndarray | None
    aic: np.ndarray | None
    best_elbow: int | None
    best_silhouette: int | None
    best_bic: int | None
    best_aic: int | None

    def table(self) -> str:
        """The result as a text table (:func:`format_choose_k`)."""
        return format_choose_k(self)


def _elbow(ks: np.ndarray, inertia: np.ndarray) -> int:
    """Kneedle (Satopää et al. 2011) for a decreasing curve, without smoothing or threshold.

    Both axes are scaled to [0, 1]; the elbow is the point farthest below the chord from the first
    to the last point, i.e. the maximiser of ``(1 − k̃) − Ĩ``; ties go to the smallest ``k``.
    """
    if len(ks) < 3:
        return int(ks[0])
    kn = (ks - ks[0]) / (ks[-1] - ks[0])
    span = inertia.max() - inertia.min()
    inn = (inertia - inertia.min()) / (span if span > 0 else 1.0)
    return int(ks[int(np.argmax((1.0 - kn) - inn))])


def _check_ks(ks, n: int) -> np.ndarray:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence | np.ndarray):
        raise TypeError(f"ks must be a sequence of ints, got {type(ks).__name__}.")
    try:
        values = [operator.index(k) for k in ks]
    except TypeError:
        raise TypeError(f"ks must be a sequence of ints, got {list(ks)!r}.") from None
    if not values:
        raise ValueError("ks must hold at least one candidate number of clusters, got [].")
    bad = [k for k in values if k < 2 or k > n]
    if bad:
        raise ValueError(
            f"ks must lie in [2, n] = [2, {n}] (silhouette needs two clusters), got {bad}."
        )
    if len(set(values)) != len(values):
        raise ValueError(f"ks must not repeat values, got {values}.")
    return np.sort(np.asarray(values, dtype=np.int64))



# One compiled program per candidate k (k is a shape): the per-k work runs as a single XLA call.
@functools.partial(jax.jit, static_argnames=("k", "init", "n_init", "silhouette"))
def _kmeans_scores(x, sample_weight, key, centres, *, k, init, n_init, silhouette):
    from jaxclust.cluster._kmeans import kmeans
    from jaxclust.metrics import silhouette_score

    if centres is None:
        result = kmeans(x, k=k, key=key, init=init, n_init=n_init, sample_weight=sample_weight)
    else:
        result = kmeans(x, k=k, init=centres, sample_weight=sample_weight)
    score = silhouette_score(x, result.labels, num_clusters=k) if silhouette else jnp.nan
    return result.inertia, score


@functools.partial(jax.jit, static_argnames=("k", "covariance_type", "n_init"))
def _gmm_scores(x, key, *, k, covariance_type, n_init):
    from jaxclust.cluster._gmm import gmm, gmm_aic, gmm_bic

    model = gmm(x, k=k, key=key, covariance_type=covariance_type, n_init=n_init)
    return (
        gmm_bic(x, model, covariance_type=covariance_type),
        gmm_aic(x, model, covariance_type=covariance_type),
    )


def choose_k(
    x: Float[Array, "n d"],
    ks: Sequence[int],
    *,
    key: KeyArray,
    criteria: Sequence[str] = _CRITERIA,
    covariance_type: str = "full",
    n_init: int = 3,
    kmeans_init: str | Mapping[int, Float[Array, "k d"]] = "k-means++",
    sample_weight: Float[Array, " n"] | None = None,
) -> ChooseKResult:
    """Scores each candidate number of clusters ``k`` by four common criteria.

    For every ``k`` in ``ks``, :func:`kmeans` (``n_init`` restarts) gives the inertia and the
    labels whose mean silhouette (:func:`jaxclust.metrics.silhouette_score`) is reported, and
    :func:`gmm` (``n_init`` restarts, ``covariance_type``) gives the BIC and AIC. The best ``k``
    is: the **elbow** of the inertia curve by the "kneedle" rule (Satopää et al., 2011) without
    smoothing: after scaling ``k`` and the inertia to [0, 1], the point farthest below the straight
    line from the first to the last candidate (with fewer than three candidates, the smallest
    ``k``); the **largest silhouette**; the **smallest BIC** and **smallest AIC**. Ties go to the
    smallest ``k``.

    This is a host-side driver: it loops over ``ks`` in Python (each ``k`` is a new shape, so
    each compiles once) and returns NumPy arrays; it does not run under ``jit``. The silhouette
    costs ``O(n²·d)`` time per ``k`` (in row blocks, so not ``O(n²)`` memory); leave it out of
    ``criteria`` for large ``n``.

    Args:
      x: data, shape [n, d], floating point, finite.
      ks: candidate numbers of clusters, distinct ints in [2, n]; sorted here.
      key: PRNG key; candidate ``k`` uses ``jax.random.fold_in(key, k)`` (k-means) and its split
        (GMM), so adding candidates does not change the others' results.
      criteria: which of ``"inertia"``, ``"silhouette"``, ``"bic"``, ``"aic"`` to compute;
        k-means runs when inertia or silhouette is asked, the mixture when BIC or AIC is.
      covariance_type: covariance of the Gaussian mixtures behind BIC/AIC (see :func:`gmm`).
      n_init: restarts of k-means and of the mixture for each ``k``.
      kmeans_init: k-means seeding name (``"k-means++"``, ``"random"``) or a mapping from each
        ``k`` to explicit initial centres [k, d] (then ``n_init`` does not apply to k-means).
      sample_weight: non-negative sample weights, shape [n], for k-means and the inertia; the
        silhouette and the mixture criteria are unweighted.

    Returns:
      A :class:`ChooseKResult`.

    Raises:
      TypeError: if ``x`` is not floating point or ``ks`` is not a sequence of ints.
      ValueError: if ``ks`` is empty, repeats a value or has a value outside [2, n], a criterion
        is unknown, or ``kmeans_init`` lacks a candidate.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxclust.cluster import choose_k
      >>> x = jnp.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1], [9.0, 0.0], [9.0, 0.1]])
      >>> result = choose_k(x, [2, 3, 4], key=jax.random.key(0), criteria=("silhouette",))
      >>> result.best_silhouette
      3

    References:
      Satopää, Albrecht, Irwin & Raghavan, "Finding a 'Kneedle' in a Haystack: Detecting Knee
      Points in System Behavior", ICDCS Workshops 2011.
      Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
      analysis", J. Comput. Appl. Math. 20, 1987.
      Schwarz, "Estimating the dimension of a model", Ann. Statist. 6(2), 1978 (BIC).
      Akaike, "A new look at the statistical model identification", IEEE TAC 19(6), 1974 (AIC).
    """
    x = _checks.as_float_array(x, "x", ndim=2, shape="[n, d]")
    ks = _check_ks(ks, x.shape[0])
    if isinstance(criteria, str):
        criteria = (criteria,)
    criteria = tuple(criteria)
    if not criteria:
        raise ValueError(f"criteria must name at least one of {list(_CRITERIA)}, got ().")
    for c in criteria:
        _checks.check_choice(c, "criteria", _CRITERIA)
    n_init = _checks.check_positive_int(n_init, "n_init")
    if key is None:
        raise ValueError("key is required; pass e.g. key=jax.random.key(0).")
    if isinstance(kmeans_init, Mapping):
        missing = [int(k) for k in ks if int(k) not in kmeans_init]
        if missing:
            raise ValueError(f"kmeans_init has no initial centres for k in {missing}.")
    want_kmeans = "inertia" in criteria or "silhouette" in criteria
    want_gmm = "bic" in criteria or "aic" in criteria

    rows: dict[str, list[float]] = {c: [] for c in criteria}
    for k in (int(k) for k in ks):
        k_key = jax.random.fold_in(key, k)
        km_key, gm_key = jax.random.split(k_key)
        if want_kmeans:
            centres = kmeans_init[k] if isinstance(kmeans_init, Mapping) else None
            inertia, silhouette = _kmeans_scores(
                x, sample_weight, km_key, None if centres is None else jnp.asarray(centres),
                k=k, init=kmeans_init if centres is None else None, n_init=n_init,
                silhouette="silhouette" in criteria,
            )
            if "inertia" in criteria:
                rows["inertia"].append(float(inertia))
            if "silhouette" in criteria:
                rows["silhouette"].append(float(silhouette))
        if want_gmm:
            bic, aic = _gmm_scores(x, gm_key, k=k, covariance_type=covariance_type, n_init=n_init)
            if "bic" in criteria:
                rows["bic"].append(float(bic))
            if "aic" in criteria:
                rows["aic"].append(float(aic))

    table = {c: np.asarray(v, dtype=np.float64) for c, v in rows.items()}

    def best(name, pick):
        return int(ks[pick(table[name])]) if name in table else None

    return ChooseKResult(
        ks=ks,
        inertia=table.get("inertia"),
        silhouette=table.get("silhouette"),
        bic=table.get("bic"),
        aic=table.get("aic"),
        best_elbow=_elbow(ks.astype(np.float64), table["inertia"]) if "inertia" in table else None,
        best_silhouette=best("silhouette", np.argmax),
        best_bic=best("bic", np.argmin),
        best_aic=best("aic", np.argmin),
    )


_BEST_FIELD = {
    "inertia": "best_elbow",
    "silhouette": "best_silhouette",
    "bic": "best_bic",
    "aic": "best_aic",
}


def format_choose_k(result: ChooseKResult) -> str:
    """A text table of a :class:`ChooseKResult`; ``*`` marks the best ``k`` of each criterion.

    Args:
      result: the output of :func:`choose_k`.

    Returns:
      The table, one line per candidate ``k`` plus a header and a summary line.

    Raises:
      TypeError: if ``result`` is not a :class:`ChooseKResult`.

    Examples:
      >>> import numpy as np
      >>> from jaxclust.cluster import ChooseKResult, format_choose_k
      >>> r = ChooseKResult(np.array([2, 3]), np.array([10.0, 2.0]), None, None, None,
      ...                   2, None, None, None)
      >>> print(format_choose_k(r))
       k     inertia
       2   10.0000 *
       3    2.0000
      best: elbow k=2
    """
    if not isinstance(result, ChooseKResult):
        raise TypeError(f"result must be a ChooseKResult, got {type(result).__name__}.")
    columns = [c for c in _CRITERIA if getattr(result, c) is not None]
    header = " k" + "".join(f"{c:>12}  " for c in columns)
    lines = [header.rstrip()]
    for i, k in enumerate(result.ks):
        cells = []
        for c in columns:
            mark = "*" if getattr(result, _BEST_FIELD[c]) == k else " "
            cells.append(f"{getattr(result, c)[i]:>12.4f} {mark}")
        lines.append((f"{int(k):>2}" + "".join(cells)).rstrip())
    names = {"inertia": "elbow", "silhouette": "silhouette", "bic": "bic", "aic": "aic"}
    summary = ", ".join(f"{names[c]} k={getattr(result, _BEST_FIELD[c])}" for c in columns)
    lines.append(f"best: {summary}")
    return "\n".join(lines)


def plot_choose_k(result: ChooseKResult, path_or_ax=None):
    """Draws each criterion of a :class:`ChooseKResult` against ``k``, best ``k`` marked.

    matplotlib is optional and imported here, only when this function is called.

    Args:
      result: the output of :func:`choose_k`.
      path_or_ax: None (a new figure, one panel per criterion), a file path (the same figure
        written there, e.g. a ``.png``; the figure is closed) or a matplotlib ``Axes`` (all
        criteria drawn on it, each scaled to [0, 1] so they share one axis).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ImportError: if matplotlib is not installed.
      TypeError: if ``result`` is not a :class:`ChooseKResult`.

    Examples:
      >>> import numpy as np
      >>> from jaxclust.cluster import ChooseKResult, plot_choose_k
      >>> r = ChooseKResult(np.array([2, 3, 4]), np.array([9.0, 2.0, 1.5]), None, None, None,
      ...                   3, None, None, None)
      >>> fig = plot_choose_k(r)  # doctest: +SKIP
    """
    if not isinstance(result, ChooseKResult):
        raise TypeError(f"result must be a ChooseKResult, got {type(result).__name__}.")
    try:
        import matplotlib

        if path_or_ax is not None and not hasattr(path_or_ax, "plot"):
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plot_choose_k needs matplotlib: pip install matplotlib."
        ) from error

    columns = [c for c in _CRITERIA if getattr(result, c) is not None]
    titles = {
        "inertia": "k-means inertia (elbow)",
        "silhouette": "silhouette (max)",
        "bic": "GMM BIC (min)",
        "aic": "GMM AIC (min)",
    }
    ks = np.asarray(result.ks)
    if hasattr(path_or_ax, "plot"):
        ax = path_or_ax
        for c in columns:
            v = np.asarray(getattr(result, c), np.float64)
            span = v.max() - v.min()
            (line,) = ax.plot(ks, (v - v.min()) / (span if span > 0 else 1.0), "o-", label=titles[c])
            ax.axvline(getattr(result, _BEST_FIELD[c]), color=line.get_color(), ls=":", lw=1)
        ax.set_xlabel("k")
        ax.set_ylabel("scaled value")
        ax.legend()
        return ax.figure
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.0), squeeze=False)
    for ax, c in zip(axes[0], columns):
        ax.plot(ks, getattr(result, c), "o-")
        ax.axvline(getattr(result, _BEST_FIELD[c]), color="tab:red", ls=":", lw=1)
        ax.set_title(titles[c], fontsize=9)
        ax.set_xlabel("k")
        ax.set_xticks(ks)
    fig.tight_layout()
    if path_or_ax is not None:
        fig.savefig(path_or_ax)
        plt.close(fig)
    return fig
