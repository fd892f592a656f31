"""jaxclust.cluster."""
