"""One raw row through an exported SavedModel (quickstart, smoke checks)."""

import json
import os

import tensorflow as tf

from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.sample_rows import dataset_rows
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.export.warmup import WARMUP_DIR
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import wire


def load_and_predict(saved_model_dir, data_dir=None, split=keys.EVAL_SPLIT):
    """Loads a SavedModel and predicts one raw row with `serving_default`.

    The row is the first one of `data_dir`'s split that has every required
    feature, or a synthetic row when `data_dir` is None.

    Returns:
        `(row, outputs)`: the raw row (a JSON-able dict, as a client would
        send it) and `{output name: float}`.
    """
    info_path = os.path.join(saved_model_dir, WARMUP_DIR, "tfcvr_export.json")
    if not os.path.exists(info_path):
        raise ValueError(f"{saved_model_dir} is not a tfcvr SavedModel export.")
    with open(info_path) as f:
        info = json.load(f)
    schema = Schema.from_dict(info["schema"])
    required = info.get("required_features", [])
    if data_dir is not None:
        rows = dataset_rows(data_dir, schema, num_rows=64, split=split)
        rows = [r for r in rows
                if all(r.get(n) not in (None, []) for n in required)]
        if not rows:
            raise ValueError(
                f"No row of {data_dir} ({split}) has every required feature "
                f"{required}."
            )
    else:
        rows = synthetic_rows(schema, None, 1, keep_present=required)
    row = {k: v for k, v in rows[0].items() if v is not None}
    loaded = tf.saved_model.load(saved_model_dir)
    signature = loaded.signatures[wire.SERVING_DEFAULT]
    columns = columns_from_rows([row], schema)
    args = {
        arg: tf.constant(columns[spec.name])
        for arg, spec in signature.structured_input_signature[1].items()
    }
    outputs = signature(**args)
    return row, {k: float(v.numpy()[0]) for k, v in outputs.items()}
