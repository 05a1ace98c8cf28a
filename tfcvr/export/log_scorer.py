import numpy as np
import tensorflow as tf

from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.export.export_saved_model import INPUT_SPEC_KEY
from tfcvr.export.export_saved_model import read_export_info
from tfcvr.export.raw_log import recorded_spec
from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import transform_inputs_from_rows
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import wire
from tfcvr.training.model_dir import load_model_dir


class LogScorer:
    """Scores raw rows (the Beam readers' rows) with a trained model.

    Two sources, one result:
    - a model directory (`from_model_dir`): `FeatureTransform` of the
      model's schema and the directory's vocabulary files, the transform the
      SavedModel carries and the one training read its data through, then
      `model.predict_on_batch`;
    - an exported SavedModel (`from_saved_model`): its `serving_default`
      signature, fed like a TF Serving request (`columns_from_rows`). Its
      `required_features` (see `ServingModule`) fail a whole batch when
      missing, so callers refuse such rows first (`lacks_required`).

    Use the class methods; the constructor takes the parts.

    Args:
        schema: `tfcvr.features.Schema` of the model's inputs.
        predict: callable. List of raw rows -> `{output: array}`.
        output_names: tuple of str. Outputs reported, serving ones first.
        required_features: tuple of str. Features a row must have.
        input_spec: dict or None. The input spec recorded with the model.
        source: str. What scores (for messages).
        model: the `CVRModel`, or None for a SavedModel.
        transform: the `FeatureTransform`, or None for a SavedModel.

    `score(rows)` returns float32 `(len(rows),)` arrays by output name.
    """

    def __init__(self, schema, predict, output_names, required_features=(),
                 input_spec=None, source="", model=None, transform=None):
        self.schema = schema
        self._predict = predict
        self.output_names = tuple(output_names)
        self.required_features = tuple(required_features)
        self.input_spec = input_spec
        self.source = source
        self.model = model
        self.transform = transform

    @classmethod
    def from_model_dir(cls, model_dir, include_auxiliary=False):
        """A scorer of the model in a `tfcvr train` directory."""
        model, vocab_dir = load_model_dir(model_dir)
        transform = FeatureTransform(model.schema, vocab_dir)
        outputs = model(model.dummy_inputs(), training=False)
        names = list(keys.SERVING_OUTPUTS)
        if include_auxiliary:
            names += sorted(k for k in outputs if k not in keys.SERVING_OUTPUTS)

        def predict(rows):
            features = transform(transform_inputs_from_rows(rows, model.schema))
            return model.predict_on_batch(features)

        return cls(
            model.schema, predict, names, input_spec=recorded_spec(model_dir),
            source=model_dir, model=model, transform=transform,
        )

    @classmethod
    def from_saved_model(cls, saved_model_dir, include_auxiliary=False):
        """A scorer of an exported version directory's `serving_default`."""
        info = read_export_info(saved_model_dir)
        schema = Schema.from_dict(info["schema"])
        signature = tf.saved_model.load(saved_model_dir).signatures[
            wire.SERVING_DEFAULT
        ]
        arguments = {
            arg: spec.name
            for arg, spec in signature.structured_input_signature[1].items()
        }
        names = list(keys.SERVING_OUTPUTS)
        if include_auxiliary:
            names += [n for n in info["outputs"] if n not in keys.SERVING_OUTPUTS]

        def predict(rows):
            columns = columns_from_rows(rows, schema)
            return signature(**{
                arg: tf.constant(columns[name]) for arg, name in arguments.items()
            })

        return cls(
            schema, predict, names,
            required_features=info.get("required_features", ()),
            input_spec=info.get(INPUT_SPEC_KEY),
            source=saved_model_dir,
        )

    def lacks_required(self, row):
        """The first required feature a raw row is missing, or None."""
        for name in self.required_features:
            if row.get(name) in (None, []):
                return name
        return None

    def features(self, rows):
        """The model inputs of raw rows (model directories only)."""
        if self.transform is None:
            raise ValueError(f"{self.source} is a SavedModel: it has no "
                             f"separate feature transform.")
        return self.transform(transform_inputs_from_rows(rows, self.schema))

    def score(self, rows):
        outputs = self._predict(rows)
        return {
            name: np.asarray(outputs[name], dtype=np.float32).reshape(-1)
            for name in self.output_names
        }
