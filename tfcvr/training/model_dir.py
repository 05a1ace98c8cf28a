"""Reading a trained model directory written by `tfcvr train`.

Layout: `MODEL_DIR/model.keras`, `MODEL_DIR/schema.json`,
`MODEL_DIR/vocab/` and `MODEL_DIR/spec.json` (copied from the dataset
directory, so the model directory alone is enough to export, to encode a
held-out log with `--vocab-from` and to score raw logs with `tfcvr
predict`), optionally a JSON record of the run naming the dataset
directory (`"data_dir"` or `"data"`).
"""

import glob
import json
import os
import shutil
import zipfile
import zlib

from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features.input_spec import SPEC_FILE

MODEL_FILE = "model.keras"
# What a damaged archive raises inside `keras.models.load_model`: a bad
# member (zip, zlib), a missing one (KeyError), config.json that does not
# parse, weights that h5py cannot open (OSError).
_CORRUPT_ARCHIVE_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, KeyError,
    json.JSONDecodeError, OSError,
)


def copy_encoding_files(data_dir, model_dir):
    """Copies what decides the encoding of raw logs from a dataset
    directory into a model directory: `schema.json`, `vocab/` (replaced
    whole) and the input spec `spec.json` when the dataset has one."""
    os.makedirs(model_dir, exist_ok=True)
    shutil.copyfile(
        os.path.join(data_dir, keys.SCHEMA_FILE),
        os.path.join(model_dir, keys.SCHEMA_FILE),
    )
    vocab_src = os.path.join(data_dir, keys.VOCAB_DIR)
    vocab_dst = os.path.join(model_dir, keys.VOCAB_DIR)
    if os.path.isdir(vocab_dst):
        shutil.rmtree(vocab_dst)
    if os.path.isdir(vocab_src):
        shutil.copytree(vocab_src, vocab_dst)
    spec_dst = os.path.join(model_dir, SPEC_FILE)
    if os.path.exists(os.path.join(data_dir, SPEC_FILE)):
        shutil.copyfile(os.path.join(data_dir, SPEC_FILE), spec_dst)
    elif os.path.exists(spec_dst):
        os.remove(spec_dst)


def load_model_dir(model_dir):
    """`(model, vocab_dir)` of a trained model directory.

    The model's own schema (from its config) drives the transform; the
    directory's `schema.json` must describe the same features, since its
    vocabulary files are the ones shipped.
    """
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
    model = load_model_file(path)
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


def load_model_file(path):
    """A Keras model from a `.keras` file, or a one-line ValueError.

    Keras reports a file that is not a zip archive (truncated, overwritten,
    empty) as "File not found"; here it is named corrupt, and so is an
    archive whose members do not read.
    """
    import keras

    from tfcvr import models  # noqa: F401  (registers every estimator)

    if not os.path.isfile(path):
        raise ValueError(f"Model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is corrupt: it is not a .keras zip archive (truncated "
            f"or overwritten?); train the model again."
        )
    try:
        return keras.models.load_model(path)
    except _CORRUPT_ARCHIVE_ERRORS as e:
        raise ValueError(
            f"{path} is corrupt: {type(e).__name__}: {_first_line(e)}"
        ) from None
    except Exception as e:  # Keras raises many types; one line for the user.
        raise ValueError(
            f"Could not load {path}: {type(e).__name__}: {_first_line(e)}"
        ) from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


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
