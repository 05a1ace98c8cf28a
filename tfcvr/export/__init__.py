"""Export trained estimators as TF Serving SavedModels.

`export_saved_model(model, "saved_models", name="esmm")` writes
`saved_models/esmm/<version>/` (signatures `serving_default` on raw feature
values and `predict_examples` on serialized `tf.train.Example`s, the
vocabulary tables inside the graph, warmup requests) and updates
`saved_models/models.config`. See docs/serving.md. `LogScorer`,
`predict_log` and `evaluate_log` score raw logs (`tfcvr predict`, `tfcvr
evaluate --input`) with a model directory or a SavedModel.
"""

from tfcvr.export.check_saved_model import check_saved_model
from tfcvr.export.evaluate_log import evaluate_log
from tfcvr.export.export_saved_model import export_saved_model
from tfcvr.export.export_saved_model import next_version
from tfcvr.export.load_and_predict import load_and_predict
from tfcvr.export.log_scorer import LogScorer
from tfcvr.export.model_config import update_model_config
from tfcvr.export.predict_log import predict_log
from tfcvr.export.prediction_writer import PredictionWriter
from tfcvr.export.serving_module import ServingModule
from tfcvr.export.warmup import read_warmup_requests

__all__ = [
    "LogScorer",
    "PredictionWriter",
    "ServingModule",
    "check_saved_model",
    "evaluate_log",
    "export_saved_model",
    "load_and_predict",
    "next_version",
    "predict_log",
    "read_warmup_requests",
    "update_model_config",
]
