import json
import os
import tempfile
import unittest

import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.testing.synthetic import synthetic_batch
from tfcvr.testing.synthetic import tiny_schema


class TestCase(unittest.TestCase):
    """Shared checks every layer, loss and estimator gets for free."""

    def setUp(self):
        super().setUp()
        # Without the full `gc.collect()` clear_session runs by default:
        # with TensorFlow loaded it walks half a million objects, about
        # 0.5 s a test, most of a small test's time (Keras' own TestCase
        # skips it too). Python's automatic collection still frees cycles.
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(1337)

    # === Assertions ===

    def assertAllClose(self, a, b, atol=1e-6, rtol=1e-6, msg=None):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a),
            keras.ops.convert_to_numpy(b),
            atol=atol,
            rtol=rtol,
            err_msg=msg or "",
        )

    # === Fixtures ===

    def tiny_schema(self, **kwargs):
        return tiny_schema(**kwargs)

    def batch(self, schema, batch_size=32, seed=0, **kwargs):
        features, labels = synthetic_batch(schema, batch_size, seed, **kwargs)
        return features, labels

    # === Reusable checks ===

    def run_serialization_test(self, instance):
        """get_config -> from_config -> get_config is the identity, and so is
        a round trip through keras.saving's (de)serialization."""
        config = instance.get_config()
        revived = type(instance).from_config(config)
        self.assertEqual(
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(revived.get_config(), sort_keys=True, default=str),
        )
        serialized = keras.saving.serialize_keras_object(instance)
        restored = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(restored, type(instance))
        self.assertEqual(
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(restored.get_config(), sort_keys=True, default=str),
        )
        return revived

    def run_model_saving_test(self, model, features):
        """`.keras` save and load give the same class and predictions."""
        # Eager calls: `predict` would trace a predict function per model,
        # and the graph-mode path is what `run_fit_test` already exercises.
        expected = _numpy(model(features, training=False))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            restored = keras.models.load_model(path)
        self.assertIsInstance(restored, type(model))
        actual = _numpy(restored(features, training=False))
        self.assertEqual(set(expected), set(actual))
        for key in expected:
            self.assertAllClose(expected[key], actual[key], atol=1e-6)
        return restored

    def run_output_contract_test(self, model, features):
        """`call` returns (batch, 1) probabilities with the serving keys and
        ctcvr = ctr * cvr unless the model says otherwise."""
        outputs = model(features, training=False)
        batch = len(next(iter(features.values())))
        for key in keys.SERVING_OUTPUTS:
            self.assertIn(key, outputs)
        for key, value in outputs.items():
            value = keras.ops.convert_to_numpy(value)
            self.assertEqual(value.shape, (batch, 1), key)
            self.assertTrue(np.all((value >= 0) & (value <= 1)), key)
        return outputs

    def run_fit_test(self, model, features, labels, steps=3,
                     run_eagerly=False):
        """A few `fit` steps run and give a finite, changing loss (traced
        unless `run_eagerly`)."""
        label_dict = {k: labels[k] for k in model.schema.labels}
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      run_eagerly=run_eagerly)
        history = model.fit(
            features, label_dict, batch_size=len(labels[keys.CLICK]) // steps,
            epochs=2, verbose=0, shuffle=False,
        )
        losses = history.history["loss"]
        self.assertTrue(np.all(np.isfinite(losses)), losses)
        return history


def _numpy(outputs):
    """A model's outputs as NumPy, keyed like `predict`'s dict."""
    if not isinstance(outputs, dict):
        outputs = {"output": outputs}
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
