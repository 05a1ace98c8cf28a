import re

import tensorflow as tf

from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.export.raw_rows import parse_raw_examples
from tfcvr.export.raw_rows import serving_input_specs
from tfcvr.features import keys
from tfcvr.features import wire

# TF graph node names; a signature input is a placeholder named after it.
_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")

_TF_DTYPES = {
    wire.DT_INT64: tf.int64,
    wire.DT_STRING: tf.string,
    wire.DT_FLOAT: tf.float32,
}


class ServingModule(tf.Module):
    """A `CVRModel` plus its `FeatureTransform`, ready for a SavedModel.

    Tracks the model's variables and the transform's vocabulary tables (the
    vocabulary files become SavedModel assets), never the Keras model
    object, so `tf.saved_model.load` needs neither Keras nor tfcvr.

    Signatures (see `signatures()`):
    - `serving_default`: one input per schema feature, raw values as in the
      logs: categorical `(batch,)` int64 or string, multi-valued
      `(batch, width)` padded with `-1` / `""` (any width; values past
      `max_len` are dropped as in training), `<name>__weight`
      `(batch, width)` float32 aligned with the ids (NaN -> weight 1.0),
      numeric `(batch,)` float32 raw (NaN -> the feature's default, then
      the training normalisation).
    - `predict_examples`: `examples`, `(batch,)` serialized
      `tf.train.Example`s in the TFRecord layout of the dataset directory.
    Both return float32 `(batch,)` probabilities `ctr`, `cvr`, `ctcvr`
    (plus every auxiliary output of the model when `include_auxiliary`).
    Unknown ids map to the OOV buckets; a missing value takes the training
    default, except for `required_features`, whose missing value fails the
    request with INVALID_ARGUMENT (HTTP 400 in TF Serving). An infinite
    numeric value or weight fails it too, since preprocessing never lets
    one through (`tfcvr.features.wire.numeric_value`).

    Args:
        model: built `tfcvr.models.CVRModel`.
        transform: `FeatureTransform` or None. Built from `vocab_dir` when
            None.
        vocab_dir: str or None. Directory the schema's `vocab_file`s are
            relative to (the model directory).
        include_auxiliary: bool. Also expose auxiliary heads. Defaults to
            False.
        required_features: list of str, or None. Features whose missing
            value is an error. None means the schema's item id (a ranking
            request always names its item).
    """

    def __init__(
        self,
        model,
        transform=None,
        vocab_dir=None,
        include_auxiliary=False,
        required_features=None,
        name="tfcvr_serving",
    ):
        super().__init__(name=name)
        schema = getattr(model, "schema", None)
        if schema is None:
            raise ValueError(
                f"ServingModule needs a tfcvr CVRModel with a schema. "
                f"Received: model={type(model).__name__}"
            )
        if not model.built:
            model.build()
        bad = [n for n in serving_input_specs(schema) if not _NODE_NAME.match(n)]
        if bad:
            raise ValueError(
                f"Feature names must be valid TensorFlow node names "
                f"({_NODE_NAME.pattern}) to be signature inputs. Received: "
                f"{bad}"
            )
        required_features = resolve_required_features(
            schema, required_features
        )
        self.schema = schema
        self.include_auxiliary = include_auxiliary
        self.required_features = tuple(required_features)
        self.transform = transform or FeatureTransform(schema, vocab_dir)
        self.model_variables = list(model.variables)
        self._keep_untracked(model)
        self.output_names = self._output_names(model)
        self._input_specs = serving_input_specs(schema)
        self._float_inputs = tuple(
            name for name, (dtype, _) in self._input_specs.items()
            if dtype == wire.DT_FLOAT
        )

        self._signatures = None

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _keep_untracked(self, model):
        # The Keras object graph is not saved: only its variables (above),
        # which the traced functions capture.
        self._model = model

    def _output_names(self, model):
        outputs = model(model.dummy_inputs(), training=False)
        missing = [k for k in keys.SERVING_OUTPUTS if k not in outputs]
        if missing:
            raise ValueError(
                f"The model does not return the serving outputs {missing}."
            )
        if not self.include_auxiliary:
            return tuple(keys.SERVING_OUTPUTS)
        extra = sorted(k for k in outputs if k not in keys.SERVING_OUTPUTS)
        return tuple(keys.SERVING_OUTPUTS) + tuple(extra)

    # === Signatures ===

    def input_signature(self):
        """One named `tf.TensorSpec` per `serving_default` input, in order."""
        return [
            tf.TensorSpec(
                [None] * rank, _TF_DTYPES[dtype], name=name
            )
            for name, (dtype, rank) in self._input_specs.items()
        ]

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def signatures(self):
        """`{signature name: concrete function}` for `tf.saved_model.save`.

        Traced once and cached. The functions are saved only as signatures
        (not as attributes of the module), which halves export time.
        """
        if self._signatures is None:
            serve = tf.function(self._serve, autograph=False)
            serve_examples = tf.function(self._serve_examples, autograph=False)
            self._signatures = {
                wire.SERVING_DEFAULT: serve.get_concrete_function(
                    *self.input_signature()
                ),
                wire.PREDICT_EXAMPLES: (
                    serve_examples.get_concrete_function(
                        tf.TensorSpec(
                            [None], tf.string, name=wire.EXAMPLES_INPUT
                        )
                    )
                ),
            }
        return self._signatures

    # === Graph ===

    def _serve(self, *tensors):
        # Positional inputs named by their TensorSpec: feature names need
        # not be Python identifiers.
        raw = dict(zip(self._input_specs, tensors))
        for f in self.schema.features:
            if not f.is_multi_valued:
                continue
            ids = raw[f.name]
            mask = (
                tf.not_equal(ids, "")
                if ids.dtype == tf.string
                else tf.greater_equal(ids, 0)
            )
            raw[f.name] = tf.ragged.boolean_mask(ids, mask)
            if f.weighted:
                name = f.name + keys.WEIGHT_SUFFIX
                raw[name] = tf.ragged.boolean_mask(
                    _align_weights(raw[name], tf.shape(ids)[1]), mask
                )
        return self._predict(raw)

    def _serve_examples(self, examples):
        raw = parse_raw_examples(examples, self.schema)
        for f in self.schema.features:
            if f.is_multi_valued and f.weighted:
                ids = raw[f.name]
                name = f.name + keys.WEIGHT_SUFFIX
                width = tf.cast(ids.bounding_shape()[1], tf.int32)
                weights = _align_weights(
                    raw[name].to_tensor(default_value=float("nan")), width
                )
                raw[name] = tf.ragged.boolean_mask(
                    weights, tf.sequence_mask(ids.row_lengths(), width)
                )
        return self._predict(raw)

    def _predict(self, raw):
        checks = [
            self._require(name, raw[name]) for name in self.required_features
        ]
        checks += [
            _finite(name, raw[name]) for name in self._float_inputs
        ]
        with tf.control_dependencies(checks):
            features = self.transform(raw)
        outputs = self._model(features, training=False)
        return {
            name: tf.reshape(tf.cast(outputs[name], tf.float32), [-1])
            for name in self.output_names
        }

    def _require(self, name, value):
        if isinstance(value, tf.RaggedTensor):
            present = tf.reduce_all(value.row_lengths() > 0)
        elif value.dtype == tf.string:
            present = tf.reduce_all(tf.not_equal(value, ""))
        elif value.dtype.is_floating:
            present = tf.reduce_all(tf.logical_not(tf.math.is_nan(value)))
        else:
            present = tf.reduce_all(tf.not_equal(value, wire.INT_MISSING))
        return tf.debugging.Assert(
            present,
            [f"Required feature `{name}` is missing in at least one row."],
            name=f"require_{_safe(name)}",
        )


