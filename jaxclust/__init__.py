"""jaxclust: compiled, sharded, differentiable clustering and representation learning in JAX.

Subpackages: ``assign`` (optimal-transport assignment), ``cluster`` (k-means and friends),
``data`` (bundled and synthetic datasets), ``losses``, ``metrics``, ``multivector``, ``parallel``.
The Flax modules live in ``jaxclust.nn``, imported on demand so that the core does not need Flax.
"""

from jaxclust import assign as assign
from jaxclust import cluster as cluster
from jaxclust import data as data
from jaxclust import losses as losses
from jaxclust import metrics as metrics
from jaxclust import multivector as multivector
from jaxclust import parallel as parallel

__version__ = "0.1.0"
