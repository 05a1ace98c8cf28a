"""Keras layers (keras.ops only): embeddings, MLPs, multi-task backbones,
graph layers."""

from tfcvr.layers.backbones import BACKBONES
from tfcvr.layers.backbones import PLE
from tfcvr.layers.backbones import Backbone
from tfcvr.layers.backbones import DCNv2
from tfcvr.layers.backbones import IndependentTowers
from tfcvr.layers.backbones import MMoE
from tfcvr.layers.backbones import SharedBottom
from tfcvr.layers.backbones import get_backbone
from tfcvr.layers.backbones import register_backbone
from tfcvr.layers.core import MLP
from tfcvr.layers.core import AITModule
from tfcvr.layers.embedding import FeatureEmbedding
from tfcvr.layers.graph import GraphPropagation
from tfcvr.layers.graph import TopKNeighbourGraph

__all__ = [
    "AITModule",
    "BACKBONES",
    "Backbone",
    "DCNv2",
    "FeatureEmbedding",
    "GraphPropagation",
    "IndependentTowers",
    "MLP",
    "MMoE",
    "PLE",
    "SharedBottom",
    "TopKNeighbourGraph",
    "get_backbone",
    "register_backbone",
]
