"""Two real JAX processes on this machine, talking over 127.0.0.1, against one process.

The workers (``_two_process_worker.py``) each simulate two CPU devices, so the global mesh has
four; they exchange data through JAX's coordination service and gloo collectives on the loopback
interface only.
"""

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxclust.parallel
from jaxclust.cluster import kmeans

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_two_process_worker.py"
TIMEOUT_S = 420  # a hang (e.g. one process dying before a collective) fails instead of blocking


def _load_worker():
    spec = importlib.util.spec_from_file_location("_two_process_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = _load_worker()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """A minimal environment: CPU only, no XLA_FLAGS or JAX_* settings from this process.

    Proxy variables are left out too (JAX warns that they can hang the coordination handshake).
    """
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(HERE.parents[1])
    return env


def _run_workers(out_dir: Path, mode: str = "kmeans") -> None:
    """Runs the workers to completion; on a failure or a hang kills them and reports their stderr.

    Output goes to files rather than pipes, so a chatty worker can never block on a full pipe.
    """
    port = _free_port()
    procs, logs = [], []
    for i in range(worker.NUM_PROCESSES):
        log = open(out_dir / f"process{i}.log", "w+")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(i), str(port), str(out_dir), mode],
                env=_clean_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        # Poll all of them: if one dies, the other would wait for it until the heartbeat timeout.
        while any(proc.poll() is None for proc in procs):
            if time.monotonic() > deadline or any(proc.poll() for proc in procs):
                break
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    reports = []
    for i, (proc, log) in enumerate(zip(procs, logs)):
        log.seek(0)
        reports.append(f"--- process {i} (exit {proc.returncode}) output ---\n{log.read()}")
        log.close()
    if any(proc.returncode != 0 for proc in procs):
        pytest.fail(
            f"the worker processes failed or did not finish within {TIMEOUT_S} s\n"
            + "\n".join(reports)
        )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("two_processes")
    _run_workers(out_dir)
    return [dict(np.load(out_dir / f"process{i}.npz")) for i in range(worker.NUM_PROCESSES)]


@pytest.fixture(scope="module")
def reference():
    x, init = worker.data()
    return x, kmeans(jnp.asarray(x), k=worker.K, init=jnp.asarray(init))


def test_topology(results):
    for out in results:
        assert int(out["process_count"]) == 2
        assert int(out["device_count"]) == 4
        assert int(out["mesh_size"]) == 4


def test_host_local_to_global_places_each_process_block(results, reference):
    x, _ = reference
    n = len(x)
    # 351 and 350 rows, padded to the larger count rounded up to a multiple of 2 local shards.
    rows = -(-max(len(x[worker.split(n, i)]) for i in range(2)) // 2) * 2
    for i, out in enumerate(results):
        assert int(out["global_rows"]) == 2 * rows
        mask = out["mask"]
        assert mask.shape == (rows,)
        np.testing.assert_array_equal(out["x"][mask], x[worker.split(n, i)])
        assert not mask[mask.sum() :].any()
        np.testing.assert_array_equal(out["x"][~mask], 0.0)


@pytest.mark.parametrize("path", ["jit", "shard_map", "eager"])
def test_two_process_kmeans_equals_single_process(results, reference, path):
    _, single = reference
    prefix = {"jit": "", "shard_map": "map_", "eager": "eager_"}[path]
    labels = np.concatenate([out[prefix + "labels"][out["mask"]] for out in results])
    np.testing.assert_array_equal(labels, np.asarray(single.labels))
    for out in results:
        inertia = float(out[prefix + "inertia"])
        np.testing.assert_allclose(inertia, float(single.inertia), rtol=1e-10)
        assert int(out[prefix + "num_steps"]) == int(single.num_steps)
    np.testing.assert_allclose(results[0]["centroids"], single.centroids, rtol=1e-10, atol=1e-10)


def test_process_allgather_of_labels_agrees(results):
    gathered = np.concatenate([out["labels"] for out in results])
    for out in results:
        np.testing.assert_array_equal(out["all_labels"], gathered)


def test_host_batches_step(results, reference):
    x, _ = reference
    key = jax.random.key(7)
    local_batch = worker.BATCH_SIZE // 2
    expected_sum = 0.0
    for i, out in enumerate(results):
        x_local = x[worker.split(len(x), i)]
        shuffle_key = jaxclust.parallel.epoch_key(key, epoch=0, process_index=i)
        perm = np.asarray(jax.random.permutation(shuffle_key, len(x_local)))
        np.testing.assert_array_equal(out["batch"], x_local[perm[:local_batch]])
        assert out["batch_mask"].all()
        expected_sum = expected_sum + x_local[perm[:local_batch]].sum(axis=0)
    for out in results:
        np.testing.assert_allclose(out["batch_sum"], expected_sum, rtol=1e-12)


def test_host_batches_with_unequal_row_counts_take_the_same_steps(results):
    # Process 0 selects 10 rows, process 1 three; each contributes 4 rows per batch.
    expected = {0: [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]], 1: [[1, 1, 1, 0], [0] * 4, [0] * 4]}
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["uneven_masks"], np.array(expected[i], bool))
        np.testing.assert_array_equal(out["uneven_counts"], [7, 4, 2])


def test_initialize_rejects_unknown_cpu_collectives():
    with pytest.raises(ValueError, match="cpu_collectives must be one of"):
        jaxclust.parallel.initialize(
            "127.0.0.1:1", num_processes=2, process_id=0, cpu_collectives="nccl"
        )


def test_initialize_after_backend_started_raises():
    jax.devices()  # this pytest process has a running backend and no distributed runtime
    assert not jax.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="must be called before"):
        jaxclust.parallel.initialize(
            "127.0.0.1:1", num_processes=2, process_id=1, cpu_collectives=None
        )


def test_experiment_runner_across_two_processes(tmp_path):
    # Data-parallel training over both processes' devices, with orbax checkpoints written
    # jointly: both processes must see the same losses, and match a one-process run.
    _run_workers(tmp_path, mode="runner")
    outs = [dict(np.load(tmp_path / f"runner{i}.npz")) for i in range(worker.NUM_PROCESSES)]
    assert int(outs[0]["steps"]) == int(outs[1]["steps"]) == 6
    assert float(outs[0]["acc"]) == float(outs[1]["acc"])  # both evaluate the same replicated model
    from experiments import train, trainer
    from experiments.configs import idec

    single = train.train_and_evaluate(idec.get_config(worker.RUNNER_ARGS), tmp_path / "single")
    losses = [r["loss"] for r in trainer.read_log(tmp_path / "single" / "metrics.jsonl") if "loss" in r]
    # Same batches, different device count (4 vs 8): equal up to float32 reassociation.
    np.testing.assert_allclose(outs[0]["losses"], losses, rtol=1e-4)
    assert single["steps"] == 6
