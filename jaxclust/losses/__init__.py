"""jaxclust.losses."""

from jaxclust.losses._alignment import alignment_loss as alignment_loss
from jaxclust.losses._alignment import uniformity_loss as uniformity_loss
from jaxclust.losses._contrastive import info_nce as info_nce
from jaxclust.losses._contrastive import nt_xent as nt_xent
from jaxclust.losses._icon import icon_comembership as icon_comembership
from jaxclust.losses._icon import icon_cosine as icon_cosine
from jaxclust.losses._icon import icon_gaussian as icon_gaussian
from jaxclust.losses._icon import icon_knn as icon_knn
from jaxclust.losses._icon import icon_labels as icon_labels
from jaxclust.losses._icon import icon_loss as icon_loss
from jaxclust.losses._icon import icon_pairs as icon_pairs
from jaxclust.losses._icon import icon_student_t as icon_student_t
from jaxclust.losses._margin import margin_softmax_loss as margin_softmax_loss
from jaxclust.losses._matryoshka import matryoshka as matryoshka
from jaxclust.losses._prototypical import prototypical_loss as prototypical_loss
from jaxclust.losses._soft_nearest_neighbor import soft_nearest_neighbor_loss as soft_nearest_neighbor_loss
from jaxclust.losses._supcon import SupConResult as SupConResult
from jaxclust.losses._supcon import supcon as supcon
from jaxclust.losses._triplet import triplet_loss as triplet_loss
