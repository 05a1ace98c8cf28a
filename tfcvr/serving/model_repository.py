import os
import threading

import tensorflow as tf
from google.protobuf import json_format
from google.protobuf import message
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from tfcvr.features import keys
from tfcvr.serving.tf_serving_error import TFServingError

SAVED_MODEL_FILE = "saved_model.pb"


class _Servable:
    """One loaded SavedModel version: its signatures and their metadata."""

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        self.path = path
        with open(os.path.join(path, SAVED_MODEL_FILE), "rb") as f:
            data = f.read()
        try:
            proto = saved_model_pb2.SavedModel.FromString(data)
        except message.DecodeError:
            proto = None
        if proto is None or not proto.meta_graphs:
            raise ValueError(
                f"{SAVED_MODEL_FILE} is corrupt (it does not parse as a "
                f"SavedModel with a MetaGraph); export the model again."
            )
        signature_defs = proto.meta_graphs[0].signature_def
        self.loaded = tf.saved_model.load(path)
        self.functions = {}
        self.specs = {}
        self.arguments = {}
        for sig_name, function in self.loaded.signatures.items():
            definition = signature_defs[sig_name]
            self.functions[sig_name] = function
            self.specs[sig_name] = {
                key: (
                    types_pb2.DataType.Name(info.dtype),
                    len(info.tensor_shape.dim),
                )
                for key, info in definition.inputs.items()
            }
            # Signature input key -> keyword argument of the loaded function
            # (TF renames keys that are not Python identifiers).
            kwargs = function.structured_input_signature[1]
            self.arguments[sig_name] = {
                spec.name: arg for arg, spec in kwargs.items()
            }
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for sig_name, definition in signature_defs.items():
            signature_map.signature_def[sig_name].CopyFrom(definition)
        self.signature_def_json = json_format.MessageToDict(
            signature_map,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )

    def run(self, signature_name, arrays):
        """Runs a signature on `{input key: numpy array}`."""
        arguments = self.arguments[signature_name]
        feed = {
            arguments[key]: tf.constant(value) for key, value in arrays.items()
        }
        outputs = self.functions[signature_name](**feed)
        # ctr, cvr, ctcvr first, as the model contract lists them.
        order = {name: i for i, name in enumerate(keys.SERVING_OUTPUTS)}
        names = sorted(outputs, key=lambda n: (order.get(n, len(order)), n))
        return {name: outputs[name].numpy() for name in names}


class ModelRepository:
    """The SavedModels under a model base, as TF Serving lays them out.

    `model_base/<name>/<version>/saved_model.pb` with integer versions. The
    latest version of every model is loaded up front; an older version is
    loaded the first time a request names it; `refresh()` loads versions
    that appeared since (TF Serving's file-system polling).

    Args:
        model_base: str. The directory holding one folder per model.
        models: list of str or None. Serve only these model names.
    """

    def __init__(self, model_base, models=None):
        if not os.path.isdir(model_base):
            raise ValueError(f"Model base directory not found: {model_base}")
        self.model_base = model_base
        self.only = None if models is None else tuple(models)
        self._servables = {}
        self._latest = {}
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        found = self.scan(only=None)
        if not found:
            raise ValueError(
                f"No SavedModels under {model_base} (expected "
                f"<name>/<version>/{SAVED_MODEL_FILE}); run `tfcvr export`."
            )
        if self.only is not None:
            missing = sorted(set(self.only) - set(found))
            if missing:
                raise ValueError(
                    f"No SavedModel for {missing} under {model_base}. "
                    f"Found: {sorted(found)}"
                )
        self.refresh()

    def scan(self, only=()):
        """`{name: sorted versions}` on disk (of the served models unless
        `only` is given; None means every model)."""
        only = self.only if only == () else only
        found = {}
        for name in sorted(os.listdir(self.model_base)):
            if only is not None and name not in only:
                continue
            path = os.path.join(self.model_base, name)
            if not os.path.isdir(path) or name.startswith("."):
                continue
            versions = sorted(
                int(v)
                for v in os.listdir(path)
                if v.isdigit()
                and os.path.exists(os.path.join(path, v, SAVED_MODEL_FILE))
            )
            if versions:
                found[name] = versions
        return found

    def refresh(self):
        """Loads the latest version of every model; returns what it loaded."""
        loaded = []
        for name, versions in self.scan().items():
            latest = versions[-1]
            with self._lock:
                known = self._latest.get(name)
            if known is not None and known >= latest:
                continue
            self._load(name, latest)
            with self._lock:
                self._latest[name] = latest
            loaded.append((name, latest))
        return loaded

    def _load(self, name, version):
        key = (name, version)
        with self._lock:
            servable = self._servables.get(key)
        if servable is not None:
            return servable
        # Loading takes seconds; requests for loaded versions go on.
        with self._load_lock:
            with self._lock:
                servable = self._servables.get(key)
            if servable is not None:
                return servable
            path = os.path.join(self.model_base, name, str(version))
            try:
                servable = _Servable(name, version, path)
            except tf.errors.OpError as e:
                # A truncated variables file reads "not an sstable", with
                # error code UNKNOWN rather than DATA_LOSS.
                corrupt = e.error_code in (tf.errors.DATA_LOSS,
                                           tf.errors.UNKNOWN)
                raise TFServingError(
                    f"Could not load {path}: "
                    + (f"its files look corrupt ({_first_line(e)}); export "
                       f"the model again." if corrupt else _first_line(e)),
                    status=500,
                ) from None
            except (OSError, ValueError) as e:
                raise TFServingError(
                    f"Could not load {path}: {_first_line(e)}", status=500
                ) from None
            with self._lock:
                self._servables[key] = servable
        return servable

    @property
    def models(self):
        with self._lock:
            return dict(self._latest)

    def loaded_versions(self, name):
        with self._lock:
            return sorted(v for (n, v) in self._servables if n == name)

    def get(self, name, version=None):
        """The servable for a request; TFServingError 404 when unknown."""
        with self._lock:
            latest = self._latest.get(name)
        if latest is None:
            what = f"Latest({name})" if version is None else (
                f"Specific({name}, {version})"
            )
            raise TFServingError(
                f"Servable not found for request: {what}", status=404
            )
        if version is None:
            return self._load(name, latest)
        path = os.path.join(self.model_base, name, str(version))
        if not os.path.exists(os.path.join(path, SAVED_MODEL_FILE)):
            raise TFServingError(
                f"Servable not found for request: Specific({name}, {version})",
                status=404,
            )
        return self._load(name, version)

    def status(self, name, version=None):
        """TF Serving's GetModelStatusResponse as JSON."""
        if version is None:
            self.get(name)
            versions = self.loaded_versions(name)
        else:
            versions = [self.get(name, version).version]
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v in sorted(versions, reverse=True)
            ]
        }

    def metadata(self, name, version=None):
        """TF Serving's GetModelMetadataResponse as JSON."""
        servable = self.get(name, version)
        return {
            "model_spec": {
                "name": name,
                "signature_name": "",
                "version": str(servable.version),
            },
            "metadata": {"signature_def": servable.signature_def_json},
        }


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
