"""jaxclust.nn."""
