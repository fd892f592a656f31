"""Clustering solvers: k-means family, balanced and semi-supervised k-means, Gaussian mixtures,
spectral, agglomerative (Ward) and self-expressive subspace clustering, non-negative matrix
factorisation, k-nearest neighbours."""

from jaxclust.cluster._balanced import BalancedKMeansResult as BalancedKMeansResult
from jaxclust.cluster._balanced import balanced_kmeans as balanced_kmeans
from jaxclust.cluster._gmm import GMMParams as GMMParams
from jaxclust.cluster._gmm import GMMResult as GMMResult
from jaxclust.cluster._gmm import gmm as gmm
from jaxclust.cluster._gmm import gmm_aic as gmm_aic
from jaxclust.cluster._gmm import gmm_bic as gmm_bic
from jaxclust.cluster._gmm import gmm_num_parameters as gmm_num_parameters
from jaxclust.cluster._gmm import gmm_predict as gmm_predict
from jaxclust.cluster._gmm import gmm_predict_proba as gmm_predict_proba
from jaxclust.cluster._gmm import gmm_sample as gmm_sample
from jaxclust.cluster._gmm import gmm_score_samples as gmm_score_samples
from jaxclust.cluster._init import kmeans_plusplus as kmeans_plusplus
from jaxclust.cluster._init import random_init as random_init
from jaxclust.cluster._kmeans import KMeansResult as KMeansResult
from jaxclust.cluster._kmeans import kmeans as kmeans
from jaxclust.cluster._kmeans import kmeans_predict as kmeans_predict
from jaxclust.cluster._kmeans_parallel import kmeans_parallel as kmeans_parallel
from jaxclust.cluster._minibatch import KMeansState as KMeansState
from jaxclust.cluster._minibatch import minibatch_init as minibatch_init
from jaxclust.cluster._minibatch import minibatch_kmeans as minibatch_kmeans
from jaxclust.cluster._minibatch import minibatch_update as minibatch_update
from jaxclust.cluster._nmf import NMFResult as NMFResult
from jaxclust.cluster._nmf import nmf as nmf
from jaxclust.cluster._select import ChooseKResult as ChooseKResult
from jaxclust.cluster._select import choose_k as choose_k
from jaxclust.cluster._select import format_choose_k as format_choose_k
from jaxclust.cluster._select import plot_choose_k as plot_choose_k
from jaxclust.cluster._ward import AgglomerativeResult as AgglomerativeResult
from jaxclust.cluster._ward import agglomerative as agglomerative
from jaxclust.cluster._semi_supervised import SemiSupervisedKMeansResult as SemiSupervisedKMeansResult
from jaxclust.cluster._semi_supervised import semi_supervised_kmeans as semi_supervised_kmeans
from jaxclust.cluster._neighbors import KNNResult as KNNResult
from jaxclust.cluster._neighbors import knn as knn
from jaxclust.cluster._spectral import SpectralResult as SpectralResult
from jaxclust.cluster._spectral import knn_affinity as knn_affinity
from jaxclust.cluster._spectral import rbf_affinity as rbf_affinity
from jaxclust.cluster._spectral import spectral_clustering as spectral_clustering
from jaxclust.cluster._subspace import SubspaceResult as SubspaceResult
from jaxclust.cluster._subspace import self_expression as self_expression
from jaxclust.cluster._subspace import subspace_clustering as subspace_clustering
