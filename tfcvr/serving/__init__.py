"""Serving over TF Serving's REST API: a client and a local server.

`TFServingClient` talks to TF Serving (or `tfcvr serve`) with the standard
library only; `tfcvr.serving.rest_server` serves exported SavedModels for
development and tests. Import the server module explicitly: it needs
TensorFlow, the client does not.
"""

from tfcvr.serving.tf_serving_client import TFServingClient
from tfcvr.serving.tf_serving_error import TFServingError

__all__ = ["TFServingClient", "TFServingError"]
