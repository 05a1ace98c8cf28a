"""Checks an exported SavedModel against its Keras model, in a fresh process.

The SavedModel is loaded by a new Python process in which importing tfcvr
fails, so the check proves that serving needs nothing but TensorFlow (the
way TF Serving loads it), and compares both signatures with the Keras model
applied to the same rows after `FeatureTransform`.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.export.raw_rows import transform_inputs_from_rows
from tfcvr.features import wire

_LOADER = r"""
import json
import sys

sys.modules["tfcvr"] = None  # the SavedModel must not need tfcvr

import numpy as np
import tensorflow as tf

saved_model, request_path, examples_path, output_path = sys.argv[1:5]
loaded = tf.saved_model.load(saved_model)
with open(request_path) as f:
    columns = json.load(f)
signature = loaded.signatures[%(serving_default)r]
feed = {}
for arg, spec in signature.structured_input_signature[1].items():
    values = columns[spec.name]
    if spec.dtype == tf.string:
        values = [
            [v.encode("utf-8") for v in row] if isinstance(row, list)
            else row.encode("utf-8")
            for row in values
        ]
    feed[arg] = tf.constant(values, dtype=spec.dtype)
results = {}
for key, value in signature(**feed).items():
    results[%(serving_default)r + "/" + key] = value.numpy()
examples = tf.constant(
    list(tf.data.TFRecordDataset(examples_path).as_numpy_iterator())
)
outputs = loaded.signatures[%(predict_examples)r](**{%(examples)r: examples})
for key, value in outputs.items():
    results[%(predict_examples)r + "/" + key] = value.numpy()
np.savez(output_path, **results)
""" % {
    "serving_default": wire.SERVING_DEFAULT,
    "predict_examples": wire.PREDICT_EXAMPLES,
    "examples": wire.EXAMPLES_INPUT,
}


def _jsonable(column):
    def convert(value):
        if isinstance(value, (list, np.ndarray)):
            return [convert(v) for v in value]
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.generic):
            return value.item()
        return value

    return convert(column.tolist() if column.dtype != object else list(column))


def keras_reference(model, rows, vocab_dir):
    """The Keras model's outputs on raw rows: `{name: (batch,) array}`."""
    transform = FeatureTransform(model.schema, vocab_dir)
    features = transform(transform_inputs_from_rows(rows, model.schema))
    outputs = model.predict(features, batch_size=len(rows), verbose=0)
    return {k: np.asarray(v).reshape(-1) for k, v in outputs.items()}


def outputs_in_fresh_process(saved_model_dir, rows, schema, timeout=300):
    """Both signatures of a SavedModel on raw rows, run by a new Python
    process in which importing tfcvr fails.

    Returns:
        `{"<signature>/<output>": (batch,) array}`.
    """
    columns = columns_from_rows(rows, schema)
    with tempfile.TemporaryDirectory() as tmp:
        request_path = os.path.join(tmp, "request.json")
        with open(request_path, "w") as f:
            json.dump({k: _jsonable(v) for k, v in columns.items()}, f)
        examples_path = os.path.join(tmp, "examples.tfrecord")
        with tf.io.TFRecordWriter(examples_path) as writer:
            for row in rows:
                writer.write(example_from_row(row, schema).SerializeToString())
        output_path = os.path.join(tmp, "outputs.npz")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            result = subprocess.run(
                [
                    sys.executable, "-c", _LOADER,
                    os.path.abspath(saved_model_dir), request_path,
                    examples_path, output_path,
                ],
                cwd=tmp, env=env, capture_output=True, text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"Loading {saved_model_dir} in a fresh process took more "
                f"than {timeout}s."
            ) from None
        if result.returncode != 0:
            lines = [l for l in result.stderr.strip().splitlines() if l]
            raise ValueError(
                f"A fresh process could not load and run {saved_model_dir}: "
                f"{lines[-1] if lines else 'exit ' + str(result.returncode)}"
            )
        with np.load(output_path) as data:
            return {k: data[k].reshape(-1) for k in data.files}


def compare_outputs(actual, expected, atol=1e-5):
    """The check report of SavedModel outputs against Keras outputs."""
    diffs = {}
    for key, value in actual.items():
        output = key.split("/", 1)[1]
        if output not in expected:
            raise ValueError(f"The SavedModel returns an unknown output {key}.")
        diffs[key] = float(np.max(np.abs(value - expected[output])))
    return {
        "rows": len(next(iter(actual.values()))) if actual else 0,
        "max_abs_diff": diffs,
        "ok": bool(diffs) and all(d <= atol for d in diffs.values()),
    }


def check_saved_model(saved_model_dir, model, rows, vocab_dir, atol=1e-5,
                      timeout=300):
    """Compares a SavedModel loaded in a fresh process with the Keras model.

    Args:
        saved_model_dir: str. The exported version directory.
        model: the `CVRModel` that was exported.
        rows: list of raw row dicts.
        vocab_dir: str. Directory of the schema's vocabulary files.
        atol: float. Largest allowed absolute difference.
        timeout: float. Seconds allowed to the loading process.

    Returns:
        dict: `rows`, `max_abs_diff` (`{"<signature>/<output>": float}`),
        `ok` (every difference within `atol`).
    """
    expected = keras_reference(model, rows, vocab_dir)
    actual = outputs_in_fresh_process(
        saved_model_dir, rows, model.schema, timeout=timeout
    )
    return compare_outputs(actual, expected, atol=atol)
