"""Reading a trained model directory written by `tfcvr train`.

Layout: `MODEL_DIR/model.keras`, `MODEL_DIR/schema.json` and
`MODEL_DIR/vocab/` (copied from the dataset directory, so the model
directory alone is enough to export), optionally a JSON record of the run
naming the dataset directory (`"data_dir"` or `"data"`).
"""

import glob
import json
import os

from tfcvr.features import Schema
from tfcvr.features import keys

MODEL_FILE = "model.keras"


def load_model_dir(model_dir):
    """`(model, vocab_dir)` of a trained model directory.

    The model's own schema (from its config) drives the transform; the
    directory's `schema.json` must describe the same features, since its
    vocabulary files are the ones shipped.
    """
    import keras

    from tfcvr import models  # noqa: F401  (registers every estimator)

    if not os.path.isdir(model_dir):
        raise ValueError(f"Model directory not found: {model_dir}")
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.exists(path):
        raise ValueError(
            f"{model_dir} has no {MODEL_FILE}; train a model with "
            f"`tfcvr train --model-dir {model_dir}` first."
        )
    schema_path = os.path.join(model_dir, keys.SCHEMA_FILE)
    if not os.path.exists(schema_path):
        raise ValueError(f"{model_dir} has no {keys.SCHEMA_FILE}.")
    try:
        model = keras.models.load_model(path)
    except Exception as e:  # Keras raises many types; one line for the user.
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"Could not load {path}: {type(e).__name__}: {first}"
        ) from None
    schema = getattr(model, "schema", None)
    if schema is None:
        raise ValueError(f"{path} is not a tfcvr CVRModel (it has no schema).")
    on_disk = Schema.load(schema_path)
    if on_disk.features != schema.features:
        raise ValueError(
            f"{schema_path} does not describe the model's features; the "
            f"model directory is inconsistent."
        )
    return model, model_dir


def recorded_data_dir(model_dir):
    """The dataset directory a training run recorded, or None.

    Looks at the JSON files of the model directory (other than the schema)
    for a top-level `"data_dir"` or `"data"` that is an existing dataset
    directory.
    """
    for path in sorted(glob.glob(os.path.join(model_dir, "*.json"))):
        if os.path.basename(path) == keys.SCHEMA_FILE:
            continue
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        for key in ("data_dir", "data"):
            value = record.get(key)
            if isinstance(value, str):
                candidate = value
                if not os.path.isabs(candidate):
                    candidate = os.path.join(model_dir, candidate)
                if os.path.exists(os.path.join(candidate, keys.SCHEMA_FILE)):
                    return candidate
                if os.path.exists(os.path.join(value, keys.SCHEMA_FILE)):
                    return value
    return None
