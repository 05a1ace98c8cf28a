import datetime
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfcvr.export.model_config import DEFAULT_SERVING_BASE_PATH
from tfcvr.export.model_config import update_model_config
from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.export.raw_rows import serving_input_specs
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.export.serving_module import ServingModule
from tfcvr.export.warmup import WARMUP_DIR
from tfcvr.export.warmup import predict_request
from tfcvr.export.warmup import write_warmup_requests
from tfcvr.features import wire
from tfcvr.features.input_spec import SPEC_FILE
from tfcvr.features.input_spec import InputSpec

EXPORT_INFO_FILE = "tfcvr_export.json"
INPUT_SPEC_KEY = "input_spec"
DEFAULT_WARMUP_ROWS = 8


def existing_versions(model_path):
    """Sorted integer versions under `model_path` (TF Serving's layout)."""
    if not os.path.isdir(model_path):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_path)
        if entry.isdigit() and os.path.isdir(os.path.join(model_path, entry))
    )


def next_version(model_path):
    """One more than the highest existing version, or 1."""
    versions = existing_versions(model_path)
    return versions[-1] + 1 if versions else 1


def export_saved_model(
    model,
    out_base,
    name=None,
    version=None,
    vocab_dir=None,
    warmup_rows=None,
    include_auxiliary=False,
    required_features=None,
    serving_base_path=DEFAULT_SERVING_BASE_PATH,
    overwrite=False,
):
    """Exports a `CVRModel` as `out_base/<name>/<version>/` for TF Serving.

    The SavedModel holds the model's variables and the `FeatureTransform`
    (vocabulary files as assets), with the signatures `serving_default`
    (raw feature values by name) and `predict_examples` (serialized
    `tf.train.Example`s), both returning float32 `(batch,)` `ctr`, `cvr`,
    `ctcvr` (see `ServingModule`). It also writes warmup requests
    (`assets.extra/tf_serving_warmup_requests`), a description of the
    inputs (`assets.extra/tfcvr_export.json`) and adds the model to
    `out_base/models.config`. The version directory appears atomically
    (written under a temporary name, then renamed), so a running TF Serving
    never loads half a model.

    Args:
        model: built `tfcvr.models.CVRModel`, or the path of a trained model
            directory (`model.keras`, `schema.json`, `vocab/`), which is
            then also the default `vocab_dir`.
        out_base: str. The model base directory (e.g. `saved_models`).
        name: str or None. Model name; defaults to the estimator's registry
            name (e.g. `"esmm"`).
        version: int or None. Defaults to the next free version.
        vocab_dir: str or None. Directory the schema's vocabulary files are
            relative to (the model directory).
        warmup_rows: list of raw row dicts, an int (that many synthetic rows
            from the vocabulary), or None (8 synthetic rows). 0 or `[]`
            writes no warmup file.
        include_auxiliary: bool. Expose auxiliary heads too.
        required_features: list of str or None. See `ServingModule`.
        serving_base_path: str or None. Directory where TF Serving sees
            `out_base` (the container mount, `/models`); None writes the
            absolute local path into `models.config`.
        overwrite: bool. Replace an existing version.

    Returns:
        The version directory.
    """
    if isinstance(model, (str, os.PathLike)):
        from tfcvr.training.model_dir import load_model_dir

        model, model_dir = load_model_dir(os.fspath(model))
        vocab_dir = model_dir if vocab_dir is None else vocab_dir
    if name is None:
        name = getattr(model, "estimator_name", None) or model.name
    if not isinstance(name, str) or not name or "/" in name or (
        name.startswith(".")
    ):
        raise ValueError(
            f"name must be a plain directory name. Received: name={name!r}"
        )
    check_finite_weights(model)
    model_path = os.path.join(out_base, name)
    if version is None:
        version = next_version(model_path)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(
            f"version must be a positive int. Received: version={version!r}"
        )
    final = os.path.join(model_path, str(version))
    if os.path.exists(final) and not overwrite:
        raise ValueError(
            f"{final} already exists; pick another --version or let export "
            f"choose the next one ({next_version(model_path)})."
        )

    module = ServingModule(
        model,
        vocab_dir=vocab_dir,
        include_auxiliary=include_auxiliary,
        required_features=required_features,
    )
    rows = _warmup_rows(model.schema, vocab_dir, warmup_rows, module)
    requests = _requests(name, rows, model.schema) if rows else []
    # A warmup request that fails makes TF Serving refuse the version, so
    # run each one here first.
    signatures = module.signatures()
    for request in requests:
        _run_request(signatures, request)

    os.makedirs(model_path, exist_ok=True)
    # Not an integer name, so TF Serving ignores it while it is written.
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_path)
    os.chmod(staging, 0o755)
    try:
        tf.saved_model.save(module, staging, signatures=signatures)
        if requests:
            write_warmup_requests(staging, requests)
        _write_info(staging, model, module, name, version,
                    _input_spec(vocab_dir))
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    base_path = (
        f"{serving_base_path.rstrip('/')}/{name}"
        if serving_base_path
        else os.path.abspath(model_path)
    )
    update_model_config(out_base, name, base_path=base_path)
    return final


