"""scikit-learn estimators over the functional core: :class:`KMeans`, :class:`MiniBatchKMeans`,
:class:`GaussianMixture`, :class:`SpectralClustering`, :class:`NMF`.

These are thin wrappers: every number comes from :func:`jaxclust.cluster.kmeans`,
:func:`jaxclust.cluster.minibatch_kmeans` (with ``minibatch_init``/``minibatch_update`` for
``partial_fit``) and :func:`jaxclust.cluster.kmeans_predict`. The estimators add what scikit-learn
users expect and the functional core deliberately leaves out:

- **Input validation** through scikit-learn's own ``validate_data``/``check_array`` and
  ``_check_sample_weight``, so NumPy arrays, lists and DataFrames are accepted, integers are cast to
  float64, and NaN, sparse, complex, empty or wrongly shaped input raise scikit-learn's standard
  ``ValueError``/``TypeError`` messages. ``feature_names_in_`` is recorded for DataFrames.
- **Compilation on the user's behalf.** The library never calls ``jax.jit`` for its users
  (STYLE.md); estimators are the one exception, since their users call ``fit`` with NumPy arrays
  and do not think in traces. The jitted functions live at module level, so ``jax.jit``'s cache
  (keyed on shapes, dtypes and the static options ``k``, ``init``, ``n_init``, ``max_steps``,
  batch sizes) is shared by every estimator instance: refitting same-shaped data, e.g. in
  ``GridSearchCV`` or ``clone``-heavy pipelines, does not recompile. ``tol`` and
  ``reassignment_ratio`` are traced, so changing them does not recompile either. On CPU, problems
  with ``n · d · k <= SMALL_PROBLEM_SIZE`` (2**20) are compiled with XLA's quick options: there
  the user waits for the compiler, not the run (2 s against 16 ms for a 200-point mini-batch
  fit), and these options compile 3-4x faster for 2-3x slower code.
- **Dtypes.** float32 input is computed and returned in float32. float64 input is computed in
  float64 when JAX's 64-bit mode is on (``jax.config.update("jax_enable_x64", True)``); otherwise
  it is computed in float32 and the fitted arrays and ``transform`` output are cast back to float64,
  so the output dtype always matches the input (scikit-learn's ``preserves_dtype`` contract) while
  the precision is float32's. Integer input is cast to float64 first, as scikit-learn does.
- **Randomness.** ``random_state`` becomes a JAX key: an int ``s`` gives ``jax.random.key(s)``, so
  ``KMeans(random_state=s)`` reproduces ``kmeans(x, k=..., key=jax.random.key(s))``; ``None`` or a
  ``np.random.RandomState`` draws the seed with ``randint(2**31 - 1)`` from (the global, or that)
  generator, advancing it, as scikit-learn does for the generators it hands down.
  ``MiniBatchKMeans`` passes ``sample_weight=None`` through as None, so that it too reproduces
  ``minibatch_kmeans`` (whose batch sampler draws differently for None and for explicit weights).

scikit-learn's estimator checks all pass for :class:`GaussianMixture` (over
:func:`jaxclust.cluster.gmm`; see its docstring for the supported parameters). For the k-means
estimators they all pass except ``check_sample_weight_equivalence_on_dense_data``
(as for scikit-learn's own KMeans and MiniBatchKMeans): seedings and batches are draws over rows,
so ``n`` weighted rows and the same rows repeated get different draws from one key. From a fixed
``init`` the weighting is exact (Lloyd's updates only see the weighted sums). They all pass for
:class:`NMF` with its default (NNDSVD-A) start.

Not supported, unlike scikit-learn: sparse input (densify it first), callable ``init``, and the
``algorithm``, ``copy_x``, ``verbose`` and ``compute_labels`` parameters (labels are always
computed).

Examples:
  >>> import numpy as np
  >>> from jaxclust.sklearn import KMeans
  >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
  >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
  >>> np.sort(km.cluster_centers_[:, 0]).tolist(), float(km.inertia_)
  ([1.0, 10.0], 16.0)
"""

from __future__ import annotations

import functools
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    DensityMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    check_scalar,
    validate_data,
)

from jaxclust import cluster
from jaxclust.cluster._distances import squared_distances

__all__ = ["NMF", "GaussianMixture", "KMeans", "MiniBatchKMeans", "SpectralClustering"]

_INITS = ("k-means++", "random")


#: Problems whose distance matrix ``n · k`` times ``d`` is at most this size are compiled with
#: XLA:CPU's quick options (see :class:`_Kernel`).
SMALL_PROBLEM_SIZE = 2**20


@functools.cache
def _quick_compile_options() -> dict[str, object]:
    """XLA:CPU options trading 2-3x slower code for 3-4x faster compilation; {} if unsupported.

    Unoptimised LLVM code generation, and the classic emitters instead of the fusion emitters.
    Measured on 2 CPU cores: ``kmeans`` 200x4, k=5 compiles in 0.3 s instead of 1.0 s and runs
    Lloyd in 4 ms instead of 0.4 ms; ``minibatch_kmeans`` compiles in 0.6 s instead of 2.0 s. The
    options are probed once, so an XLA that has renamed them falls back to the defaults.
    """
    if jax.default_backend() != "cpu":
        return {}
    options = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    try:
        jax.jit(lambda v: v + 1).lower(1.0).compile(compiler_options=options)
    except Exception:  # XLA reports an unknown option as a runtime error whose type varies
        return {}
    return options


class _Kernel:
    """A function jitted once per compile mode, at module level so every estimator shares the cache.

    ``jax.jit`` caches one executable per input shapes, dtypes and static arguments, so refitting
    same-shaped data (cross-validation, ``clone``) does not recompile. Calls pass the problem size
    first: small problems, where compilation takes seconds and the run milliseconds, use the
    quick-compile options; larger ones the optimising defaults.
    """

    def __init__(self, fn, static_argnames=()):
        self._fn = fn
        self._static_argnames = static_argnames
        self.default = jax.jit(fn, static_argnames=static_argnames)

    @functools.cached_property
    def quick(self):
        options = _quick_compile_options()
        if not options:
            return self.default
        return jax.jit(self._fn, static_argnames=self._static_argnames, compiler_options=options)

    def __call__(self, size: int, *args, **kwargs):
        jitted = self.quick if size <= SMALL_PROBLEM_SIZE else self.default
        return jitted(*args, **kwargs)


def _kernel(static_argnames=()):
    return functools.partial(_Kernel, static_argnames=static_argnames)


