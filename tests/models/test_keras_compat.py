"""`.keras` files saved by older code load with today's and predict the
same: the fixtures were written by commit 19500b6 (main before the layout
redesign) with `tests/fixtures/keras_compat/write_fixtures.py`."""

import os

import keras
import numpy as np
import pytest

import tfcvr.models  # noqa: F401  (registers every estimator for loading)
from tfcvr.testing import TestCase

FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "fixtures", "keras_compat",
)
FEATURE_PREFIX = "feature/"


def saved_cases():
    return sorted(
        name[: -len(".keras")] for name in os.listdir(FIXTURES)
        if name.endswith(".keras")
    )


class KerasCompatTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with np.load(os.path.join(FIXTURES, "fixtures.npz")) as arrays:
            cls.arrays = dict(arrays)
        cls.features = {
            key[len(FEATURE_PREFIX):]: value
            for key, value in cls.arrays.items()
            if key.startswith(FEATURE_PREFIX)
        }

    def expected_outputs(self, case):
        prefix = f"{case}/"
        return {
            key[len(prefix):]: value for key, value in self.arrays.items()
            if key.startswith(prefix)
        }

    def test_fixtures_cover_the_zoo(self):
        cases = saved_cases()
        self.assertGreaterEqual(len(cases), 7)
        for case in cases:
            self.assertTrue(self.expected_outputs(case), case)

    def check_old_files_load_and_predict_the_same(self, eager):
        for case in saved_cases():
            with self.subTest(case=case):
                model = keras.models.load_model(
                    os.path.join(FIXTURES, f"{case}.keras")
                )
                if eager:
                    actual = model(self.features, training=False)
                else:
                    actual = model.predict(
                        self.features, batch_size=len(self.features["user"]),
                        verbose=0,
                    )
                expected = self.expected_outputs(case)
                self.assertEqual(set(actual), set(expected))
                for key, value in expected.items():
                    self.assertAllClose(actual[key], value, atol=1e-6,
                                        rtol=0, msg=f"{case}/{key}")

    # Loading is what these check, each the faster way on its backend: on
    # TensorFlow `predict` traces a function per file (an eager call is 3x
    # faster), on JAX an eager call runs op by op (`predict` jits once).
    def test_old_files_load_and_predict_the_same(self):
        self.check_old_files_load_and_predict_the_same(eager=True)

    @pytest.mark.jax
    def test_old_files_load_and_predict_the_same_on_current_backend(self):
        # `make test` runs the marked tests again under KERAS_BACKEND=jax.
        self.check_old_files_load_and_predict_the_same(eager=False)
