"""Runs one config over several seeds and prints mean ± std: the rows of the results tables.

Each seed is a full ``train_and_evaluate`` run in ``<workdir>/seed<s>`` (no plots, no resume);
the summary (per-seed and mean ± std of ACC/NMI/ARI and train time, the ACC at the end of each
phase, and the mean recall of the rarest classes) is printed as a Markdown row and written to
``<workdir>/summary.json``.

Usage:
  python -m experiments.seeds --config=experiments/configs/dec.py --seeds=0,1,2 --workdir=results/dec_seeds
"""

import json
import pathlib

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from experiments import compilation_flags
from experiments.train import mean_std, rarest_classes

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to run.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the per-seed runs.")
_TAIL = flags.DEFINE_float("tail", 0.3, "Fraction of the classes (the rarest) whose mean recall "
                           "is reported as the minority recall.")


def summarize(runs: list[dict], phase_acc: list[dict], counts: np.ndarray, tail: float) -> dict:
    """Mean ± std over seeds of the main row of each run's ``metrics.json``."""
    main = [next(v for k, v in r["results"].items() if k.startswith("jaxclust")) for r in runs]
    out = {name: [m[name] for m in main] for name in ("acc", "nmi", "ari")}
    out["train_time_s"] = [r["train_time_s"] for r in runs]
    out["phase_acc"] = phase_acc
    if all("per_class_recall" in r for r in runs):
        rarest = rarest_classes(counts, tail)
        out["rarest_classes"] = rarest.tolist()
        out["rarest_recall"] = [float(np.mean(np.asarray(r["per_class_recall"])[rarest]))
                                for r in runs]
    return out


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from experiments import train, trainer

    compilation_flags.apply()
    workdir = pathlib.Path(_WORKDIR.value)
    runs, phase_acc = [], []
    for seed in map(int, _SEEDS.value):
        config = _CONFIG.value.copy_and_resolve_references()
        config.seed, config.plot, config.resume, config.compare_kmeans = seed, False, False, False
        metrics = train.train_and_evaluate(config, workdir / f"seed{seed}")
        runs.append(metrics)
        evals = [r for r in trainer.read_log(workdir / f"seed{seed}" / "metrics.jsonl")
                 if "eval" in r and "acc" in r["eval"]]
        phase_acc.append({r["phase"]: r["eval"]["acc"] for r in evals})
    counts = np.bincount(np.asarray(train._load(config).y))  # class sizes (the last seed's subset)
    summary = summarize(runs, phase_acc, counts, _TAIL.value)
    summary["seeds"] = list(map(int, _SEEDS.value))
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    row = [config.method] + [mean_std(summary[k]) for k in ("acc", "nmi", "ari")]
    row.append(f"{np.mean(summary['train_time_s']):.0f} s")
    row.append(" / ".join(f"{a:.3f}" for a in summary["acc"]))
    if "rarest_recall" in summary:
        row.append(mean_std(summary["rarest_recall"]))
    print("| " + " | ".join(row) + " |")
    for seed, phases in zip(summary["seeds"], phase_acc):
        print(f"seed {seed}: ACC at phase ends " +
              ", ".join(f"{name} {acc:.3f}" for name, acc in phases.items()))


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
