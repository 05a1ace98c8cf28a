from tfcvr.layers.core.mlp import MLP

__all__ = ["MLP"]
