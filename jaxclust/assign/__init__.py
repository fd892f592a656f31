"""Optimal-transport assignment: Sinkhorn-family solvers for cluster-mass-constrained assignment."""

from jaxclust.assign._membership import doubly_stochastic_membership as doubly_stochastic_membership
from jaxclust.assign._rounding import balanced_counts as balanced_counts
from jaxclust.assign._rounding import hard_assign as hard_assign
from jaxclust.assign._sinkhorn_knopp import power_law_prior as power_law_prior
from jaxclust.assign._sinkhorn_knopp import sinkhorn_knopp as sinkhorn_knopp
