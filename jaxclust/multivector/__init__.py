"""Multi-vector (late-interaction) retrieval: scoring, token pooling, compression, MUVERA.

- :func:`maxsim`, :func:`maxsim_topk`: ColBERT MaxSim / Chamfer scores of padded query and
  document token sets, chunked over documents (METHODS.md §5.1).
- :func:`token_pool`: cluster a document's tokens (Ward or k-means) and keep the cluster means,
  ``1/pool_factor`` as many vectors (§5.2); ``jax.vmap`` over documents.
- :func:`fit_codec`, :func:`compress`, :func:`decompress`, :func:`bytes_per_vector`: ColBERTv2
  residual compression, a centroid id plus 1–8 bits per dimension (§5.3).
- :func:`fde_query`, :func:`fde_document`, :func:`fde_dimension`: MUVERA fixed-dimensional
  encodings whose inner products approximate Chamfer similarity (§5.4).
"""

from jaxclust.multivector._fde import fde_dimension as fde_dimension
from jaxclust.multivector._fde import fde_document as fde_document
from jaxclust.multivector._fde import fde_query as fde_query
from jaxclust.multivector._maxsim import maxsim as maxsim
from jaxclust.multivector._maxsim import maxsim_topk as maxsim_topk
from jaxclust.multivector._pooling import PooledTokens as PooledTokens
from jaxclust.multivector._pooling import token_pool as token_pool
from jaxclust.multivector._residual import Codec as Codec
from jaxclust.multivector._residual import Compressed as Compressed
from jaxclust.multivector._residual import bytes_per_vector as bytes_per_vector
from jaxclust.multivector._residual import compress as compress
from jaxclust.multivector._residual import decompress as decompress
from jaxclust.multivector._residual import fit_codec as fit_codec
