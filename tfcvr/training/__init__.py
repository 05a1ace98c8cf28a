"""Training: `fit` under a tf.distribute strategy, saving a model directory."""

from tfcvr.training.params import parse_params
from tfcvr.training.strategy import get_strategy
from tfcvr.training.throughput_callback import ThroughputCallback
from tfcvr.training.train import build_model
from tfcvr.training.train import load_model_dir
from tfcvr.training.train import train

__all__ = [
    "ThroughputCallback",
    "build_model",
    "get_strategy",
    "load_model_dir",
    "parse_params",
    "train",
]
