"""Export trained estimators as TF Serving SavedModels.

`export_saved_model(model, "saved_models", name="esmm")` writes
`saved_models/esmm/<version>/` (signatures `serving_default` on raw feature
values and `predict_examples` on serialized `tf.train.Example`s, the
vocabulary tables inside the graph, warmup requests) and updates
`saved_models/models.config`. See docs/serving.md.
"""

from tfcvr.export.check_saved_model import check_saved_model
from tfcvr.export.export_saved_model import export_saved_model
from tfcvr.export.export_saved_model import next_version
from tfcvr.export.load_and_predict import load_and_predict
from tfcvr.export.model_config import update_model_config
from tfcvr.export.serving_module import ServingModule
from tfcvr.export.warmup import read_warmup_requests

__all__ = [
    "ServingModule",
    "check_saved_model",
    "export_saved_model",
    "load_and_predict",
    "next_version",
    "read_warmup_requests",
    "update_model_config",
]
