"""``train_and_evaluate(config, workdir)``: runs one experiment and writes its results.

Importable from a notebook: ``from experiments.train import train_and_evaluate``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pathlib
import time
from typing import NamedTuple

import jax
import ml_collections
import numpy as np

import jaxclust.cluster
import jaxclust.data
import jaxclust.metrics
import jaxclust.parallel


def evaluate(labels: np.ndarray, y: np.ndarray | None, x: np.ndarray) -> dict[str, float]:
    """External metrics against ``y`` (when known) and the silhouette of ``labels`` on ``x``
    (skipped when ``x`` is None)."""
    out: dict[str, float] = {}
    if y is not None:
        out["acc"] = float(jaxclust.metrics.accuracy(y, labels))
        out["nmi"] = float(jaxclust.metrics.nmi(y, labels))
        out["ami"] = float(jaxclust.metrics.ami(y, labels))
        out["ari"] = float(jaxclust.metrics.ari(y, labels))
        out["purity"] = float(jaxclust.metrics.purity(y, labels))
    if x is not None and len(np.unique(labels)) > 1:
        out["silhouette"] = float(jaxclust.metrics.silhouette_score(x, labels))
    return out


def per_class_recall(labels: np.ndarray, y: np.ndarray, k: int) -> list[float]:
    """For each class ``c`` (``0..max(y)``), the fraction of its samples whose cluster is matched
    to ``c`` by the one-to-one matching that ACC uses."""
    labels, y = np.asarray(labels), np.asarray(y)
    num_classes = int(y.max()) + 1
    mapping = np.asarray(jaxclust.metrics.match_clusters_to_classes(
        y, labels, num_classes=num_classes, num_clusters=k))
    hit = mapping[labels] == y
    return [float(hit[y == c].mean()) if (y == c).any() else float("nan")
            for c in range(num_classes)]


def rarest_classes(counts: np.ndarray, tail: float) -> np.ndarray:
    """The ``round(tail · C)`` classes (at least one) with the fewest samples, rarest first."""
    counts = np.asarray(counts)
    return np.argsort(counts, kind="stable")[:max(1, int(round(tail * len(counts))))]


def mean_std(values) -> str:
    """``"mean ± std"`` (sample std; 0 for a single value) with three decimals."""
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def _run_kmeans(config, x, mask):
    run = jax.jit(
        functools.partial(
            jaxclust.cluster.kmeans,
            k=config.k,
            init=config.init,
            n_init=config.n_init,
            max_steps=config.max_steps,
            tol=config.tol,
        )
    )
    key = jax.random.key(config.seed)
    weight = mask.astype(x.dtype)
    start = time.perf_counter()
    result = jax.block_until_ready(run(x, key=key, sample_weight=weight))
    first = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.block_until_ready(run(x, key=key, sample_weight=weight))
    return result, first, time.perf_counter() - start


def _sklearn_kmeans(config, x):
    from sklearn.cluster import KMeans

    start = time.perf_counter()
    model = KMeans(
        config.k, init=config.init, n_init=config.n_init, max_iter=config.max_steps, tol=config.tol,
        algorithm="lloyd", random_state=config.seed,
    ).fit(x)
    return model, time.perf_counter() - start


def _print_table(rows: dict[str, dict[str, float]]) -> None:
    columns = sorted({c for r in rows.values() for c in r}, key=_COLUMN_ORDER.index)
    header = f"{'method':<22}" + "".join(f"{c:>12}" for c in columns)
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        cells = "".join(
            f"{row[c]:>12.4f}" if isinstance(row.get(c), float) else f"{row.get(c, ''):>12}"
            for c in columns
        )
        print(f"{name:<22}{cells}")


_COLUMN_ORDER = [
    "acc", "nmi", "ami", "ari", "purity", "silhouette", "inertia", "steps", "time_s",
]


def use_compilation_cache(directory: str) -> None:
    """Keeps compiled XLA programs in ``directory`` across processes (JAX's persistent cache).

    A recipe compiles a few programs (training loops, k-means, evaluation) that take seconds to
    build, more than the training itself on a GPU for small datasets; with the cache, every run
    after the first with the same shapes skips that (DEC on an H100: 23 s cold, 6 s cached; see
    experiments/README.md). An empty ``directory`` leaves the cache off.
    """
    if directory:
        jax.config.update("jax_compilation_cache_dir", str(pathlib.Path(directory).expanduser()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def use_fast_gpu_compilation(triton_gemm: bool = False) -> None:
    """Compilation settings for NVIDIA GPUs that cut a recipe's compile time (no effect on CPU).

    - Random numbers: ``jax_threefry_gpu_kernel_lowering``, one CUDA kernel for the threefry
      hash instead of its HLO expansion, which XLA compiles separately for every shape (DEC's
      initialisation on an H100: 2.6 s, 0.4 s with the kernel). The values are the same.
    - Matrix products (unless ``triton_gemm``): ``--xla_gpu_enable_triton_gemm=false`` in
      ``XLA_FLAGS``, so they go to cuBLAS instead of XLA's Triton GEMM fusions, which XLA
      autotunes by compiling and timing candidate kernels: for the recipes' MLPs that is most of
      the compilation (DEC's pretraining loop: 7.4 s, 0.7 s with cuBLAS), and the cuBLAS
      kernels run the loop as fast (experiments/README.md). A ``--xla_gpu_enable_triton_gemm``
      already in ``XLA_FLAGS`` wins. The flag is read when JAX starts its backends, so call this
      before any computation.
    """
    jax.config.update("jax_threefry_gpu_kernel_lowering", True)
    flags = os.environ.get("XLA_FLAGS", "")
    if not triton_gemm and "xla_gpu_enable_triton_gemm" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_enable_triton_gemm=false".strip()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Runs the experiment in ``config`` and writes ``metrics.json`` and ``clusters.png``.

    Args:
      config: an experiment config, e.g. ``experiments/configs/kmeans.py``'s ``get_config()``.
      workdir: output folder (created if missing).

    Returns:
      The metrics dictionary that was written to ``metrics.json``.
    """
    if config.method != "kmeans":
        return _train_deep(config, workdir)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ds = jaxclust.data.load(config.dataset)
    n = ds.x.shape[0]
    mesh = jaxclust.parallel.make_mesh(tuple(tuple(a) for a in config.mesh))
    x, mask = jaxclust.parallel.shard_rows(ds.x, mesh)
    print(f"{ds.name}: {n} samples x {ds.x.shape[1]} features, k={config.k}, "
          f"{len(jax.devices())} {jax.default_backend()} device(s), mesh {dict(mesh.shape)}")

    result, first_s, run_s = _run_kmeans(config, x, mask)
    labels = np.asarray(result.labels)[:n]
    rows = {
        "jaxclust.kmeans": {
            **evaluate(labels, ds.y, ds.x),
            "inertia": float(result.inertia),
            "steps": int(result.num_steps),
            "time_s": run_s,
        }
    }
    if config.compare_sklearn:
        model, sk_s = _sklearn_kmeans(config, ds.x)
        rows["sklearn.KMeans"] = {
            **evaluate(model.labels_.astype(np.int32), ds.y, ds.x),
            "inertia": float(model.inertia_),
            "steps": int(model.n_iter_),
            "time_s": sk_s,
        }
    print()
    _print_table(rows)
    print(f"\n(jaxclust time excludes compilation; first call incl. compile: {first_s:.2f}s. "
          "Timings here are indicative only: see experiments/benchmarks/ for measurements.)")

    metrics = {
        "config": config.to_dict(),
        "dataset": {"name": ds.name, "n": n, "d": int(ds.x.shape[1])},
        "backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "converged": bool(result.converged),
        "empty_clusters": int((np.asarray(result.counts) == 0).sum()),
        "results": rows,
    }
    (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    if config.plot:
        from experiments import plots

        mapping = None
        if ds.y is not None:
            mapping = np.asarray(
                jaxclust.metrics.match_clusters_to_classes(
                    ds.y, labels, num_classes=int(ds.y.max()) + 1, num_clusters=config.k
                )
            )
        r = rows["jaxclust.kmeans"]
        title = f"k-means ({config.init}, best of {config.n_init}) on {ds.name}, k={config.k}"
        if "acc" in r:
            title += f": ACC {r['acc']:.3f}, NMI {r['nmi']:.3f}, ARI {r['ari']:.3f}"
        plots.plot_clusters(
            workdir / "clusters.png", ds.x, labels, centroids=np.asarray(result.centroids),
            y=ds.y, mapping=mapping, title=title,
        )
    print(f"wrote {workdir / 'metrics.json'}" + (f" and {workdir / 'clusters.png'}" if config.plot else ""))
    return metrics


_FILE_FORMATS = {
    "mnist": lambda d, split: jaxclust.data.load_idx(d, split),
    "fashion_mnist": lambda d, split: jaxclust.data.load_idx(d, split),
    "cifar10": lambda d, split: jaxclust.data.load_cifar(d, which=10, split=split),
    "cifar100": lambda d, split: jaxclust.data.load_cifar(d, which=100, split=split),
    "stl10": lambda d, split: jaxclust.data.load_stl10(d, split),
}


def _load(config) -> jaxclust.data.Dataset:
    """The dataset of ``config``; ``config.imbalance_ratio > 1`` keeps a long-tailed subset.

    ``config.dataset``: ``"digits"``, ``"mnist5k"``, a path to an ``.npz`` file, or
    ``"<format>:<directory>"`` for files the user already has, with format one of ``mnist``,
    ``fashion_mnist`` (IDX files), ``cifar10``, ``cifar100`` (python pickles) or ``stl10``
    (binaries); ``config.split`` picks the split (default ``"train"``)."""
    name = str(config.dataset)
    fmt, sep, directory = name.partition(":")
    if sep and fmt in _FILE_FORMATS:
        ds = _FILE_FORMATS[fmt](directory, config.get("split", "train"))
    else:
        ds = jaxclust.data.load(name)
    ratio = float(config.get("imbalance_ratio", 1.0))
    if ratio > 1:  # the long-tailed subset of P²OT's experiments (class sizes decay by `ratio`)
        from experiments.recipes.common import imbalanced_indices

        rows = imbalanced_indices(ds.y, ratio, config.seed)
        ds = jaxclust.data.Dataset(ds.x[rows], ds.y[rows], f"{ds.name} (imbalance {ratio:g})")
    return ds


class Trained(NamedTuple):
    """What :func:`train_recipe` returns: the finished run, before evaluation."""

    recipe: object  # experiments.recipes.common.Recipe
    state: object  # experiments.trainer.TrainState
    dataset: jaxclust.data.Dataset
    trainer: object  # experiments.trainer.Trainer
    train_time_s: float  # wall time of all phases, compilation included


def prepare_recipe(config: ml_collections.ConfigDict, workdir: str | pathlib.Path):
    """Builds ``experiments/recipes/<config.recipe or config.method>.py`` on the config's dataset
    and the :class:`experiments.trainer.Trainer` that runs it (checkpoints and the metrics log go
    to ``workdir``); nothing is trained yet. Returns ``(recipe, dataset, trainer)``."""
    from experiments import trainer

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ds = _load(config)
    n = ds.x.shape[0]
    mesh = jaxclust.parallel.make_mesh(tuple(tuple(a) for a in config.mesh))
    x = jax.device_put(np.asarray(ds.x, np.float32),
                       jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    data = trainer.Data(x=x, y=ds.y, name=ds.name, mesh=mesh)
    recipe_name = config.get("recipe", config.method)
    recipe = importlib.import_module(f"experiments.recipes.{recipe_name}").build(config, data)
    print(f"{config.method} on {ds.name}: {n} samples, k={config.k}, "
          f"{len(jax.devices())} {jax.default_backend()} device(s), mesh {dict(mesh.shape)}, "
          f"phases " + ", ".join(f"{p.name} ({p.num_steps} steps)" for p in recipe.phases))

    def eval_fn(state):
        labels = recipe.predict(state)
        return evaluate(labels, ds.y, None) if ds.y is not None else {}

    run = trainer.Trainer(
        recipe.phases, data, batch_size=config.batch_size, seed=config.seed, workdir=workdir,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every, eval_fn=eval_fn,
        eval_every=config.eval_every,
        stop_after=None if config.stop_after < 0 else config.stop_after,
    )
    return recipe, ds, run


def train_recipe(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> Trained:
    """Builds the config's recipe (:func:`prepare_recipe`) and trains it."""
    recipe, ds, run = prepare_recipe(config, workdir)
    start = time.perf_counter()
    state = run.run(recipe.state, resume=config.resume)
    return Trained(recipe, state, ds, run, time.perf_counter() - start)


def _train_deep(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """A deep-clustering recipe trained by :func:`train_recipe`, evaluated, tabulated and
    plotted."""
    from experiments import trainer

    workdir = pathlib.Path(workdir)
    recipe, state, ds, run, train_s = train_recipe(config, workdir)
    n = ds.x.shape[0]
    if int(state.step) < int(run.bounds[-1]):
        print(f"stopped at step {int(state.step)} of {int(run.bounds[-1])} (stop_after); "
              "run again to resume.")
        return {"stopped_at": int(state.step)}

    labels = recipe.predict(state)
    embedding = recipe.embed(state)
    flat = np.asarray(ds.x, np.float32).reshape(n, -1)
    rows = {f"jaxclust {config.method}": {**evaluate(labels, ds.y, None), "time_s": train_s}}
    if config.compare_kmeans:
        base = jaxclust.cluster.kmeans(flat, k=config.k, key=jax.random.key(config.seed),
                                       n_init=10)
        rows["k-means (raw pixels)"] = {**evaluate(np.asarray(base.labels), ds.y, None)}
    print()
    _print_table(rows)
    metrics = {
        "config": config.to_dict(),
        "dataset": {"name": ds.name, "n": n},
        "backend": jax.default_backend(),
        "num_devices": len(jax.devices()),
        "steps": int(state.step),
        "train_time_s": train_s,
        "results": rows,
    }
    if ds.y is not None:  # recall of each class under ACC's matching (minority classes)
        metrics["per_class_recall"] = per_class_recall(labels, ds.y, config.k)
    if jax.process_index() != 0:  # files are written once when several processes run
        return metrics
    (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    if config.plot:
        from experiments import plots

        mapping = None
        if ds.y is not None:
            mapping = np.asarray(jaxclust.metrics.match_clusters_to_classes(
                ds.y, labels, num_classes=int(ds.y.max()) + 1, num_clusters=config.k))
        r = rows[f"jaxclust {config.method}"]
        title = f"{config.method} on {ds.name}"
        if "acc" in r:
            title += f": ACC {r['acc']:.3f}, NMI {r['nmi']:.3f}, ARI {r['ari']:.3f}"
        plots.plot_clusters(workdir / "clusters.png", embedding, labels, y=ds.y,
                            mapping=mapping, title=title, space="learned embedding")
        plots.plot_training(workdir / "training.png", trainer.read_log(run.log_path), labels,
                            config.k, title=title)
    print(f"wrote {workdir / 'metrics.json'}, {run.log_path}"
          + (f", {workdir / 'clusters.png'} and {workdir / 'training.png'}" if config.plot else ""))
    return metrics
