"""Building blocks of the towers and heads."""

from tfcvr.layers.core.ait_module import AITModule
from tfcvr.layers.core.mlp import MLP

__all__ = ["AITModule", "MLP"]
