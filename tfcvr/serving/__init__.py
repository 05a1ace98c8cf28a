"""Serving over TF Serving's REST API: a client and a local server.

`TFServingClient` talks to TF Serving (or `tfcvr serve`) with the standard
library only; `RestServer` serves the exported SavedModels of a
`ModelRepository` for development and tests.
"""

import importlib

from tfcvr.serving.tf_serving_client import TFServingClient
from tfcvr.serving.tf_serving_error import TFServingError

# Imported on first use: they need TensorFlow, the client must not.
_SERVER_EXPORTS = {
    "ModelRepository": "tfcvr.serving.model_repository",
    "RestServer": "tfcvr.serving.rest_server",
}

__all__ = ["TFServingClient", "TFServingError", *_SERVER_EXPORTS]


def __getattr__(name):
    if name in _SERVER_EXPORTS:
        return getattr(importlib.import_module(_SERVER_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
