"""SavedModel warmup requests that TF Serving replays before serving.

TF Serving reads `<version>/assets.extra/tf_serving_warmup_requests`, a
TFRecord file of `PredictionLog` protos, and runs each request once when it
loads the version, so the first real request does not pay for graph
initialisation (vocabulary tables, kernels).
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def predict_request(model_name, inputs, signature_name):
    """A `PredictRequest` from `{input name: array or list}`.

    Strings may be str or bytes; they are kept as object arrays, never
    numpy's fixed-width bytes, which drop trailing NUL bytes (and so
    corrupt serialized Examples).
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(_array(value)))
    return request


def _array(value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU":
            raise ValueError(
                "String inputs must be lists or object arrays, not numpy "
                f"{value.dtype} arrays (they drop trailing NUL bytes)."
            )
        if value.dtype != object:
            return value
        value = value.tolist()
    rows = list(value)
    if rows and isinstance(rows[0], (list, tuple)):
        array = np.empty((len(rows), len(rows[0])), dtype=object)
        for i, row in enumerate(rows):
            array[i, :] = [_as_bytes(v) for v in row]
        return array
    if rows and isinstance(rows[0], (bytes, str)):
        array = np.empty(len(rows), dtype=object)
        array[:] = [_as_bytes(v) for v in rows]
        return array
    return np.asarray(rows)


def _as_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def write_warmup_requests(saved_model_dir, requests):
    """Writes `PredictRequest`s as the SavedModel's warmup file.

    Args:
        saved_model_dir: str. A SavedModel version directory.
        requests: iterable of `predict_pb2.PredictRequest`.

    Returns:
        The path of the warmup file.
    """
    directory = os.path.join(saved_model_dir, WARMUP_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path):
    """The `PredictionLog`s of a warmup file (a version dir or the file)."""
    if os.path.isdir(path):
        path = os.path.join(path, WARMUP_DIR, WARMUP_FILE)
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log)
    return logs
