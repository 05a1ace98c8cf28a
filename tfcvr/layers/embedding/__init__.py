"""Schema-driven field embeddings."""

from tfcvr.layers.embedding.feature_embedding import FeatureEmbedding

__all__ = ["FeatureEmbedding"]
