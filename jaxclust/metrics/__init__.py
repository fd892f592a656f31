"""jaxclust.metrics."""
