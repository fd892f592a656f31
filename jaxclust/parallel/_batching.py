"""Global sharded arrays and batches assembled from rows that each process holds locally.

In a multi-process run every process (host) loads only its own rows. Both helpers here hand those
rows to :func:`jax.make_array_from_process_local_data`, which places each process's block on its
own devices of the mesh, so the result is one global ``jax.Array`` whose rows are split over a
mesh axis. No row ever crosses the network; only a row count does (see
:func:`host_local_to_global`).
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, ArrayLike, Bool

from jaxclust import _checks
from jaxclust._typing import KeyArray


def _check_axis(mesh: Mesh, axis: str) -> None:
    if axis not in mesh.axis_names:
        raise ValueError(f"axis must be one of the mesh axes {mesh.axis_names}, got {axis!r}.")


def _as_rows(x_local, name: str) -> np.ndarray:
    x_local = np.asarray(x_local)
    if x_local.ndim < 1:
        raise ValueError(f"{name} must have a leading sample axis, shape [n, ...], got shape ().")
    return x_local


def _local_shards(mesh: Mesh, axis: str) -> int:
    """How many positions along ``axis`` hold a device of this process.

    A process supplies the rows of exactly those positions, so this is the number of row blocks
    in its local data (``mesh.shape[axis] / jax.process_count()`` for a mesh built by
    :func:`make_mesh` over ``jax.devices()``).
    """
    me = jax.process_index()
    owned = np.vectorize(lambda d: d.process_index == me, otypes=[bool])(mesh.devices)
    others = tuple(i for i, name in enumerate(mesh.axis_names) if name != axis)
    return int(np.count_nonzero(owned.any(axis=others)))


def _max_over_processes(value: int) -> int:
    """The largest ``value`` over all processes (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return value
    return int(np.max(multihost_utils.process_allgather(np.int64(value))))


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def host_local_to_global(
    x_local: ArrayLike,
    mesh: Mesh,
    *,
    axis: str = "data",
) -> tuple[Array, Bool[Array, " n_global"]]:
    """One global array, rows sharded over ``axis``, from the rows each process holds.

    The multi-process counterpart of :func:`jaxclust.parallel.shard_rows`: every process passes
    its own rows ``x_local`` (shape ``[n_local, ...]``) and receives the same global array, in
    which process ``p``'s rows occupy the rows of the devices it owns. Each process's block is
    padded with zero rows to a common length ``r · s``, where ``s`` is the number of positions of
    ``axis`` this process owns and ``r = ceil(max_p n_local_p / s)``, so the global array has
    ``r · mesh.shape[axis]`` rows and divides evenly over the axis. The returned mask is False on
    the padding: passing ``sample_weight=mask.astype(x.dtype)`` to a solver makes it exact.

    Processes may hold different numbers of rows: they agree on the largest through
    :func:`jax.experimental.multihost_utils.process_allgather` of one integer, a collective, so
    every process must call this function, in the same order relative to other collectives. The
    trailing shape and dtype must be the same everywhere. With one process no collective runs and
    the result equals :func:`~jaxclust.parallel.shard_rows` ``(x_local, mesh, axis=axis)``.

    Valid rows are therefore not contiguous in the global array (process 0's rows, its padding,
    process 1's rows, ...); select them with the mask, e.g. ``labels[mask]`` after gathering.

    Built on :func:`jax.make_array_from_process_local_data`, which requires each process's
    devices to cover a contiguous block of ``axis``; a mesh from
    :func:`~jaxclust.parallel.make_mesh` over ``jax.devices()`` (ordered by process) does.

    Args:
      x_local: this process's rows, shape [n_local, ...], a NumPy or JAX array (it is copied to
        host memory first).
      mesh: a mesh over the devices of all processes, e.g. from
        :func:`~jaxclust.parallel.make_mesh`.
      axis: mesh axis the rows are split over; other mesh axes replicate the rows.

    Returns:
      ``(x_global, mask_global)`` of shapes ``[r · mesh.shape[axis], ...]`` and
      ``[r · mesh.shape[axis]]``, both sharded as ``P(axis)``.

    Raises:
      ValueError: if ``axis`` is not a mesh axis or ``x_local`` has no leading axis.

    Examples:
      >>> import jax, numpy as np, jaxclust.parallel
      >>> mesh = jaxclust.parallel.make_mesh()
      >>> x, mask = jaxclust.parallel.host_local_to_global(np.ones((5, 2)), mesh)
      >>> x.shape, int(mask.sum()), x.sharding.spec == jax.sharding.PartitionSpec("data")
      ((8, 2), 5, True)

    References:
      JAX documentation, "Introduction to multi-controller JAX", section on making global
      arrays from process-local data, https://docs.jax.dev/en/latest/multi_process.html
    """
    _check_axis(mesh, axis)
    x_local = _as_rows(x_local, "x_local")
    n_local = x_local.shape[0]
    shards = _local_shards(mesh, axis)
    n_max = _max_over_processes(n_local)
    rows = -(-n_max // shards) * shards  # r · s: whole rows for each of this process's shards
    global_rows = rows // shards * mesh.shape[axis]
    sharding = NamedSharding(mesh, P(axis))
    x_global = jax.make_array_from_process_local_data(
        sharding, _pad_rows(x_local, rows), (global_rows,) + x_local.shape[1:]
    )
    mask_global = jax.make_array_from_process_local_data(
        sharding, np.arange(rows) < n_local, (global_rows,)
    )
    return x_global, mask_global


def epoch_key(key: KeyArray, *, epoch: int, process_index: int) -> KeyArray:
    """The key that shuffles ``process_index``'s rows in ``epoch`` of :func:`host_batches`.

    ``fold_in(fold_in(key, process_index), epoch)``: processes draw independent permutations of
    their own rows, and each epoch a fresh one, all reproducible from one ``key``.

    Args:
      key: the key passed to :func:`host_batches`.
      epoch: epoch number, from 0.
      process_index: the process, from 0 (``jax.process_index()``).

    Returns:
      A PRNG key of the same kind as ``key``.

    Examples:
      >>> import jax, jaxclust.parallel
      >>> k = jaxclust.parallel.epoch_key(jax.random.key(0), epoch=1, process_index=0)
      >>> jax.random.permutation(k, 4).shape
      (4,)
    """
    return jax.random.fold_in(jax.random.fold_in(key, process_index), epoch)


def host_batches(
    x_local: ArrayLike,
    *,
    batch_size: int,
    mesh: Mesh,
    key: KeyArray,
    axis: str = "data",
    drop_remainder: bool = False,
    num_epochs: int | None = None,
    where: Bool[ArrayLike, " n_local"] | None = None,
) -> Iterator[tuple[Array, Bool[Array, " batch_size"]]]:
    """Shuffled global batches, rows sharded over ``axis``, each process drawing its own rows.

    ``batch_size`` is the global batch size: each of the ``P = jax.process_count()`` processes
    contributes ``batch_size / P`` rows, taken in order from a permutation of its own rows drawn
    afresh each epoch with :func:`epoch_key` ``(key, epoch=e, process_index=p)``, and
    :func:`jax.make_array_from_process_local_data` assembles the global batch on the mesh. With
    one process, epoch ``e``'s batches are therefore exactly
    ``x[jax.random.permutation(epoch_key(key, epoch=e, process_index=0), n)]`` cut into
    consecutive slices of ``batch_size`` rows (``x[where]`` in place of ``x`` when ``where`` is
    given).

    Every process must take the same number of steps (each global batch is used by collectives
    spanning all processes), so an epoch has ``ceil(n_max / (batch_size / P))`` batches, where
    ``n_max`` is the largest number of selected rows on any process, agreed on once, when
    ``host_batches`` is called, with a tiny cross-process gather (a collective: every process
    must call ``host_batches``; see :func:`host_local_to_global`); ``floor`` instead when
    ``drop_remainder``. A process that runs out of rows, and every process in the final partial
    batch, fills its slots with zero rows whose mask entry is False; pass
    ``sample_weight=mask.astype(batch.dtype)`` (or ``where=mask``) to make them inert. With equal
    row counts and ``drop_remainder=True`` every batch is full.

    The generator is host-side Python: call it outside ``jax.jit`` and feed each batch to a
    jitted step. Arguments are checked when ``host_batches`` is called, not at the first batch.

    Args:
      x_local: this process's rows, shape [n_local, ...] (copied to host memory once).
      batch_size: global number of rows per batch; must be divisible by the number of processes,
        and each process's share by the number of positions of ``axis`` it owns (e.g. by
        ``mesh.shape[axis]`` in a single-process run).
      mesh: a mesh over the devices of all processes, e.g. from
        :func:`~jaxclust.parallel.make_mesh`.
      key: PRNG key shared by all processes; each folds in its process index.
      axis: mesh axis the batch rows are split over.
      drop_remainder: drop the final partial batch of each epoch instead of padding it.
      num_epochs: number of passes over the data; None: repeat forever.
      where: rows of ``x_local`` to use, boolean, shape [n_local]; all rows if None.

    Returns:
      An iterator of ``(batch, mask)`` with shapes ``[batch_size, ...]`` and ``[batch_size]``,
      both sharded as ``P(axis)``; mask is False on padding rows.

    Raises:
      TypeError: if ``batch_size`` or ``num_epochs`` is not an int, or ``where`` is not boolean.
      ValueError: if ``axis`` is not a mesh axis, ``batch_size`` does not divide as described,
        ``where`` has the wrong shape, ``x_local`` has no leading axis, or ``drop_remainder``
        leaves no batch at all.

    Examples:
      >>> import jax, numpy as np, jaxclust.parallel
      >>> mesh = jaxclust.parallel.make_mesh()
      >>> batches = jaxclust.parallel.host_batches(
      ...     np.arange(20.0)[:, None], batch_size=8, mesh=mesh, key=jax.random.key(0),
      ...     num_epochs=1)
      >>> [(b.shape, int(m.sum())) for b, m in batches]
      [((8, 1), 8), ((8, 1), 8), ((8, 1), 4)]

    References:
      JAX documentation, "Introduction to multi-controller JAX", section on making global
      arrays from process-local data, https://docs.jax.dev/en/latest/multi_process.html
    """
    _check_axis(mesh, axis)
    x_local = _as_rows(x_local, "x_local")
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    if num_epochs is not None:
        num_epochs = _checks.check_positive_int(num_epochs, "num_epochs", minimum=0)
    num_processes = jax.process_count()
    if batch_size % num_processes:
        raise ValueError(
            f"batch_size must be divisible by the number of processes {num_processes}, got "
            f"batch_size={batch_size}."
        )
    local_batch = batch_size // num_processes
    shards = _local_shards(mesh, axis)
    if local_batch % shards:
        raise ValueError(
            f"batch_size / process_count = {local_batch} rows per process must be divisible by "
            f"the {shards} position(s) of mesh axis {axis!r} that this process owns; got "
            f"batch_size={batch_size}."
        )
    if where is None:
        rows = np.arange(x_local.shape[0])
    else:
        if np.asarray(where).dtype != np.bool_:
            raise TypeError(f"where must be a boolean array, got dtype {np.asarray(where).dtype}.")
        where = np.asarray(where)
        if where.shape != x_local.shape[:1]:
            raise ValueError(
                f"where must have shape [n_local] = {x_local.shape[:1]}, got {where.shape}."
            )
        rows = np.flatnonzero(where)
    n_max = _max_over_processes(rows.size)
    num_batches = (n_max // local_batch) if drop_remainder else -(-n_max // local_batch)
    if num_batches == 0 and num_epochs != 0:
        raise ValueError(
            f"drop_remainder=True with batch_size={batch_size} leaves no batch: every process "
            f"holds at most {n_max} row(s), fewer than its share of {local_batch}."
        )
    sharding = NamedSharding(mesh, P(axis))
    global_shape = (batch_size,) + x_local.shape[1:]
    process = jax.process_index()
    return _batches(
        x_local, rows, key, process, num_epochs, num_batches, local_batch, sharding, global_shape
    )


def _batches(x, rows, key, process, num_epochs, num_batches, local_batch, sharding, global_shape):
    epoch = 0
    while num_epochs is None or epoch < num_epochs:
        shuffle_key = epoch_key(key, epoch=epoch, process_index=process)
        order = rows[np.asarray(jax.random.permutation(shuffle_key, rows.size))]
        for start in range(0, num_batches * local_batch, local_batch):
            chosen = order[start : start + local_batch]
            batch = _pad_rows(x[chosen], local_batch)
            mask = np.arange(local_batch) < chosen.size
            yield (
                jax.make_array_from_process_local_data(sharding, batch, global_shape),
                jax.make_array_from_process_local_data(sharding, mask, global_shape[:1]),
            )
        epoch += 1
