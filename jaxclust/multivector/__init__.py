"""jaxclust.multivector."""
