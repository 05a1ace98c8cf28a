"""The tf.data input pipeline: a preprocessed dataset directory to batches.

Exports are lazy so that importing `tfcvr.data` does not load TensorFlow
before a command needs it (the CLI's start-up time).
"""

import importlib

_EXPORTS = {
    "DatasetDir": "tfcvr.data.dataset_dir",
    "FeatureTransform": "tfcvr.data.feature_transform",
    "make_dataset": "tfcvr.data.tfrecord_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfcvr.data' has no attribute {name!r}")
