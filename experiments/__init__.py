"""jaxclust experiments: a thin runner over the functional library (nothing imports this)."""
