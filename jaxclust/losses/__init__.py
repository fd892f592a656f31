"""jaxclust.losses."""
