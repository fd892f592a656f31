"""The experiment runner: a one-step smoke run of every config, and exact resume."""

import importlib
import pathlib

import jax
import numpy as np
import pytest

from experiments import train, trainer

CONFIGS = sorted(
    p.stem for p in pathlib.Path(__file__).parents[2].joinpath("experiments", "configs").glob("*.py")
    if p.stem not in ("__init__", "common")
)


def _config(name, arg="smoke"):
    return importlib.import_module(f"experiments.configs.{name}").get_config(arg)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_runs_one_step(name, tmp_path):
    metrics = train.train_and_evaluate(_config(name), tmp_path)
    rows = metrics["results"]
    assert rows, "no result rows"
    for row in rows.values():
        for value in row.values():
            assert np.isfinite(value)
    if name != "kmeans":
        log = trainer.read_log(tmp_path / "metrics.jsonl")
        assert any("eval" in r for r in log) and any("loss" in r for r in log)


def _final_params(workdir):
    manager = trainer._checkpoint_manager(pathlib.Path(workdir) / "checkpoints")
    step = manager.latest_step()
    restored = manager.restore(step)
    manager.close()
    return step, restored["params"]


def test_killed_and_resumed_run_is_bit_identical(tmp_path):
    # 3 phases' worth of work: pretraining and clustering with target refreshes, checkpoints
    # every 4 steps, killed at step 10 (not a checkpoint step: steps 9-10 are redone).
    arg = ("smoke,max_steps_per_phase=-1,pretrain_epochs=1,cluster_epochs=1,batch_size=128,"
           "update_interval=5,target=dataset,checkpoint_every=4")
    whole = train.train_and_evaluate(_config("idec", arg), tmp_path / "whole")
    assert whole["steps"] == 2 * (1797 // 128)
    stopped = train.train_and_evaluate(_config("idec", arg + ",stop_after=18"), tmp_path / "cut")
    assert stopped == {"stopped_at": 18}
    resumed = train.train_and_evaluate(_config("idec", arg), tmp_path / "cut")
    assert resumed["steps"] == whole["steps"]
    step_a, params_a = _final_params(tmp_path / "whole")
    step_b, params_b = _final_params(tmp_path / "cut")
    assert step_a == step_b == whole["steps"]
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed["results"] == {
        k: {m: v for m, v in row.items() if m != "time_s"} | {"time_s": resumed["results"][k]["time_s"]}
        for k, row in whole["results"].items()}


def test_each_phase_compiles_one_program_whatever_the_chunk_lengths(tmp_path):
    # Chunks of 20, 10, 10, 20, ... steps (log_every=20, checkpoints every 30) and a 12-step
    # last chunk per phase: the trip count is an argument, so each phase's loop compiles once.
    config = _config("dec", "smoke,max_steps_per_phase=-1,pretrain_epochs=2,cluster_epochs=2,"
                            "batch_size=32,log_every=20,checkpoint_every=30")
    recipe, state, _, run, _ = train.train_recipe(config, tmp_path)
    assert int(state.step) == 4 * (1797 // 32)
    assert len(run._steps) == 2
    for fn in run._steps.values():
        assert fn._cache_size() == 1
    logged = [r["step"] for r in trainer.read_log(run.log_path) if "loss" in r]
    assert logged[:6] == [20, 40, 60, 80, 100, 112] and logged[-1] == int(state.step)


@pytest.mark.parametrize("name", [c for c in CONFIGS if c != "kmeans"])
def test_compiled_loops_take_the_dataset_as_an_argument(name, tmp_path):
    # Closing over the dataset (in the trainer or in a recipe's loss) would embed it in the
    # phase's program as a constant (digits: 0.46 MB; MNIST-5k: 16 MB), which XLA then compiles
    # and the compilation cache hashes.
    recipe, _, run = train.prepare_recipe(_config(name), tmp_path)  # built, not trained
    idx = np.zeros((run.log_every, run.batch_size), np.int32)
    for p in range(len(run.phases)):
        phase_state = recipe.state._replace(opt_state=run._opt_init(p, recipe.state.params))
        hlo = run._steps_fn(p).lower(phase_state, run.data.x, idx, np.int32(1)).as_text()
        # an embedded constant is written out in hexadecimal: two characters per byte
        assert len(hlo) < 2 * run.data.x.nbytes, (run.phases[p].name, len(hlo))


@pytest.fixture
def restore_threefry_lowering():
    before = jax.config.jax_threefry_gpu_kernel_lowering
    yield
    jax.config.update("jax_threefry_gpu_kernel_lowering", before)


def test_fast_gpu_compilation_adds_the_flag_unless_xla_flags_sets_it(monkeypatch,
                                                                     restore_threefry_lowering):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    train.use_fast_gpu_compilation()
    assert train.os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_gpu_enable_triton_gemm=false"
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_enable_triton_gemm=true")
    train.use_fast_gpu_compilation()
    assert train.os.environ["XLA_FLAGS"] == "--xla_gpu_enable_triton_gemm=true"
    monkeypatch.delenv("XLA_FLAGS")
    train.use_fast_gpu_compilation(triton_gemm=True)
    assert "XLA_FLAGS" not in train.os.environ
    train.use_fast_gpu_compilation()
    assert train.os.environ["XLA_FLAGS"] == "--xla_gpu_enable_triton_gemm=false"
    assert jax.config.jax_threefry_gpu_kernel_lowering


def test_batch_order_is_a_function_of_the_step():
    a = trainer.batch_indices(100, 32, seed=0, step=4)
    b = trainer.batch_indices(100, 32, seed=0, step=4)
    np.testing.assert_array_equal(a, b)
    epoch = np.concatenate([trainer.batch_indices(100, 32, seed=0, step=s) for s in range(3)])
    assert len(set(epoch.tolist())) == 96  # no repeats within an epoch
    assert not np.array_equal(trainer.batch_indices(100, 32, seed=0, step=3), a[:32])


def test_seeds_summarises_every_seed(tmp_path):
    # Two one-step runs on the imbalanced subset: the summary holds each seed's metrics.json
    # numbers and the rarest classes' recall.
    import json
    import subprocess
    import sys

    root = pathlib.Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "experiments.seeds", "--config=experiments/configs/p2ot.py:smoke",
         "--seeds=0,1", f"--workdir={tmp_path}", "--compilation_cache="],
        cwd=root, capture_output=True, text=True, timeout=300, check=True).stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    runs = [json.loads((tmp_path / f"seed{s}" / "metrics.json").read_text()) for s in (0, 1)]
    assert summary["acc"] == [r["results"]["jaxclust p2ot"]["acc"] for r in runs]
    assert summary["rarest_classes"] == [9, 8, 7]  # class sizes decay with the label
    for run, recall in zip(runs, summary["rarest_recall"]):
        assert recall == pytest.approx(np.mean(np.asarray(run["per_class_recall"])[[7, 8, 9]]))
    row = next(line for line in out.splitlines() if line.startswith("| p2ot |"))
    acc = np.asarray(summary["acc"])
    assert f"{acc.mean():.3f} ± {acc.std(ddof=1):.3f}" in row


def test_kmeans_baseline_matches_a_direct_kmeans_run():
    import subprocess
    import sys

    import jaxclust.cluster
    import jaxclust.data
    import jaxclust.metrics

    root = pathlib.Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "experiments.kmeans_baseline", "--dataset=digits", "--seeds=3"],
        cwd=root, capture_output=True, text=True, timeout=300, check=True).stdout
    ds = jaxclust.data.load("digits")
    labels = jaxclust.cluster.kmeans(np.asarray(ds.x, np.float32), k=10,
                                     key=jax.random.key(3), n_init=10).labels
    acc = float(jaxclust.metrics.accuracy(ds.y, labels))
    line = next(l for l in out.splitlines() if l.startswith("acc"))
    assert f"{acc:.3f} ± 0.000" in line