def check_finite_weights(model):
    """Raises a one-line ValueError naming the first variable of `model`
    with a NaN or infinite value: such a model predicts NaN, so TF Serving
    must never get it."""
    for variable in model.weights:
        values = np.asarray(variable.numpy())
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"The model's weights are not finite: {variable.path} has "
                f"{int(bad.sum())} NaN or infinite value(s) of "
                f"{values.size}; it was not exported (retrain it, e.g. with "
                f"a lower --learning-rate)."
            )


def withdraw_version(version_dir, config_path, config_text):
    """Removes an exported version that must not be served and puts
    `models.config` back as it was before the export (`config_text`, or no
    file when it was None), so TF Serving never loads the version."""
    shutil.rmtree(version_dir, ignore_errors=True)
    if config_text is None:
        if os.path.exists(config_path):
            os.remove(config_path)
        return
    tmp = config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_text)
    os.replace(tmp, config_path)


def _warmup_rows(schema, vocab_dir, warmup_rows, module):
    if warmup_rows is None:
        warmup_rows = DEFAULT_WARMUP_ROWS
    if isinstance(warmup_rows, int):
        if warmup_rows <= 0:
            return []
        return synthetic_rows(
            schema, vocab_dir, warmup_rows, seed=0,
            keep_present=module.required_features,
        )
    return list(warmup_rows)


def _requests(name, rows, schema):
    """Batch-1 and full-batch requests on both signatures."""
    requests = []
    for batch in ([rows[0]], rows) if len(rows) > 1 else ([rows[0]],):
        requests.append(
            predict_request(
                name, columns_from_rows(batch, schema),
                wire.SERVING_DEFAULT,
            )
        )
    examples = [example_from_row(r, schema).SerializeToString() for r in rows]
    requests.append(
        predict_request(
            name, {wire.EXAMPLES_INPUT: examples},
            wire.PREDICT_EXAMPLES,
        )
    )
    return requests


def _run_request(signatures, request):
    function = signatures[request.model_spec.signature_name]
    specs = function.structured_input_signature
    inputs = {
        name: tf.make_ndarray(proto) for name, proto in request.inputs.items()
    }
    try:
        if specs[0]:
            function(*[tf.constant(inputs[s.name]) for s in specs[0]])
        else:
            function(**{
                arg: tf.constant(inputs[s.name]) for arg, s in specs[1].items()
            })
    except tf.errors.InvalidArgumentError as e:
        raise ValueError(
            f"A warmup request fails on the exported model: "
            f"{e.message.splitlines()[0]}"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(
            "A warmup request fails on the exported model (TensorFlow "
            "rejected its binary input)."
        ) from None


def _input_spec(model_dir):
    """The input spec recorded in a model directory, as a dict, or None."""
    path = os.path.join(model_dir, SPEC_FILE) if model_dir else None
    if path is None or not os.path.exists(path):
        return None
    return InputSpec.load(path).to_dict()


def read_export_info(saved_model_dir):
    """The `tfcvr_export.json` of an exported version directory."""
    path = os.path.join(saved_model_dir, WARMUP_DIR, EXPORT_INFO_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{saved_model_dir} is not a tfcvr SavedModel export.")
    with open(path) as f:
        return json.load(f)


def _write_info(directory, model, module, name, version, input_spec=None):
    from tfcvr import __version__

    info = {
        "name": name,
        "version": version,
        "estimator": getattr(model, "estimator_name", type(model).__name__),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "tfcvr_version": __version__,
        "tensorflow_version": tf.__version__,
        "signatures": {
            wire.SERVING_DEFAULT: {
                "inputs": {
                    n: {"dtype": d, "rank": r}
                    for n, (d, r) in serving_input_specs(model.schema).items()
                },
            },
            wire.PREDICT_EXAMPLES: {
                "inputs": {
                    wire.EXAMPLES_INPUT: {
                        "dtype": wire.DT_STRING, "rank": 1
                    }
                },
            },
        },
        "outputs": list(module.output_names),
        "output_shape": "(batch,) float32",
        "required_features": list(module.required_features),
        "missing_values": {
            "int64": wire.INT_MISSING,
            "int64_list_padding": wire.INT_PADDING,
            "string": wire.STRING_MISSING,
            "float": "NaN",
        },
        "schema": model.schema.to_dict(),
        # How raw log columns become these inputs (`tfcvr predict`).
        INPUT_SPEC_KEY: input_spec,
    }
    directory = os.path.join(directory, WARMUP_DIR)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, EXPORT_INFO_FILE), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