@_kernel(static_argnames=("k", "init", "n_init", "max_steps"))
def _kmeans_fit(x, w, key, centres, tol, *, k, init, n_init, max_steps):
    return cluster.kmeans(
        x,
        k=k,
        key=key,
        init=init if centres is None else centres,
        sample_weight=w,
        n_init=n_init,
        max_steps=max_steps,
        tol=tol,
    )


def _labels_inertia(x, w, centres):
    """Nearest-centre labels and ``Σ_i w_i ‖x_i − μ_{c_i}‖²`` from differences (no cancellation)."""
    labels = cluster.kmeans_predict(x, centres)
    sq = jnp.sum((x - centres[labels]) ** 2, axis=1)
    return labels, jnp.sum(sq if w is None else w * sq)


@_kernel()
def _score(x, w, centres):
    return -_labels_inertia(x, w, centres)[1]


_predict = _Kernel(cluster.kmeans_predict)


@_kernel()
def _euclidean_distances(x, centres):
    # Shifting both point sets by the mean centre leaves distances unchanged and shrinks the norms
    # in ‖x‖² − 2⟨x, μ⟩ + ‖μ‖², hence the cancellation error, for data far from the origin.
    shift = jnp.mean(centres, axis=0, keepdims=True)
    return jnp.sqrt(squared_distances(x - shift, centres - shift))


@_kernel(
    static_argnames=(
        "k",
        "init",
        "n_init",
        "batch_size",
        "max_steps",
        "max_no_improvement",
        "init_size",
    )
)
def _minibatch_fit(
    x,
    w,
    key,
    centres,
    tol,
    reassignment_ratio,
    *,
    k,
    init,
    n_init,
    batch_size,
    max_steps,
    max_no_improvement,
    init_size,
):
    if centres is None and n_init > 1:
        # scikit-learn's n_init for mini-batch k-means restarts the seeding only: keep the seeding
        # with the lowest inertia (here on all of x, not a subsample), then run one mini-batch loop.
        def seed(seed_key):
            state = cluster.minibatch_init(
                x, k=k, key=seed_key, init=init, sample_weight=w, init_size=init_size
            )
            return state.centroids, _labels_inertia(x, w, state.centroids)[1]

        key, seeds_key = jax.random.split(key)
        candidates, inertias = lax.map(seed, jax.random.split(seeds_key, n_init))
        centres = candidates[jnp.argmin(inertias)]
    return cluster.minibatch_kmeans(
        x,
        k=k,
        key=key,
        init=init if centres is None else centres,
        batch_size=batch_size,
        max_steps=max_steps,
        max_no_improvement=max_no_improvement,
        reassignment_ratio=reassignment_ratio,
        tol=tol,
        init_size=init_size,
        sample_weight=w,
    )


@_kernel(static_argnames=("k", "init", "init_size"))
def _minibatch_seed(x, w, key, centres, *, k, init, init_size):
    return cluster.minibatch_init(
        x,
        k=k,
        key=key,
        init=init if centres is None else centres,
        sample_weight=w,
        init_size=init_size,
    )


@_kernel()
def _minibatch_step(state, x, w, key, reassignment_ratio):
    state = cluster.minibatch_update(
        state, x, key=key, sample_weight=w, reassignment_ratio=reassignment_ratio
    )
    return state, *_labels_inertia(x, w, state.centroids)


