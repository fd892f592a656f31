"""One process of the two-process CPU run driven by ``test_distributed.py`` (not a test module).

Usage: ``python _two_process_worker.py PROCESS_ID PORT OUT_DIR``. Each process simulates two CPU
devices, joins the coordinator on ``127.0.0.1:PORT``, keeps its half of the data, clusters
the global array (``jax.jit`` on sharded input and ``jax.shard_map`` with ``axis_name``), draws
one ``host_batches`` batch (and a whole epoch with unequal row counts), and writes what it saw to ``OUT_DIR/process{PROCESS_ID}.npz`` for the
test to compare with a single-process run: its own rows of every row-sharded output (so the test
also checks where each process's rows landed), the replicated outputs, and the labels gathered
from both processes.

Everything happens in ``main()``: pytest's ``--doctest-modules`` imports this file, and JAX must
be configured before it starts a backend, which the test process has already done.
"""

import sys
from pathlib import Path

NUM_PROCESSES = 2
DEVICES_PER_PROCESS = 2
K = 10
BATCH_SIZE = 8


def data():
    """Overlapping Gaussian blobs, seeded (the same in every process and in the test).

    An odd row count gives the two processes different numbers of rows. NumPy only: importing
    scikit-learn would cost each process seconds.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    centres = 3.0 * rng.normal(size=(K, 8))
    x = centres[rng.integers(0, K, 701)] + rng.normal(size=(701, 8))
    return x, x[:K].copy()


def split(n: int, process_id: int) -> slice:
    """Rows of process ``process_id``: the first process takes one more when ``n`` is odd."""
    half = -(-n // NUM_PROCESSES)
    return slice(process_id * half, min(n, (process_id + 1) * half))


def local_rows(a):
    """This process's rows of an array sharded over its leading axis, in global order."""
    import numpy as np

    shards = sorted(a.addressable_shards, key=lambda s: s.index[0].start)
    return np.concatenate([np.asarray(s.data) for s in shards])


def replicated(a):
    """The value of a fully replicated global array, read from a local device."""
    import numpy as np

    return np.asarray(a.addressable_data(0))


def main(process_id: int, port: int, out_dir: Path) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS)
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")

    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec as P

    import jaxclust.parallel
    from jaxclust.cluster import KMeansResult, kmeans

    address = f"127.0.0.1:{port}"
    for _ in range(2):  # the second call (and the one after computing, below) is a no-op
        jaxclust.parallel.initialize(
            address,
            num_processes=NUM_PROCESSES,
            process_id=process_id,
            coordinator_bind_address=address,
            initialization_timeout=60,
        )

    x, init = data()
    x_local = x[split(len(x), process_id)]
    mesh = jaxclust.parallel.make_mesh((("data", -1),))
    x_global, mask = jaxclust.parallel.host_local_to_global(x_local, mesh)
    weight = mask.astype(x_global.dtype)

    jitted = jax.jit(lambda x, w: kmeans(x, k=K, init=init, sample_weight=w))(x_global, weight)
    # Called eagerly on a global array that this process cannot fully address: eager value
    # checks must step aside (as under jit) instead of pulling the array to the host.
    eager = kmeans(x_global, k=K, init=init, sample_weight=weight)
    mapped = jax.jit(
        jax.shard_map(
            lambda x, w: kmeans(x, k=K, init=init, sample_weight=w, axis_name="data"),
            mesh=mesh,
            in_specs=(P("data"), P("data")),
            out_specs=KMeansResult(P(), P("data"), P(), P(), P(), P()),
        )
    )(x_global, weight)

    batches = jaxclust.parallel.host_batches(
        x_local, batch_size=BATCH_SIZE, mesh=mesh, key=jax.random.key(7)
    )
    batch, batch_mask = next(batches)
    # A reduction over the batch, whose rows live on both processes' devices.
    batch_sum = jax.jit(lambda b, m: jnp.sum(jnp.where(m[:, None], b, 0.0), axis=0))(
        batch, batch_mask
    )

    # Unequal row counts (10 and 3 of 4 per batch): both processes must still take 3 steps.
    where = np.arange(len(x_local)) < (10 if process_id == 0 else 3)
    uneven = jaxclust.parallel.host_batches(
        x_local, batch_size=BATCH_SIZE, mesh=mesh, key=jax.random.key(7), num_epochs=1, where=where
    )
    count = jax.jit(jnp.sum)
    uneven_masks, uneven_counts = [], []
    for _, m in uneven:
        uneven_masks.append(local_rows(m))
        uneven_counts.append(replicated(count(m)))

    jaxclust.parallel.initialize(address, num_processes=NUM_PROCESSES, process_id=process_id)

    np.savez(
        out_dir / f"process{process_id}.npz",
        process_count=jax.process_count(),
        device_count=jax.device_count(),
        mesh_size=mesh.shape["data"],
        global_rows=x_global.shape[0],
        x=local_rows(x_global),
        mask=local_rows(mask),
        labels=local_rows(jitted.labels),
        all_labels=multihost_utils.process_allgather(jitted.labels, tiled=True),
        inertia=replicated(jitted.inertia),
        num_steps=replicated(jitted.num_steps),
        centroids=replicated(jitted.centroids),
        eager_labels=local_rows(eager.labels),
        eager_inertia=replicated(eager.inertia),
        eager_num_steps=replicated(eager.num_steps),
        map_labels=local_rows(mapped.labels),
        map_inertia=replicated(mapped.inertia),
        map_num_steps=replicated(mapped.num_steps),
        batch=local_rows(batch),
        batch_mask=local_rows(batch_mask),
        batch_sum=replicated(batch_sum),
        uneven_masks=np.stack(uneven_masks),
        uneven_counts=np.stack(uneven_counts),
    )
    jax.distributed.shutdown()


def run_experiment(process_id: int, port: int, out_dir: Path) -> None:
    """The experiment runner across two processes: IDEC's smoke config for a few steps."""
    import jax

    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS)
    import jaxclust.parallel

    address = f"127.0.0.1:{port}"
    jaxclust.parallel.initialize(address, num_processes=NUM_PROCESSES, process_id=process_id,
                                 coordinator_bind_address=address, initialization_timeout=60)
    from experiments import train, trainer
    from experiments.configs import idec

    config = idec.get_config(RUNNER_ARGS)
    import numpy as np

    metrics = train.train_and_evaluate(config, out_dir / "runner")
    losses = []
    if process_id == 0:  # the only writer of the log
        losses = [r["loss"] for r in trainer.read_log(out_dir / "runner" / "metrics.jsonl")
                  if "loss" in r]
    np.savez(out_dir / f"runner{process_id}.npz", steps=metrics["steps"], losses=losses,
             acc=metrics["results"]["jaxclust idec"]["acc"])
    jax.distributed.shutdown()


RUNNER_ARGS = "smoke,max_steps_per_phase=3,checkpoint_every=2,log_every=1"

if __name__ == "__main__":
    entry = run_experiment if len(sys.argv) > 4 and sys.argv[4] == "runner" else main
    entry(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
