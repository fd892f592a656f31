"""jaxclust.parallel."""
