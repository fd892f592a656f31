"""Optimal-transport assignment: Sinkhorn-family solvers for cluster-mass-constrained assignment."""

from jaxclust.assign._membership import doubly_stochastic_membership as doubly_stochastic_membership
from jaxclust.assign._partial import P2OTResult as P2OTResult
from jaxclust.assign._partial import p2ot as p2ot
from jaxclust.assign._partial import rho_schedule as rho_schedule
from jaxclust.assign._rounding import balanced_counts as balanced_counts
from jaxclust.assign._rounding import hard_assign as hard_assign
from jaxclust.assign._sinkhorn import SinkhornResult as SinkhornResult
from jaxclust.assign._sinkhorn import apply_plan as apply_plan
from jaxclust.assign._sinkhorn import plan as plan
from jaxclust.assign._sinkhorn import sinkhorn as sinkhorn
from jaxclust.assign._sinkhorn_knopp import power_law_prior as power_law_prior
from jaxclust.assign._sinkhorn_knopp import sinkhorn_knopp as sinkhorn_knopp
from jaxclust.assign._unbalanced import UnbalancedResult as UnbalancedResult
from jaxclust.assign._unbalanced import sinkhorn_unbalanced as sinkhorn_unbalanced
