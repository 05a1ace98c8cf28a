"""Input pipeline (tf.data) and the log simulator.

Exports are lazy: the simulator needs no TensorFlow, so `tfcvr simulate`
does not pay for importing it. `tfcvr.data.simulate` is the simulator's
module; its function is `tfcvr.data.simulate.simulate`.
"""

import importlib

_EXPORTS = {
    "DatasetDir": "tfcvr.data.dataset_dir",
    "FeatureTransform": "tfcvr.data.feature_transform",
    "make_dataset": "tfcvr.data.tfrecord_dataset",
    "Simulator": "tfcvr.data.simulator",
    "SimulationConfig": "tfcvr.data.simulation_config",
    "AliccpWriter": "tfcvr.data.aliccp_writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfcvr.data' has no attribute {name!r}")
