"""Meshes and sharding helpers for data-parallel and multi-host runs."""

from jaxclust.parallel._mesh import make_mesh as make_mesh
from jaxclust.parallel._mesh import shard_rows as shard_rows
from jaxclust.parallel._batching import epoch_key as epoch_key
from jaxclust.parallel._batching import host_batches as host_batches
from jaxclust.parallel._batching import host_local_to_global as host_local_to_global
from jaxclust.parallel._distributed import initialize as initialize
