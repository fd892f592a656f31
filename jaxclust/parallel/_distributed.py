"""Multi-process (multi-host) initialisation, a thin wrapper over ``jax.distributed``."""

from __future__ import annotations

from collections.abc import Sequence

import jax

_CPU_COLLECTIVES = ("gloo", "mpi")


def initialize(
    coordinator_address: str | None = None,
    *,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
    cpu_collectives: str | None = "gloo",
    coordinator_bind_address: str | None = None,
    initialization_timeout: int = 300,
) -> None:
    """Connects this process to the other processes of a multi-process JAX run.

    Call it once per process, before any other JAX call (anything that starts a backend:
    computations, ``jax.devices()``, ``jax.device_put``...). Afterwards ``jax.devices()`` lists the
    devices of every process, ``jax.local_devices()`` those of this one, and
    :func:`jaxclust.parallel.make_mesh` builds a mesh over all of them. A second call is a no-op,
    so library code and scripts may both call it.

    Arguments left as None are forwarded as None to :func:`jax.distributed.initialize`, which then
    reads them from the cluster environment (Cloud TPU, Slurm, Open MPI, or the
    ``JAX_COORDINATOR_ADDRESS`` / ``JAX_LOCAL_DEVICE_IDS`` variables).

    On CPU, cross-process collectives (the all-reduces XLA inserts under ``jax.jit``, ``psum``
    inside ``jax.shard_map``) need a transport: ``cpu_collectives`` sets the
    ``jax_cpu_collectives_implementation`` option before the backend starts. The option is read
    only by the CPU backend, so it is harmless on GPU and TPU.

    Args:
      coordinator_address: ``"host:port"`` of process 0, where the coordination service runs;
        every process passes the same address. None: detected from the cluster environment.
      num_processes: total number of processes; None: detected.
      process_id: this process's index in ``[0, num_processes)``; None: detected.
      local_device_ids: restricts this process to these local accelerator ids (an int or a
        sequence); None: all local devices (or the launcher's choice under Slurm / Open MPI).
      cpu_collectives: ``"gloo"`` (TCP, needs nothing installed), ``"mpi"`` (needs an MPI library),
        or None to leave JAX's setting unchanged.
      coordinator_bind_address: ``"host:port"`` the coordination service on process 0 listens
        on; None: every interface on the port of ``coordinator_address`` (JAX's default). Pass
        e.g. ``"127.0.0.1:1234"`` to keep a single-machine run on the loopback interface.
      initialization_timeout: seconds to wait for all processes to connect before failing.

    Raises:
      ValueError: if ``cpu_collectives`` is not ``"gloo"``, ``"mpi"`` or None, or if JAX cannot
        determine the coordinator address, the process count or the process id.
      RuntimeError: if a JAX backend was already started in this process without a distributed
        runtime (JAX cannot attach one afterwards).

    Examples:
      On process ``i`` of two, with process 0 reachable at ``10.0.0.1``:

      >>> import jaxclust.parallel
      >>> jaxclust.parallel.initialize(
      ...     "10.0.0.1:1234", num_processes=2, process_id=i)  # doctest: +SKIP
      >>> jax.process_count()  # doctest: +SKIP
      2

      A single-process run needs no call at all: ``jax.process_count()`` is then 1 and every
      helper in :mod:`jaxclust.parallel` works unchanged.

    References:
      JAX documentation, "Introduction to multi-controller JAX (aka multi-process/multi-host
      JAX)", https://docs.jax.dev/en/latest/multi_process.html
    """
    if cpu_collectives is not None and cpu_collectives not in _CPU_COLLECTIVES:
        raise ValueError(
            f"cpu_collectives must be one of {list(_CPU_COLLECTIVES)} or None, got "
            f"{cpu_collectives!r}."
        )
    if jax.distributed.is_initialized():
        return
    if cpu_collectives is not None:
        # Read by the CPU client factory when the backend starts, i.e. after this call; it must
        # therefore be set before jax.distributed.initialize and before any computation.
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        coordinator_bind_address=coordinator_bind_address,
        initialization_timeout=initialization_timeout,
    )