# --------------------------------------------------------------------------------------------
# Host-side helpers.
# --------------------------------------------------------------------------------------------


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` if JAX can hold it (float64 needs x64 mode), else float32."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def _to_jax(a: np.ndarray) -> jax.Array:
    """``a`` on the device, float64 cast to float32 on the host when JAX's x64 mode is off."""
    return jnp.asarray(a.astype(_compute_dtype(a.dtype), copy=False))


def _to_numpy(a, dtype=None) -> np.ndarray:
    """A writable host copy (NumPy views of JAX arrays are read-only), cast to ``dtype``."""
    return np.array(a, dtype=dtype)


def _size(X: np.ndarray, centres) -> int:
    """``n · d · k``: the work of one assignment pass, which picks the compile mode."""
    return X.size * centres.shape[0]


def _seed(random_state) -> int:
    """The int that seeds ``jax.random.key``: ``random_state`` itself if it is an int."""
    if isinstance(random_state, numbers.Integral):
        check_random_state(random_state)  # scikit-learn's range check: 0 <= seed < 2**32
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _weights_or_none(sample_weight, X: np.ndarray) -> np.ndarray | None:
    """Validated weights, or None for None: the mini-batch samplers draw differently for the two."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)


class _BaseKMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Shared validation, prediction and transform; subclasses implement ``fit``."""

    _default_n_init_random: int = 10

    def __init__(self, n_clusters, *, init, n_init, max_iter, tol, random_state):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # -- validation ---------------------------------------------------------------------------

    def _validate_x(self, X, *, reset: bool) -> np.ndarray:
        return validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=reset)

    def _check_params(self, X: np.ndarray):
        """Validates hyperparameters against ``X``; returns ``(k, init, centres, n_init)``.

        ``init`` is the seeding name (None for an array) and ``centres`` the validated array of
        initial centres (None for a name).
        """
        k = check_scalar(self.n_clusters, "n_clusters", numbers.Integral, min_val=1)
        if X.shape[0] < k:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={k}.")
        check_scalar(self.max_iter, "max_iter", numbers.Integral, min_val=1)
        check_scalar(self.tol, "tol", numbers.Real, min_val=0.0)
        init, centres = self.init, None
        if isinstance(init, str):
            if init not in _INITS:
                raise ValueError(
                    f"The 'init' parameter of {type(self).__name__} must be a str among "
                    f"{list(_INITS)} or an array-like of shape (n_clusters, n_features). "
                    f"Got {init!r} instead."
                )
        elif hasattr(init, "__array__") or isinstance(init, (list, tuple)):
            centres = check_array(init, dtype=X.dtype, copy=True, order="C", input_name="init")
            if centres.shape != (k, X.shape[1]):
                raise ValueError(
                    f"The shape of the initial centers {centres.shape} does not match the "
                    f"number of clusters {k} and number of features {X.shape[1]}: expected "
                    f"{(k, X.shape[1])}."
                )
            init = None
        else:
            raise ValueError(
                f"The 'init' parameter of {type(self).__name__} must be 'k-means++', 'random' or "
                f"an array-like of shape (n_clusters, n_features). Got {init!r} instead."
            )
        if self.n_init == "auto":
            n_init = self._default_n_init_random if init == "random" else 1
        else:
            n_init = check_scalar(self.n_init, "n_init", numbers.Integral, min_val=1)
        if centres is not None and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        self._n_init = n_init
        return k, init, centres, n_init

    def _set_fitted(self, centres, labels, inertia, dtype, *, warn_empty: bool = True) -> None:
        self.cluster_centers_ = _to_numpy(centres, dtype)
        self.labels_ = _to_numpy(labels)
        self.inertia_ = float(inertia)
        self._n_features_out = self.cluster_centers_.shape[0]
        distinct = np.unique(self.labels_).size
        if warn_empty and distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -- inference ----------------------------------------------------------------------------

    def predict(self, X):
        """Index of the nearest cluster centre for each sample (ties to the lowest index).

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          Labels, int32 ndarray of shape (n_samples,).
        """
        check_is_fitted(self)
        X = self._validate_x(X, reset=False)
        centres = self.cluster_centers_
        return _to_numpy(_predict(_size(X, centres), _to_jax(X), _to_jax(centres)))

    def transform(self, X):
        """Euclidean (not squared) distances from each sample to each cluster centre.

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          ndarray of shape (n_samples, n_clusters), in the dtype of the validated ``X``.
        """
        check_is_fitted(self)
        X = self._validate_x(X, reset=False)
        centres = self.cluster_centers_
        distances = _euclidean_distances(_size(X, centres), _to_jax(X), _to_jax(centres))
        return _to_numpy(distances, X.dtype)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the k-means objective of ``X`` at the fitted centres.

        Args:
          X: array-like of shape (n_samples, n_features).
          y: ignored, present for API consistency.
          sample_weight: weights of shape (n_samples,); ones if None.

        Returns:
          ``-Σ_i w_i min_k ‖x_i − μ_k‖²``, a float.
        """
        check_is_fitted(self)
        X = self._validate_x(X, reset=False)
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype, allow_all_zero_weights=True)
        centres = self.cluster_centers_
        return float(_score(_size(X, centres), _to_jax(X), _to_jax(w), _to_jax(centres)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class KMeans(_BaseKMeans):
    """K-means (Lloyd's algorithm) as a scikit-learn estimator over :func:`jaxclust.cluster.kmeans`.

    Follows ``sklearn.cluster.KMeans(algorithm="lloyd")``: same seeding rules (greedy k-means++ or
    random rows), stopping rule, empty-cluster relocation and ``n_init="auto"``. From the same
    initial centres the fitted labels are identical to scikit-learn's; seeded runs differ from
    scikit-learn's because the random streams do (JAX's instead of NumPy's).

    Args:
      n_clusters: number of clusters ``k``; must not exceed the number of samples.
      init: ``"k-means++"``, ``"random"`` or an array of initial centres, shape
        (n_clusters, n_features).
      n_init: number of seedings, the lowest-inertia run is kept; ``"auto"`` is 10 for
        ``init="random"`` and 1 otherwise (scikit-learn >= 1.4). Forced to 1, with a
        ``RuntimeWarning``, when ``init`` is an array.
      max_iter: maximum Lloyd iterations per run.
      tol: relative tolerance on the squared centre shift, scaled by the mean feature variance.
      random_state: int, ``np.random.RandomState`` or None; see the module docstring for how it
        becomes a JAX key.

    Attributes:
      cluster_centers_: centres, ndarray (n_clusters, n_features) in the dtype of ``X``.
      labels_: int32 labels of the training samples, shape (n_samples,).
      inertia_: ``Σ_i w_i ‖x_i − μ_{c_i}‖²`` on the training data, float.
      n_iter_: Lloyd iterations run by the kept run, int.
      n_features_in_: number of features seen in ``fit``.
      feature_names_in_: column names, only when ``X`` had string column names (DataFrame).

    Examples:
      >>> import numpy as np
      >>> from jaxclust.sklearn import KMeans
      >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
      >>> km = KMeans(n_clusters=2, init=X[[0, 2]]).fit(X)
      >>> km.labels_.tolist(), float(km.inertia_), km.n_iter_
      ([0, 0, 1, 1], 1.0, 2)
      >>> km.predict([[1.0, 0.5], [9.0, 0.5]]).tolist()
      [0, 1]
      >>> km.transform([[0.0, 0.5]]).round(3).tolist()
      [[0.0, 10.0]]
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        random_state=None,
    ):
        super().__init__(
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
        )

    def fit(self, X, y=None, sample_weight=None):
        """Runs k-means on ``X``.

        Args:
          X: array-like of shape (n_samples, n_features); finite, dense.
          y: ignored, present for API consistency.
          sample_weight: non-negative weights of shape (n_samples,), not all zero; ones if None.

        Returns:
          self, fitted.

        Raises:
          ValueError: for NaN/Inf, empty or non-2-D ``X``, ``n_clusters`` larger than the number of
            samples, bad weights, or out-of-range hyperparameters (scikit-learn's messages).
          TypeError: for sparse or complex ``X`` and hyperparameters of the wrong type.
        """
        X = self._validate_x(X, reset=True)
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        k, init, centres, n_init = self._check_params(X)
        result = _kmeans_fit(
            X.size * k,
            _to_jax(X),
            _to_jax(w),
            None if centres is not None else jax.random.key(_seed(self.random_state)),
            None if centres is None else _to_jax(centres),
            float(self.tol),
            k=k,
            init=init,
            n_init=n_init,
            max_steps=int(self.max_iter),
        )
        self._set_fitted(result.centroids, result.labels, result.inertia, X.dtype)
        self.n_iter_ = int(result.num_steps)
        return self


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch k-means, a scikit-learn estimator over :func:`jaxclust.cluster.minibatch_kmeans`.

    Follows ``sklearn.cluster.MiniBatchKMeans``: per-centre learning rates from cumulative counts,
    random reassignment of low-count centres, and early stopping on an exponentially weighted
    average of the batch inertia. ``fit`` draws batches with replacement, in proportion to the
    sample weights; ``partial_fit`` makes one update from the batch it is given.

    ``max_iter`` counts passes over the data, as in scikit-learn: ``fit`` runs at most
    ``max_iter * n_samples // batch_size`` mini-batch steps (``batch_size`` capped at
    ``n_samples``), and reports ``n_iter_ = ceil(n_steps_ * batch_size / n_samples)``.

    Args:
      n_clusters: number of clusters ``k``; must not exceed the number of samples.
      init: ``"k-means++"``, ``"random"`` or an array of initial centres, shape
        (n_clusters, n_features).
      max_iter: maximum number of passes over the data (epochs), see above.
      batch_size: samples per mini-batch; capped at the number of samples.
      tol: stop when the squared centre shift of a step, scaled by the mean feature variance,
        falls to ``tol``; 0 disables this test.
      max_no_improvement: stop after this many consecutive steps without improvement of the
        smoothed batch inertia; None disables this test.
      init_size: samples used by the seeding; ``3 * batch_size`` if None (raised to
        ``3 * n_clusters`` if smaller than ``n_clusters``), capped at ``n_samples``.
      n_init: number of seedings, the one with the lowest inertia on the full data starts the
        single mini-batch run (scikit-learn scores them on a subsample); ``"auto"`` is 3 for
        ``init="random"`` and 1 otherwise. Forced to 1 when ``init`` is an array. When above 1,
        the key splits into ``(run_key, seeds_key)``: ``minibatch_init`` seeds with each of
        ``jax.random.split(seeds_key, n_init)`` and ``minibatch_kmeans`` runs with ``run_key``.
      reassignment_ratio: centres whose count is below this fraction of the largest count are
        moved to random batch points; 0 disables reassignment (then only seeding is random).
      random_state: int, ``np.random.RandomState`` or None; see the module docstring. In
        ``partial_fit`` step ``t`` uses ``jax.random.fold_in(key, t)``.

    Attributes:
      cluster_centers_: centres, ndarray (n_clusters, n_features) in the dtype of ``X``.
      counts_: sample weight per centre, shape (n_clusters,): after ``fit``, the weight of each
        cluster at ``labels_`` (``KMeansResult.counts``); after ``partial_fit``, the cumulative
        weight absorbed by each centre over the batches (``KMeansState.counts``), which sets its
        learning rate.
      labels_: int32 labels of the samples of the last ``fit`` (or ``partial_fit`` batch).
      inertia_: objective of those samples at the final centres, float.
      n_iter_: passes over the data run by ``fit``.
      n_steps_: mini-batch steps run (by ``fit``, or ``partial_fit`` calls so far).
      n_features_in_: number of features seen in the first ``fit``/``partial_fit``.
      feature_names_in_: column names, only when ``X`` had string column names (DataFrame).

    Examples:
      >>> import numpy as np
      >>> from jaxclust.sklearn import MiniBatchKMeans
      >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
      >>> mbk = MiniBatchKMeans(n_clusters=2, init=X[[0, 2]], batch_size=4, random_state=0)
      >>> mbk = mbk.fit(X)
      >>> mbk.labels_.tolist(), mbk.n_iter_, mbk.n_steps_ <= 100
      ([0, 0, 1, 1], ..., True)
      >>> stream = MiniBatchKMeans(n_clusters=2, init=X[[0, 2]], random_state=0)
      >>> for batch in (X, X[::-1]):
      ...     stream = stream.partial_fit(batch)
      >>> stream.predict([[1.0, 0.5], [9.0, 0.5]]).tolist(), stream.n_steps_
      ([0, 1], 2)
    """

    _default_n_init_random = 3

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        tol=0.0,
        max_no_improvement=10,
        init_size=None,
        n_init="auto",
        reassignment_ratio=0.01,
        random_state=None,
    ):
        super().__init__(
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
        )
        self.batch_size = batch_size
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.reassignment_ratio = reassignment_ratio

    def _check_minibatch_params(self, X: np.ndarray) -> tuple[int, int]:
        """scikit-learn's effective ``(batch_size, init_size)`` for ``X``."""
        batch_size = check_scalar(self.batch_size, "batch_size", numbers.Integral, min_val=1)
        batch_size = min(batch_size, X.shape[0])
        if self.max_no_improvement is not None:
            check_scalar(self.max_no_improvement, "max_no_improvement", numbers.Integral, min_val=0)
        check_scalar(self.reassignment_ratio, "reassignment_ratio", numbers.Real, min_val=0.0)
        if self.init_size is None:
            init_size = 3 * batch_size
            if init_size < self.n_clusters:
                init_size = 3 * self.n_clusters
        else:
            init_size = check_scalar(self.init_size, "init_size", numbers.Integral, min_val=1)
            if init_size < self.n_clusters:
                warnings.warn(
                    f"init_size={init_size} should be larger than n_clusters={self.n_clusters}. "
                    "Setting it to min(3*n_clusters, n_samples)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                init_size = 3 * self.n_clusters
        return batch_size, min(init_size, X.shape[0])

    def fit(self, X, y=None, sample_weight=None):
        """Runs mini-batch k-means on ``X``, drawing batches from it.

        Args:
          X: array-like of shape (n_samples, n_features); finite, dense.
          y: ignored, present for API consistency.
          sample_weight: non-negative weights of shape (n_samples,), not all zero; ones if None.
            Batches are drawn with probability proportional to them.

        Returns:
          self, fitted.

        Raises:
          ValueError, TypeError: as :meth:`KMeans.fit`.
        """
        X = self._validate_x(X, reset=True)
        w = _weights_or_none(sample_weight, X)
        k, init, centres, n_init = self._check_params(X)
        batch_size, init_size = self._check_minibatch_params(X)
        n = X.shape[0]
        self._key_seed = _seed(self.random_state)
        result = _minibatch_fit(
            X.size * k,
            _to_jax(X),
            None if w is None else _to_jax(w),
            jax.random.key(self._key_seed),
            None if centres is None else _to_jax(centres),
            float(self.tol),
            float(self.reassignment_ratio),
            k=k,
            init=init,
            n_init=n_init,
            batch_size=batch_size,
            max_steps=int(self.max_iter) * n // batch_size,
            max_no_improvement=self.max_no_improvement,
            init_size=init_size,
        )
        self._set_fitted(result.centroids, result.labels, result.inertia, X.dtype)
        self.counts_ = _to_numpy(result.counts, X.dtype)
        self.n_steps_ = int(result.num_steps)
        self.n_iter_ = -(-self.n_steps_ * batch_size // n)
        self._state = None  # built from the fitted centres and counts if partial_fit follows
        return self

    def _step_key(self) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self._key_seed), self.n_steps_)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch update with the batch ``X`` (seeding on it first if not yet fitted).

        Step ``t`` (counting from 0) uses the key ``jax.random.fold_in(key, t)``; the first call
        splits its key into ``(update_key, seeding_key)`` and seeds on its batch. After
        :meth:`fit`, the stream continues from the fitted centres with ``counts_`` (the cluster
        weights of the full data) as the counts, so the next batch moves the centres by its share
        of all the weight seen; ``fit``'s own cumulative batch counts are not kept by
        :func:`jaxclust.cluster.minibatch_kmeans`. ``n_init`` is not used here, as in scikit-learn.

        Args:
          X: the batch, array-like of shape (n_samples, n_features); the first batch needs at least
            ``n_clusters`` rows. Batches of equal shape reuse one compilation.
          y: ignored, present for API consistency.
          sample_weight: non-negative weights of the batch, shape (n_samples,); ones if None.

        Returns:
          self, updated.
        """
        fitted = hasattr(self, "cluster_centers_")
        X = self._validate_x(X, reset=not fitted)
        w = _weights_or_none(sample_weight, X)
        check_scalar(self.reassignment_ratio, "reassignment_ratio", numbers.Real, min_val=0.0)
        if not fitted:
            k, init, centres, _ = self._check_params(X)
            _, init_size = self._check_minibatch_params(X)
            self._key_seed = _seed(self.random_state)
            self.n_steps_ = 0
            key, seed_key = jax.random.split(self._step_key())
            state = _minibatch_seed(
                X.size * k,
                _to_jax(X),
                None if w is None else _to_jax(w),
                seed_key,
                None if centres is None else _to_jax(centres),
                k=k,
                init=init,
                init_size=init_size,
            )
        elif self._state is None:  # after fit
            key, centres = self._step_key(), _to_jax(self.cluster_centers_)
            state = cluster.minibatch_init(centres, k=centres.shape[0], init=centres)._replace(
                counts=_to_jax(self.counts_), step=jnp.int32(self.n_steps_)
            )
        else:
            key, state = self._step_key(), self._state
        state, labels, inertia = _minibatch_step(
            _size(X, state.centroids),
            state,
            _to_jax(X),
            None if w is None else _to_jax(w),
            key,
            float(self.reassignment_ratio),
        )
        self._state = jax.device_get(state)
        self._set_fitted(state.centroids, labels, inertia, X.dtype, warn_empty=False)
        self.counts_ = _to_numpy(state.counts, X.dtype)
        self.n_steps_ += 1
        return self


# --------------------------------------------------------------------------------------------
# Gaussian mixtures.

_GMM_INITS = ("kmeans", "k-means++", "random")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@_kernel(static_argnames=("k", "covariance_type", "init", "n_init", "max_steps"))
def _gmm_fit(x, key, params, reg_covar, tol, *, k, covariance_type, init, n_init, max_steps):
    return cluster.gmm(
        x,
        k=k,
        key=key,
        covariance_type=covariance_type,
        init=init if params is None else params,
        reg_covar=reg_covar,
        tol=tol,
        max_steps=max_steps,
        n_init=n_init,
    )


def _gmm_model(weights, means, precisions_cholesky) -> cluster.GMMResult:
    """A GMMResult carrying only what the gmm_* model functions read."""
    return cluster.GMMResult(weights, means, None, precisions_cholesky, *(None,) * 5)


_gmm_score_samples = _Kernel(
    lambda x, w, m, u, *, covariance_type: cluster.gmm_score_samples(
        x, _gmm_model(w, m, u), covariance_type=covariance_type
    ),
    static_argnames=("covariance_type",),
)
_gmm_predict_proba = _Kernel(
    lambda x, w, m, u, *, covariance_type: cluster.gmm_predict_proba(
        x, _gmm_model(w, m, u), covariance_type=covariance_type
    ),
    static_argnames=("covariance_type",),
)


def _precisions_from_cholesky(factors: np.ndarray, covariance_type: str) -> np.ndarray:
    """scikit-learn's ``precisions_``: ``U Uᵀ`` for matrices, ``u²`` otherwise."""
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", factors, factors)
    if covariance_type == "tied":
        return factors @ factors.T
    return factors**2


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM, a scikit-learn estimator over :func:`jaxclust.cluster.gmm`.

    Follows ``sklearn.mixture.GaussianMixture``: the same four covariance types, ``reg_covar``,
    stopping rule (change of the mean log-likelihood below ``tol``), ``n_init`` restarts keeping
    the largest lower bound, and a final E-step so that ``fit_predict(X)`` equals
    ``fit(X).predict(X)``. From the same ``weights_init``, ``means_init`` and ``precisions_init``
    the fitted parameters equal scikit-learn's to rounding; seeded runs differ from scikit-learn's
    because the random streams do (JAX's instead of NumPy's).

    When only some of ``weights_init``, ``means_init``, ``precisions_init`` are given, the others
    come from the ``init_params`` seeding (its initial M-step), as in scikit-learn, except that
    the seeded covariances are not recomputed around a given ``means_init``.

    Args:
      n_components: number of mixture components ``k``; must not exceed the number of samples.
      covariance_type: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.
      tol: convergence threshold on the change of the mean log-likelihood.
      reg_covar: non-negative value added to the diagonal of every covariance.
      max_iter: maximum EM iterations per initialisation.
      n_init: number of initialisations; the one with the largest lower bound is kept.
      init_params: ``"kmeans"``, ``"k-means++"`` or ``"random"`` (responsibilities), as in
        scikit-learn (``"random_from_data"`` is not supported).
      weights_init: initial weights, shape (n_components,), or None.
      means_init: initial means, shape (n_components, n_features), or None.
      precisions_init: initial precisions (inverse covariances), shaped by ``covariance_type``
        as in scikit-learn, or None.
      random_state: int, ``np.random.RandomState`` or None; see the module docstring.

    Attributes:
      weights_, means_, covariances_, precisions_, precisions_cholesky_: fitted parameters,
        laid out as scikit-learn's, in the dtype of ``X``.
      converged_: whether the kept initialisation converged.
      n_iter_: EM iterations of the kept initialisation.
      lower_bound_: mean log-likelihood at its last E-step.
      n_features_in_, feature_names_in_: as in every scikit-learn estimator.

    Examples:
      >>> import numpy as np
      >>> from jaxclust.sklearn import GaussianMixture
      >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [9.0, 9.0], [9.0, 10.0], [10.0, 9.0]])
      >>> gm = GaussianMixture(2, covariance_type="spherical", means_init=X[[0, 3]]).fit(X)
      >>> gm.predict(X).tolist(), gm.weights_.round(2).tolist(), gm.converged_
      ([0, 0, 0, 1, 1, 1], [0.5, 0.5], True)
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state

    def _validate_x(self, X, *, reset: bool) -> np.ndarray:
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)

    def _check_params(self, X: np.ndarray) -> tuple[int, int]:
        k = check_scalar(self.n_components, "n_components", numbers.Integral, min_val=1)
        if X.shape[0] < k:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {k}, "
                f"n_samples = {X.shape[0]}"
            )
        check_scalar(self.tol, "tol", numbers.Real, min_val=0.0)
        check_scalar(self.reg_covar, "reg_covar", numbers.Real, min_val=0.0)
        check_scalar(self.max_iter, "max_iter", numbers.Integral, min_val=0)
        n_init = check_scalar(self.n_init, "n_init", numbers.Integral, min_val=1)
        for name, value, options in (
            ("covariance_type", self.covariance_type, _COVARIANCE_TYPES),
            ("init_params", self.init_params, _GMM_INITS),
        ):
            if not isinstance(value, str) or value not in options:
                raise ValueError(
                    f"The '{name}' parameter of GaussianMixture must be a str among "
                    f"{list(options)}. Got {value!r} instead."
                )
        return k, n_init

    def _initial_arrays(self, X: np.ndarray, k: int):
        """Validated ``(weights, means, precisions)`` given by the user, None where not given."""
        d, ct = X.shape[1], self.covariance_type
        out = []
        shapes = {
            "weights_init": (k,),
            "means_init": (k, d),
            "precisions_init": {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[ct],
        }
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is None:
                out.append(None)
                continue
            value = check_array(value, dtype=X.dtype, ensure_2d=False, allow_nd=True, input_name=name)
            if value.shape != shape:
                raise ValueError(
                    f"The parameter '{name}' should have the shape of {shape}, but got "
                    f"{value.shape}"
                )
            out.append(value)
        weights, means, precisions = out
        if weights is not None and (
            (weights < 0).any() or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6)
        ):
            raise ValueError(
                "The parameter 'weights' should be non-negative and normalized, but got sum(weights) "
                f"= {weights.sum():.5f}"
            )
        if precisions is not None:
            if ct in ("full", "tied"):
                mats = precisions.reshape(-1, d, d)
                if not np.allclose(mats, np.swapaxes(mats, 1, 2)) or (
                    np.linalg.eigvalsh(mats).min(axis=1) <= 0
                ).any():
                    raise ValueError(f"'{ct} precision' should be symmetric, positive-definite")
            elif (precisions <= 0).any():
                raise ValueError(f"'{ct} precision' should be positive")
        return weights, means, precisions

    def fit(self, X, y=None):
        """Fits the mixture to ``X`` by EM.

        Args:
          X: array-like of shape (n_samples, n_features); finite, dense.
          y: ignored, present for API consistency.

        Returns:
          self, fitted.

        Raises:
          ValueError: for NaN/Inf, empty or non-2-D ``X``, ``n_components`` larger than the number
            of samples, badly shaped or invalid initial parameters, or out-of-range
            hyperparameters (scikit-learn's messages).
          TypeError: for sparse or complex ``X`` and hyperparameters of the wrong type.
        """
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None):
        """Fits the mixture to ``X`` and returns the most probable component of each sample.

        Args:
          X: array-like of shape (n_samples, n_features).
          y: ignored, present for API consistency.

        Returns:
          Labels, int32 ndarray of shape (n_samples,).
        """
        X = self._validate_x(X, reset=True)
        k, n_init = self._check_params(X)
        weights, means, precisions = self._initial_arrays(X, k)
        ct = self.covariance_type
        size = X.size * k * (X.shape[1] if ct in ("full", "tied") else 1)
        key = jax.random.key(_seed(self.random_state))
        given = (weights, means, precisions)
        params = None
        if any(a is not None for a in given):
            if any(a is None for a in given):  # complete from the seeding's initial M-step
                seeded = _gmm_fit(
                    size, _to_jax(X), key, None, float(self.reg_covar), float(self.tol),
                    k=k, covariance_type=ct, init=self.init_params, n_init=1, max_steps=0,
                )
                factors = np.asarray(seeded.precisions_cholesky, np.float64)
                weights = np.asarray(seeded.weights) if weights is None else weights
                means = np.asarray(seeded.means) if means is None else means
                if precisions is None:
                    precisions = _precisions_from_cholesky(factors, ct)
            params = cluster.GMMParams(*(_to_jax(np.asarray(a, X.dtype)) for a in (weights, means, precisions)))
            n_init = 1
        result = _gmm_fit(
            size, _to_jax(X), None if params is not None else key, params,
            float(self.reg_covar), float(self.tol),
            k=k, covariance_type=ct, init=None if params is not None else self.init_params,
            n_init=n_init, max_steps=int(self.max_iter),
        )
        self.weights_ = _to_numpy(result.weights, X.dtype)
        self.means_ = _to_numpy(result.means, X.dtype)
        self.covariances_ = _to_numpy(result.covariances, X.dtype)
        self.precisions_cholesky_ = _to_numpy(result.precisions_cholesky, X.dtype)
        self.precisions_ = _precisions_from_cholesky(self.precisions_cholesky_, ct)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.num_steps)
        self.lower_bound_ = float(result.lower_bound)
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return _to_numpy(result.labels)

    def _model_args(self, X: np.ndarray):
        size = X.size * self.n_components
        arrays = (self.weights_, self.means_, self.precisions_cholesky_)
        return size, _to_jax(X), *(_to_jax(np.asarray(a, X.dtype)) for a in arrays)

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each sample under the fitted mixture.

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          ndarray of shape (n_samples,).
        """
        check_is_fitted(self)
        X = self._validate_x(X, reset=False)
        out = _gmm_score_samples(*self._model_args(X), covariance_type=self.covariance_type)
        return _to_numpy(out, X.dtype)

    def score(self, X, y=None):
        """Mean per-sample log-likelihood of ``X`` (higher is better).

        Args:
          X: array-like of shape (n_samples, n_features).
          y: ignored, present for API consistency.

        Returns:
          A float.
        """
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          ndarray of shape (n_samples, n_components); rows sum to one.
        """
        check_is_fitted(self)
        X = self._validate_x(X, reset=False)
        out = _gmm_predict_proba(*self._model_args(X), covariance_type=self.covariance_type)
        return _to_numpy(out, X.dtype)

    def predict(self, X):
        """Most probable component of each sample.

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          int32 ndarray of shape (n_samples,).
        """
        return self.predict_proba(X).argmax(axis=1).astype(np.int32)

    def _n_parameters(self) -> int:
        k, d = self.means_.shape
        return cluster.gmm_num_parameters(k, d, covariance_type=self.covariance_type)

    def bic(self, X):
        """Bayesian information criterion of the fitted mixture on ``X`` (lower is better).

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          ``−2 Σ_i log p(x_i) + p ln n``, a float.
        """
        n = np.shape(X)[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion of the fitted mixture on ``X`` (lower is better).

        Args:
          X: array-like of shape (n_samples, n_features).

        Returns:
          ``−2 Σ_i log p(x_i) + 2p``, a float.
        """
        return -2.0 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()


# ---------------------------------------------------------------------------------------------
# Spectral clustering.

_AFFINITIES = ("rbf", "nearest_neighbors", "precomputed")
_EIGEN_SOLVERS = {None: "auto", "arpack": "auto", "lobpcg": "lobpcg", "dense": "dense"}


class SpectralClustering(ClusterMixin, BaseEstimator):
    """Spectral clustering, a scikit-learn estimator over :func:`jaxclust.cluster.spectral_clustering`.

    Parameters follow ``sklearn.cluster.SpectralClustering``. The embedding is Ng–Jordan–Weiss's
    (eigenvectors of the normalised affinity, rows normalised to unit length) followed by
    k-means; scikit-learn's default ``assign_labels="kmeans"`` uses the unnormalised-row variant,
    which gives the same partitions on well-separated data (ARI 1 in the tests). ``eigen_solver``
    ``None``/``"arpack"`` map to jaxclust's ``"auto"`` (dense ``eigh`` for small problems,
    LOBPCG otherwise) and ``"lobpcg"`` to LOBPCG; ``"amg"``, ``assign_labels`` other than
    ``"kmeans"`` and the polynomial/sigmoid kernels are not supported.

    Args:
      n_clusters: number of clusters.
      eigen_solver: ``None``, ``"arpack"``, ``"lobpcg"`` or ``"dense"``.
      n_init: k-means restarts on the embedding.
      gamma: RBF kernel coefficient, ``exp(−gamma ‖x − y‖²)``.
      affinity: ``"rbf"``, ``"nearest_neighbors"`` (symmetrised kNN connectivity) or
        ``"precomputed"`` (``X`` is an [n, n] affinity matrix).
      n_neighbors: neighbours of the kNN affinity.
      random_state: int, ``np.random.RandomState`` or None (see the module docstring).

    Attributes:
      labels_: cluster of each sample, shape (n_samples,).
      n_features_in_, feature_names_in_: as in every scikit-learn estimator.

    Examples:
      >>> import numpy as np
      >>> from jaxclust.sklearn import SpectralClustering
      >>> X = np.array([[0.0, 0.0], [0.0, 0.3], [0.3, 0.0], [5.0, 5.0], [5.0, 5.3], [5.3, 5.0]])
      >>> labels = SpectralClustering(2, random_state=0).fit_predict(X)
      >>> bool(labels[0] == labels[1] == labels[2]), bool(labels[0] != labels[3])
      (True, True)
    """

    def __init__(self, n_clusters=8, *, eigen_solver=None, n_init=10, gamma=1.0,
                 affinity="rbf", n_neighbors=10, random_state=None):
        self.n_clusters = n_clusters
        self.eigen_solver = eigen_solver
        self.n_init = n_init
        self.gamma = gamma
        self.affinity = affinity
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X, y=None):
        """Clusters ``X`` (features, or an affinity matrix when ``affinity="precomputed"``).

        Args:
          X: array-like of shape (n_samples, n_features), or (n_samples, n_samples).
          y: ignored.

        Returns:
          self, with ``labels_``.

        Raises:
          ValueError: for invalid data or parameters (scikit-learn's messages where it has them).
          TypeError: for sparse or complex ``X`` and parameters of the wrong type.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        k = check_scalar(self.n_clusters, "n_clusters", numbers.Integral, min_val=1)
        n_init = check_scalar(self.n_init, "n_init", numbers.Integral, min_val=1)
        check_scalar(self.gamma, "gamma", numbers.Real, min_val=0.0)
        n_neighbors = check_scalar(self.n_neighbors, "n_neighbors", numbers.Integral, min_val=1)
        for name, value, options in (("affinity", self.affinity, _AFFINITIES),
                                     ("eigen_solver", self.eigen_solver, tuple(_EIGEN_SOLVERS))):
            if value not in options:
                raise ValueError(
                    f"The '{name}' parameter of SpectralClustering must be one of "
                    f"{list(options)}. Got {value!r} instead."
                )
        n = X.shape[0]
        if self.affinity == "precomputed" and X.shape[1] != n:
            raise ValueError(f"A precomputed affinity must be square, got shape {X.shape}.")
        if k > n:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
        n_neighbors = min(n_neighbors, n - 1) if n > 1 else 1
        result = cluster.spectral_clustering(
            _to_jax(X), k=k, key=jax.random.key(_seed(self.random_state)),
            affinity=self.affinity, gamma=float(self.gamma), n_neighbors=n_neighbors,
            eigen_solver=_EIGEN_SOLVERS[self.eigen_solver], n_init=n_init,
        )
        self.labels_ = _to_numpy(result.labels, np.int64)
        return self

    def fit_predict(self, X, y=None):
        """Fits and returns ``labels_``."""
        return self.fit(X, y).labels_


# ---------------------------------------------------------------------------------------------
# Non-negative matrix factorisation.

_NMF_INITS = (None, "random", "nndsvd", "nndsvda", "custom")
_BETA_LOSSES = {"frobenius": "frobenius", 2: "frobenius", "kullback-leibler": "kullback-leibler",
                1: "kullback-leibler"}


@_kernel(static_argnames=("rank", "init", "loss", "max_steps", "update_h"))
def _nmf_fit(x, key, w0, h0, tol, *, rank, init, loss, max_steps, update_h):
    return cluster.nmf(
        x, rank=rank, key=key, init=(w0, h0) if init == "custom" else init, loss=loss,
        max_steps=max_steps, tol=tol, update_h=update_h,
    )


class NMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Non-negative matrix factorisation, a scikit-learn estimator over :func:`jaxclust.cluster.nmf`.

    Parameters follow ``sklearn.decomposition.NMF`` with ``solver="mu"`` (the only solver):
    ``fit_transform`` returns ``W`` and stores ``H`` as ``components_``; ``transform`` fits ``W``
    for new rows with ``H`` fixed, starting, as scikit-learn does, from the constant
    ``√(mean(X)/r)``. From the same start (``init="custom"``, or the deterministic NNDSVD starts)
    the factors equal scikit-learn's to float32 rounding (tested). ``init=None`` picks
    ``"nndsvda"`` when ``n_components <= min(n_samples, n_features)``, else ``"random"``, as
    scikit-learn does with ``solver="mu"``. Not supported: the ``"cd"`` solver, ``"nndsvdar"``,
    ``beta_loss`` other than Frobenius and KL, the ``alpha_W``/``alpha_H``/``l1_ratio``
    penalties, sparse input.

    Args:
      n_components: number of components ``r``; ``"auto"`` (default) takes it from ``H`` with
        ``init="custom"``, else ``n_features``.
      init: ``None`` (see above), ``"nndsvda"``, ``"nndsvd"`` (see :func:`jaxclust.cluster.nmf`),
        ``"random"`` (``|N(0, 1)| · √(mean(X)/r)``, keyed by ``random_state``) or ``"custom"``
        (``W`` and ``H`` passed to ``fit``/``fit_transform``).
      beta_loss: ``"frobenius"`` (or 2) or ``"kullback-leibler"`` (or 1).
      tol: tolerance of scikit-learn's stopping rule (checked every 10 updates); 0 runs
        ``max_iter`` updates.
      max_iter: maximum number of updates.
      random_state: int, ``np.random.RandomState`` or None (see the module docstring).

    Attributes:
      components_: ``H``, shape (n_components, n_features).
      n_components_: the number of components.
      reconstruction_err_: ``‖X − WH‖_F``, or ``√(2·KL)`` for the KL loss, at the end of fit.
      n_iter_: updates run.
      n_features_in_, feature_names_in_: as in every scikit-learn estimator.

    Examples:
      >>> import numpy as np
      >>> from jaxclust.sklearn import NMF
      >>> X = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.2], [4.0, 1.0], [5.0, 0.8], [6.0, 1.0]])
      >>> model = NMF(n_components=2, random_state=0, max_iter=1000)
      >>> W = model.fit_transform(X)
      >>> W.shape, model.components_.shape, bool(model.reconstruction_err_ < 0.1)
      ((6, 2), (2, 2), True)
    """

    def __init__(self, n_components="auto", *, init=None, beta_loss="frobenius", tol=1e-4,
                 max_iter=200, random_state=None):
        self.n_components = n_components
        self.init = init
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _validate(self, X, reset: bool):
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        if X.size and X.min() < 0:
            raise ValueError("Negative values in data passed to NMF (input X).")
        return X

    def _options(self):
        if self.init not in _NMF_INITS:
            raise ValueError(
                f"The 'init' parameter of NMF must be one of {list(_NMF_INITS)}. Got {self.init!r} "
                "instead ('nndsvdar' is not implemented)."
            )
        if not isinstance(self.beta_loss, (str, numbers.Integral)) or self.beta_loss not in _BETA_LOSSES:
            raise ValueError(
                "The 'beta_loss' parameter of NMF must be 'frobenius' (2) or 'kullback-leibler' "
                f"(1). Got {self.beta_loss!r} instead."
            )
        if not (self.n_components == "auto" or isinstance(self.n_components, numbers.Integral)):
            raise ValueError(f"n_components must be 'auto' or an int, got {self.n_components!r}.")
        if isinstance(self.n_components, numbers.Integral):
            check_scalar(self.n_components, "n_components", numbers.Integral, min_val=1)
        check_scalar(self.max_iter, "max_iter", numbers.Integral, min_val=0)
        check_scalar(self.tol, "tol", numbers.Real, min_val=0.0)
        return _BETA_LOSSES[self.beta_loss]

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learns ``H`` (``components_``) and returns ``W``.

        Args:
          X: non-negative array-like of shape (n_samples, n_features).
          y: ignored.
          W: initial ``W`` (n_samples, n_components) for ``init="custom"``.
          H: initial ``H`` (n_components, n_features) for ``init="custom"``.

        Returns:
          ``W``, shape (n_samples, n_components), in ``X``'s dtype.

        Raises:
          ValueError: for negative or invalid data, invalid parameters or ``W``/``H`` shapes.
        """
        X = self._validate(X, reset=True)
        loss = self._options()
        n, m = X.shape
        if self.init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H.")
            W, H = (check_array(a, dtype=X.dtype) for a in (W, H))
            rank = H.shape[0] if self.n_components == "auto" else self.n_components
            for name, a, shape in (("W", W, (n, rank)), ("H", H, (rank, m))):
                if a.shape != shape:
                    raise ValueError(f"Array with wrong shape passed to NMF (input {name}). "
                                     f"Expected {shape}, but got {a.shape}.")
            w0, h0 = _to_jax(np.maximum(W, np.finfo(np.float32).tiny)), _to_jax(
                np.maximum(H, np.finfo(np.float32).tiny))
            init = "custom"
        else:
            rank = m if self.n_components == "auto" else self.n_components
            w0 = h0 = None
            init = self.init
            if init is None:
                init = "nndsvda" if rank <= min(n, m) else "random"
            if init != "random" and rank > min(n, m):
                raise ValueError(
                    f"init={init!r} can only be used when n_components <= min(n_samples, "
                    f"n_features) = {min(n, m)}, got n_components={rank}."
                )
        key = jax.random.key(_seed(self.random_state))
        tol = jnp.asarray(self.tol, _compute_dtype(X.dtype))
        result = _nmf_fit(X.size * rank, _to_jax(X), key, w0, h0, tol, rank=rank, init=init,
                          loss=loss, max_steps=self.max_iter, update_h=True)
        self.components_ = _to_numpy(result.h, X.dtype)
        self.n_components_ = rank
        self.reconstruction_err_ = float(result.reconstruction_error)
        self.n_iter_ = int(result.num_steps)
        if self.tol > 0 and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to improve "
                "convergence.", ConvergenceWarning,
            )
        return _to_numpy(result.w, X.dtype)

    def fit(self, X, y=None, **params):
        """Learns ``components_`` (see :meth:`fit_transform`). Returns self."""
        self.fit_transform(X, y, **params)
        return self

    def transform(self, X):
        """``W`` for new rows: fits ``W`` with ``components_`` fixed (``max_iter`` updates, ``tol``).

        Args:
          X: non-negative array-like of shape (n_samples, n_features).

        Returns:
          ``W``, shape (n_samples, n_components), in ``X``'s dtype.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        loss = self._options()
        rank = self.n_components_
        avg = np.sqrt(X.mean() / rank) if X.size else 0.0
        if avg <= 0:  # all-zero input: zero codes (a zero start would stay zero anyway)
            return np.zeros((X.shape[0], rank), X.dtype)
        w0 = jnp.full((X.shape[0], rank), avg, _compute_dtype(X.dtype))
        tol = jnp.asarray(self.tol, _compute_dtype(X.dtype))
        result = _nmf_fit(X.size * rank, _to_jax(X), None, w0, _to_jax(self.components_), tol,
                          rank=rank, init="custom", loss=loss, max_steps=self.max_iter,
                          update_h=False)
        return _to_numpy(result.w, X.dtype)

    def inverse_transform(self, X):
        """``X @ components_``: the data a code ``W`` reconstructs."""
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32])
        return X @ self.components_.astype(X.dtype)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
