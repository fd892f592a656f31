"""Device meshes and row sharding for data-parallel clustering."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Bool, Float


def make_mesh(
    axes: Sequence[tuple[str, int]] = (("data", -1),),
    *,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A device mesh from ``(name, size)`` pairs, at most one size being ``-1`` ("the rest").

    Axes are ``AxisType.Auto``, so ``jax.jit`` on arrays sharded over the mesh lets XLA insert the
    collectives, and ``jax.shard_map`` works over the same mesh with ``axis_name``.

    Args:
      axes: ``(name, size)`` pairs, e.g. ``(("data", -1),)`` for pure data parallelism, as
        ``config.mesh`` in the experiment configs.
      devices: devices to use; ``jax.devices()`` if None.

    Returns:
      A ``jax.sharding.Mesh``.

    Raises:
      ValueError: if more than one size is -1 or the sizes do not multiply to the device count.

    Examples:
      >>> import jaxclust.parallel
      >>> mesh = jaxclust.parallel.make_mesh((("data", -1),))
      >>> mesh.axis_names
      ('data',)
    """
    devices = list(jax.devices() if devices is None else devices)
    names = tuple(name for name, _ in axes)
    sizes = [int(size) for _, size in axes]
    if sizes.count(-1) > 1:
        raise ValueError(f"axes may contain at most one size of -1, got {tuple(axes)}.")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if known < 1 or len(devices) % known:
            raise ValueError(f"axes {tuple(axes)} do not divide the {len(devices)} devices.")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(
            f"axes {tuple(axes)} multiply to {int(np.prod(sizes))}, but there are "
            f"{len(devices)} devices."
        )
    grid = np.asarray(devices, dtype=object).reshape(sizes)
    return Mesh(grid, names, axis_types=(AxisType.Auto,) * len(names))


def shard_rows(
    x: Float[Array, "n ..."],
    mesh: Mesh,
    *,
    axis: str = "data",
) -> tuple[Float[Array, "n_padded ..."], Bool[Array, " n_padded"]]:
    """Pads ``x`` with zero rows to a multiple of the mesh axis size and shards its rows.

    Returns the sharded array and a validity mask (False on padding). Solvers that take
    ``sample_weight`` treat rows of weight 0 exactly as absent, so passing
    ``sample_weight=mask.astype(x.dtype)`` makes the padding invisible.

    Args:
      x: host or device array whose leading axis is samples.
      mesh: the mesh, e.g. from :func:`make_mesh`.
      axis: mesh axis the rows are split over.

    Returns:
      ``(x_padded, mask)``, both sharded as ``P(axis)`` over their leading axis.

    Examples:
      >>> import jax.numpy as jnp, jaxclust.parallel
      >>> mesh = jaxclust.parallel.make_mesh()
      >>> xs, mask = jaxclust.parallel.shard_rows(jnp.ones((5, 2)), mesh)
      >>> int(mask.sum()), xs.shape[0] % mesh.shape["data"]
      (5, 0)
    """
    if axis not in mesh.axis_names:
        raise ValueError(f"axis must be one of the mesh axes {mesh.axis_names}, got {axis!r}.")
    n = x.shape[0]
    size = mesh.shape[axis]
    pad = -n % size
    x = jnp.pad(jnp.asarray(x), [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    mask = jnp.arange(n + pad) < n
    sharding = NamedSharding(mesh, P(axis))
    return jax.device_put(x, sharding), jax.device_put(mask, sharding)
