"""TF Serving's `models.config` (a text-format `ModelServerConfig`).

`tensorflow_model_server --model_config_file=/models/models.config` serves
every entry; export keeps one entry per model name under the model base.
"""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

MODEL_CONFIG_FILE = "models.config"
# Where the model base is mounted in the tensorflow/serving container
# (`docker run -v $PWD/saved_models:/models ...`).
DEFAULT_SERVING_BASE_PATH = "/models"


def read_model_config(path):
    """Parses a `models.config` file; a missing file is an empty config."""
    config = model_server_config_pb2.ModelServerConfig()
    if not os.path.exists(path):
        return config
    with open(path) as f:
        text = f.read()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(
            f"{path} is not a valid TF Serving model config: {e}"
        ) from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError(
            f"{path} uses custom_model_config; tfcvr only updates "
            f"model_config_list."
        )
    return config


def format_model_config(config):
    return text_format.MessageToString(config)


def update_model_config(model_base, name, base_path=None):
    """Adds or updates the entry of model `name` in `model_base/models.config`.

    Other entries (and every other field of this entry, e.g. a version
    policy) are kept; entries are sorted by name, so re-running export gives
    the same file.

    Args:
        model_base: str. Directory holding `<name>/<version>/` SavedModels.
        name: str. Model name (the `/v1/models/<name>` of the REST API).
        base_path: str or None. The model's path as TF Serving sees it.
            Defaults to `/models/<name>` (the container mount).

    Returns:
        The path of the config file.
    """
    if not name or "/" in name:
        raise ValueError(
            f"A model name is one non-empty path component. Received: "
            f"name={name!r}"
        )
    path = os.path.join(model_base, MODEL_CONFIG_FILE)
    config = read_model_config(path)
    if base_path is None:
        base_path = f"{DEFAULT_SERVING_BASE_PATH}/{name}"
    entries = {c.name: c for c in config.model_config_list.config}
    entry = model_server_config_pb2.ModelConfig()
    if name in entries:
        entry.CopyFrom(entries[name])
    entry.name = name
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    entries[name] = entry
    updated = model_server_config_pb2.ModelServerConfig()
    for key in sorted(entries):
        updated.model_config_list.config.add().CopyFrom(entries[key])
    text = format_model_config(updated)
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if text != old:
        os.makedirs(model_base, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path
