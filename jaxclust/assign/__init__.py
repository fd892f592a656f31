"""jaxclust.assign."""
