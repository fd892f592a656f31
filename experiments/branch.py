"""Ablations of a recipe's later phases: train the shared beginning once, then branch.

For each seed, the config is trained up to the end of the phase named by ``--at`` (the *trunk*,
checkpointed there); each variant then resumes from a copy of that checkpoint with its own
overrides and runs the remaining phases. Because a resumed run replays exactly the batches and
keys it would have seen (``experiments/trainer.py``), the variant with no overrides ends with the
same parameters as a straight run of the config, and the variants differ only in what they
change. That is both cheaper than a full run per variant and a cleaner comparison.

A variant may change only what the phases after ``--at`` use: the trunk's checkpoint fixes
everything before, so a variant that changes the phases up to the branch point (their names or
lengths) is refused.

Usage (the SCAN self-labelling ablation in experiments/README.md):
  python -m experiments.branch --config=experiments/configs/scan.py --at=scan --seeds=0,1,2 \\
      --variants="threshold 0.99=threshold=0.99;15 epochs=selflabel_epochs=15" \\
      --workdir=/tmp/branch/scan
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from experiments import compilation_flags, train
from experiments.configs.common import apply_overrides

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.")
_AT = flags.DEFINE_string("at", None, "Name of the phase after which the variants branch.")
_VARIANTS = flags.DEFINE_string(
    "variants", "", "'name=key=value,key=value;name=...': the overrides of each variant (the "
    "config as given is always run too, as 'as is').")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to run.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the trunks and branches.")


def parse_variants(spec: str) -> dict[str, str]:
    """``"a=k=v,k=v;b=k=v"`` → ``{"as is": "", "a": "k=v,k=v", "b": "k=v"}``."""
    variants = {"as is": ""}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, sep, overrides = item.partition("=")
        if not sep or not name or not overrides:
            raise ValueError(f"variant {item!r} must read 'name=key=value,...'.")
        if name in variants:
            raise ValueError(f"variant name {name!r} is used twice.")
        variants[name] = overrides
    return variants


def branch(config: ml_collections.ConfigDict, at: str, variants: dict[str, str],
           workdir: str | pathlib.Path) -> dict:
    """Trains ``config`` up to the end of phase ``at`` in ``workdir/trunk``, then every variant
    from there in ``workdir/<variant>``.

    Args:
      config: the experiment config (its seed included).
      at: the name of the phase after which the variants branch.
      variants: ``name -> "key=value,..."`` overrides applied on top of ``config``.
      workdir: parent directory; an existing trunk checkpoint there is reused.

    Returns:
      ``{"trunk": Trained, name: Trained, ...}`` (``experiments.train.Trained``; the trunk's
      state is the one at the branch point).

    Raises:
      ValueError: if ``at`` is not a phase of the recipe, is its last phase, or a variant changes
        the phases up to it.
    """
    workdir = pathlib.Path(workdir)
    config = config.copy_and_resolve_references()
    config.plot, config.compare_kmeans, config.resume = False, False, True
    recipe, ds, run = train.prepare_recipe(config, workdir / "trunk")
    names = [p.name for p in run.phases]
    if at not in names[:-1]:
        raise ValueError(f"at={at!r} must name one of the phases before the last: {names[:-1]}.")
    p = names.index(at)
    trunk = [(phase.name, phase.num_steps) for phase in run.phases[:p + 1]]
    run.stop_after = int(run.bounds[p + 1])
    out = {"trunk": _timed_run(recipe, ds, run)}
    for name, overrides in variants.items():
        vconfig = apply_overrides(config.copy_and_resolve_references(), overrides)
        target = workdir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(workdir / "trunk" / "checkpoints", target / "checkpoints")
        vrecipe, vds, vrun = train.prepare_recipe(vconfig, target)
        if [(phase.name, phase.num_steps) for phase in vrun.phases[:p + 1]] != trunk:
            raise ValueError(f"variant {name!r} ({overrides}) changes the phases up to {at!r}; "
                             "a variant may only change what comes after the branch point.")
        out[name] = _timed_run(vrecipe, vds, vrun)
    return out


def _timed_run(recipe, ds, run):
    start = time.perf_counter()
    state = run.run(recipe.state)
    return train.Trained(recipe, state, ds, run, time.perf_counter() - start)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    compilation_flags.apply()
    variants = parse_variants(_VARIANTS.value)
    workdir = pathlib.Path(_WORKDIR.value)
    seeds = list(map(int, _SEEDS.value))
    scores: dict[str, list[dict]] = {}
    for seed in seeds:
        config = _CONFIG.value.copy_and_resolve_references()
        config.seed = seed
        runs = branch(config, _AT.value, variants, workdir / f"seed{seed}")
        for name, r in runs.items():
            scores.setdefault(name, []).append(
                train.evaluate(r.recipe.predict(r.state), r.dataset.y, None))
    (workdir / "summary.json").write_text(json.dumps({"seeds": seeds, "scores": scores}, indent=2))
    print(f"\n| {_CONFIG.value.method}, branching after {_AT.value} | ACC per seed "
          "| ACC | NMI | ARI |\n| --- | --- | --- | --- | --- |")
    for name, rows in scores.items():
        label = f"end of {_AT.value}" if name == "trunk" else \
            (f"{name} ({variants[name]})" if variants[name] else name)
        per_seed = " / ".join(f"{r['acc']:.3f}" for r in rows)
        cells = [train.mean_std([r[m] for r in rows]) for m in ("acc", "nmi", "ari")]
        print(f"| {label} | {per_seed} | " + " | ".join(cells) + " |")
    print("mean ACC change from the branch point: " + ", ".join(
        f"{name} {np.mean([r['acc'] for r in rows]) - np.mean([r['acc'] for r in scores['trunk']]):+.3f}"
        for name, rows in scores.items() if name != "trunk"))


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "at", "workdir"])
    app.run(main)
