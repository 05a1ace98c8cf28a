"""Training: `fit` under a tf.distribute strategy, saving a model directory.

Names are imported lazily so that `tfcvr.training.params` stays usable on a
machine with JAX and no TensorFlow.
"""

import importlib

_EXPORTS = {
    "parse_params": "tfcvr.training.params",
    "get_strategy": "tfcvr.training.strategy",
    "load_model_dir": "tfcvr.training.model_dir",
    "train": "tfcvr.training.trainer",
    "evaluate_dir": "tfcvr.training.evaluate_dir",
    "ThroughputCallback": "tfcvr.training.throughput_callback",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfcvr.training' has no attribute {name!r}")
