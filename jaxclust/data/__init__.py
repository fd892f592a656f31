"""jaxclust.data."""
