"""jaxclust.nn.

Reference architectures of deep clustering as Flax ``linen`` modules: DEC's MLP and DCEC's
convolutional autoencoders, a CIFAR ResNet-18, a small ViT, and heads (projection, prototype,
multi-head clustering, DEC's Student-t layer). This is the only subpackage that imports Flax;
``import jaxclust`` does not import it (use ``from jaxclust import nn``).
"""

from ._autoencoders import ConvAutoencoder as ConvAutoencoder
from ._autoencoders import MLPAutoencoder as MLPAutoencoder
from ._autoencoders import PretrainStage as PretrainStage
from ._autoencoders import greedy_pretrain_stages as greedy_pretrain_stages
from ._heads import ClusteringHeads as ClusteringHeads
from ._heads import DECClusteringLayer as DECClusteringLayer
from ._heads import PrototypeHead as PrototypeHead
from ._heads import ProjectionHead as ProjectionHead
from ._heads import normalize_prototypes as normalize_prototypes
from ._resnet import BasicBlock as BasicBlock
from ._resnet import ResNet as ResNet
from ._resnet import ResNet18 as ResNet18
from ._vit import TransformerBlock as TransformerBlock
from ._vit import ViT as ViT

__all__ = [
    "BasicBlock",
    "ClusteringHeads",
    "ConvAutoencoder",
    "DECClusteringLayer",
    "MLPAutoencoder",
    "PretrainStage",
    "ProjectionHead",
    "PrototypeHead",
    "ResNet",
    "ResNet18",
    "TransformerBlock",
    "ViT",
    "greedy_pretrain_stages",
    "normalize_prototypes",
]
