"""Clustering metrics: external (agreement with ground-truth classes) and internal (geometry)."""

from ._contingency import contingency_matrix as contingency_matrix
from ._external import accuracy as accuracy
from ._external import ami as ami
from ._external import ari as ari
from ._external import many_to_one_accuracy as many_to_one_accuracy
from ._external import match_clusters_to_classes as match_clusters_to_classes
from ._external import NovelClassAccuracy as NovelClassAccuracy
from ._external import nmi as nmi
from ._external import novel_class_accuracy as novel_class_accuracy
from ._external import purity as purity
from ._internal import silhouette_samples as silhouette_samples
from ._internal import silhouette_score as silhouette_score
from ._representation import NeuralCollapseResult as NeuralCollapseResult
from ._representation import alignment as alignment
from ._representation import fisher_ratio as fisher_ratio
from ._representation import linear_cka as linear_cka
from ._representation import linear_cka_unbiased as linear_cka_unbiased
from ._representation import linear_hsic_unbiased as linear_hsic_unbiased
from ._representation import neural_collapse as neural_collapse
from ._representation import rankme as rankme
from ._representation import relative_representation as relative_representation
from ._representation import uniformity as uniformity
from ._representation import von_neumann_entropy as von_neumann_entropy
