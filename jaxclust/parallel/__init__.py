"""Meshes and sharding helpers for data-parallel and multi-host runs."""

from jaxclust.parallel._mesh import make_mesh as make_mesh
from jaxclust.parallel._mesh import shard_rows as shard_rows