def _finite(name, value):
    """Fails the request on an infinite value: TF Serving does not run the
    REST codec, and infinity would change the prediction where the Beam job
    drops the row (`tfcvr.features.wire.numeric_value`). NaN is missing."""
    if isinstance(value, tf.RaggedTensor):
        value = value.flat_values
    return tf.debugging.Assert(
        tf.reduce_all(tf.logical_not(tf.math.is_inf(value))),
        [f"Input `{name}` needs a finite float32 number; got infinity."],
        name=f"finite_{_safe(name)}",
    )


def resolve_required_features(schema, required_features=None):
    """The required features: the given ones, or the schema's item id."""
    if required_features is None:
        required_features = [schema.item_id] if schema.item_id else []
    unknown = [n for n in required_features if n not in schema.feature_names]
    if unknown:
        raise ValueError(
            f"required_features names no schema feature. Received: "
            f"{unknown}; features: {list(schema.feature_names)}"
        )
    return tuple(required_features)


def _align_weights(weights, width):
    """Weights cut or NaN-padded to the ids' width; NaN -> 1.0."""
    weights = weights[:, :width]
    pad = width - tf.shape(weights)[1]
    weights = tf.pad(
        weights, [[0, 0], [0, pad]], constant_values=float("nan")
    )
    return tf.where(tf.math.is_nan(weights), tf.ones_like(weights), weights)


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)
