"""Training: `fit` under a tf.distribute strategy (or JAX's DataParallel),
checkpointed and resumable, stopped by a non-finite loss, saving a model
directory.

The names are imported on first use, not with the package: `parse_params`
and `ThroughputCallback` run where TensorFlow must not be imported (the
JAX-only `tfcvr bench train`, the `tfcvr bench grid` parent process), and
importing any module of this package runs this file first.
"""

import importlib

# Public name -> the module defining it.
_EXPORTS = {
    "EpochData": "tfcvr.training.epoch_data",
    "MissingLabelsWarning": "tfcvr.training.missing_labels_warning",
    "NonFiniteLossError": "tfcvr.training.non_finite_loss_error",
    "MultiWorkerStrategy": "tfcvr.training.multi_worker_strategy",
    "NonFiniteLossGuard": "tfcvr.training.non_finite_loss_guard",
    "ReplicaLayout": "tfcvr.training.replica_layout",
    "BestEpochStopping": "tfcvr.training.best_epoch_stopping",
    "IsotonicCalibrator": "tfcvr.training.isotonic_calibrator",
    "PlattCalibrator": "tfcvr.training.platt_calibrator",
    "PropensitySource": "tfcvr.training.propensity_source",
    "ThroughputCallback": "tfcvr.training.throughput_callback",
    "TrainingCheckpoint": "tfcvr.training.training_checkpoint",
    "check_training_split": "tfcvr.training.training_split",
    "evaluate_dir": "tfcvr.training.evaluate_dir",
    "get_strategy": "tfcvr.training.strategy",
    "load_model_dir": "tfcvr.training.model_dir",
    "parse_params": "tfcvr.training.params",
    "plan_pretraining": "tfcvr.training.pretraining",
    "train": "tfcvr.training.trainer",
    "tune": "tfcvr.training.tuning",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
