"""Keras layers (keras.ops only): embeddings, MLPs, multi-task backbones."""

from tfcvr.layers.backbones import *  # noqa: F401,F403
from tfcvr.layers.backbones import __all__ as _backbones
from tfcvr.layers.core import MLP
from tfcvr.layers.core import AITModule
from tfcvr.layers.embedding import FeatureEmbedding

__all__ = ["AITModule", "FeatureEmbedding", "MLP"] + list(_backbones)
