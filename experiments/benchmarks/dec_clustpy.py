"""DEC and IDEC: jaxclust's recipes against ClustPy's (PyTorch) on the same data and schedule.

Both sides train the d-500-500-2000-10 autoencoder for 100 epochs (Adam 1e-3, batch 256, mean
squared error), initialise the centres by k-means on the embedding, and self-train for 150 epochs
(Adam 1e-4) with the target distribution computed from each batch, on the same MNIST-5k array
(``jaxclust.data.load("mnist5k")``, pixels in [0, 1]). ClustPy runs with its defaults, which are
this schedule (``clustpy.deep.DEC(n_clusters=10, random_state=seed)``), on the GPU when PyTorch
sees one. Our side runs ``experiments/configs/<method>.py`` through
:func:`experiments.train.train_recipe`.

ClustPy reports two labelings: ``labels_`` is a fresh k-means (scikit-learn, one k-means++ run)
on the final embedding, ``dec_labels_`` the arg-max of the soft assignment ``Q``. Both are
printed for both libraries ("k-means" and "argmax Q"); our recipes' own result is argmax Q.

Times are the wall time of the whole fit on each side: pretraining, k-means initialisation,
clustering, and (ours) building the model, compilation, evaluations at phase ends and
checkpoints (at phase ends only unless ``--checkpoint-every``; ClustPy saves none). Each run is
timed alone, one after the other, in one process. Our side runs as the runner
(``experiments/main.py``, ``seeds.py``) does: JAX's persistent compilation cache on, here in a
fresh temporary directory, so the first run compiles and later seeds reuse its programs, and
the GPU compilation settings of ``experiments.train.use_fast_gpu_compilation``. With
``--compilation-cache DIR`` the programs persist across invocations (a second one measures the
time without compilation); ``--compilation-cache ''`` compiles every run.

Usage:
  python -m experiments.benchmarks.dec_clustpy --methods=dec,idec --seeds=0,1,2
  python -m experiments.benchmarks.dec_clustpy --no-clustpy --seeds=0     # ours only
  python -m experiments.benchmarks.dec_clustpy --quick                     # 2 + 2 epochs

ClustPy (``pip install clustpy``, which needs PyTorch) is not a dependency of jaxclust.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time

import jax
import numpy as np

import jaxclust
from experiments import train
from experiments.benchmarks.common import machine, print_table


def _ours(method: str, seed: int, epochs: tuple[int, int] | None, workdir: str,
          overrides: str, checkpoint_every: int) -> dict:
    config = importlib.import_module(f"experiments.configs.{method}").get_config(overrides)
    config.seed, config.plot, config.resume, config.compare_kmeans = seed, False, False, False
    config.checkpoint_every = checkpoint_every
    if epochs is not None:
        config.pretrain_epochs, config.cluster_epochs = epochs
    start = time.perf_counter()
    recipe, state, ds, _, train_s = train.train_recipe(config, workdir)
    labels = recipe.predict(state)
    z = recipe.embed(state)
    total_s = time.perf_counter() - start
    refit = jaxclust.cluster.kmeans(z, k=config.k, key=jax.random.key(seed), n_init=1)
    return {"argmax Q": train.evaluate(labels, ds.y, None)["acc"],
            "k-means": train.evaluate(np.asarray(refit.labels), ds.y, None)["acc"],
            "time_s": total_s, "train_s": train_s}


def _clustpy(method: str, seed: int, epochs: tuple[int, int] | None, x: np.ndarray,
             y: np.ndarray) -> dict:
    import torch
    from clustpy.deep import DEC, IDEC

    torch.manual_seed(seed)
    kwargs = {"n_clusters": 10, "random_state": seed}
    if epochs is not None:
        kwargs["pretrain_epochs"], kwargs["clustering_epochs"] = epochs
    model = (DEC if method == "dec" else IDEC)(**kwargs)
    start = time.perf_counter()
    model.fit(x)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    total_s = time.perf_counter() - start
    return {"argmax Q": train.evaluate(np.asarray(model.dec_labels_), y, None)["acc"],
            "k-means": train.evaluate(np.asarray(model.labels_), y, None)["acc"],
            "time_s": total_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="dec,idec")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-clustpy", action="store_true")
    parser.add_argument("--no-jaxclust", action="store_true", help="ClustPy only (more seeds)")
    parser.add_argument("--quick", action="store_true", help="2 + 2 epochs (a smoke run)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--overrides", default="", help="our config's key=value,... overrides")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="our checkpoint interval (0: at phase ends only; ClustPy saves none)")
    parser.add_argument("--compilation-cache", default=None,
                        help="JAX's persistent compilation cache directory (default: a fresh "
                             "temporary one, as the runner's first use; '': off)")
    parser.add_argument("--triton-gemm", action="store_true",
                        help="keep XLA's Triton GEMMs on GPUs (the runner's default: cuBLAS)")
    args = parser.parse_args()
    train.use_fast_gpu_compilation(triton_gemm=args.triton_gemm)
    fresh_cache = tempfile.TemporaryDirectory() if args.compilation_cache is None else None
    train.use_compilation_cache(fresh_cache.name if fresh_cache else args.compilation_cache)
    os.environ.setdefault("TQDM_DISABLE", "1")  # ClustPy's per-epoch progress bars
    epochs = (2, 2) if args.quick else None
    ds = jaxclust.data.load("mnist5k")
    x = np.asarray(ds.x, np.float32).reshape(ds.x.shape[0], -1)
    print(machine())
    if not args.no_clustpy:
        import torch

        print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, "
              f"float32 matmul precision: {torch.get_float32_matmul_precision()}")
    rows = []

    def save():  # after every run, so that a run cut short keeps what it measured
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=2)

    for method in args.methods.split(","):
        for seed in map(int, args.seeds.split(",")):
            if not args.no_jaxclust:
                with tempfile.TemporaryDirectory() as workdir:
                    rows.append({"method": method, "seed": seed, "library": "jaxclust",
                                 **_ours(method, seed, epochs, workdir, args.overrides,
                                         args.checkpoint_every)})
                print(rows[-1], flush=True)
                save()
            if not args.no_clustpy:
                rows.append({"method": method, "seed": seed, "library": "clustpy",
                             **_clustpy(method, seed, epochs, x, ds.y)})
                print(rows[-1], flush=True)
                save()
    print()
    print_table(rows, ["method", "seed", "library", "argmax Q", "k-means", "time_s", "train_s"])
    if not (args.no_clustpy or args.no_jaxclust):
        print()
        for method in args.methods.split(","):
            mine = [r for r in rows if r["method"] == method and r["library"] == "jaxclust"]
            peer = [r for r in rows if r["method"] == method and r["library"] == "clustpy"]
            for name in ("argmax Q", "k-means"):
                print(f"{method} ACC ({name}): jaxclust {train.mean_std([r[name] for r in mine])}"
                      f", clustpy {train.mean_std([r[name] for r in peer])}")
            ratio = np.mean([a["time_s"] / b["time_s"] for a, b in zip(mine, peer)])
            print(f"{method} time: jaxclust {np.mean([r['time_s'] for r in mine]):.1f} s, "
                  f"clustpy {np.mean([r['time_s'] for r in peer]):.1f} s, ratio {ratio:.2f}x")


if __name__ == "__main__":
    main()
