import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.losses import CounterfactualLoss
from tfcvr.testing import TestCase


class ConstantValue(CounterfactualLoss):
    """v_i = 1 on every row, d_i = 2: the estimate of (1/|D|) sum 1 plus 2."""

    def row_terms(self, y_true, y_pred):
        ones = keras.ops.ones_like(keras.ops.reshape(y_true[keys.CLICK], (-1,)))
        return 2.0 * ones, ones


class CounterfactualLossTest(TestCase):
    def test_is_abstract(self):
        with self.assertRaises(TypeError):
            CounterfactualLoss()

    def test_one_hook_gives_a_new_estimator(self):
        click = np.array([1, 0, 1, 0], "float32")
        ctr = np.array([0.5, 0.5, 0.25, 0.5], "float32")
        y_true = {keys.CLICK: click, keys.CONVERSION: np.zeros(4, "float32")}
        y_pred = {keys.CTR: ctr, keys.CVR: np.full(4, 0.5, "float32")}
        expected = {
            "exposure": 2.0 + (2.0 + 4.0) / 4,
            "click": 2.0 + (2.0 + 4.0) / 2,
            "snips": 3.0,
        }
        for normalization, value in expected.items():
            with self.subTest(normalization=normalization):
                loss = ConstantValue(normalization=normalization)
                self.assertAllClose(loss(y_true, y_pred), value, atol=1e-6)

    def test_floor_clips_the_propensity(self):
        y_true = {keys.CLICK: np.ones(2, "float32"),
                  keys.CONVERSION: np.zeros(2, "float32")}
        y_pred = {keys.CTR: np.array([0.001, 1.0], "float32"),
                  keys.CVR: np.zeros(2, "float32")}
        loss = ConstantValue(propensity_floor=0.1)
        self.assertAllClose(loss(y_true, y_pred), 2.0 + (10.0 + 1.0) / 2,
                            atol=1e-5)

    def test_config_lists_exactly_the_constructor_arguments(self):
        loss = ConstantValue(normalization="click", propensity_floor=0.2,
                             weight_cap=3.0, stop_gradient_propensity=False,
                             epsilon=1e-6, name="c")
        config = loss.get_config()
        self.assertEqual(
            set(config),
            {"name", "dtype", "normalization", "propensity_floor", "weight_cap",
             "stop_gradient_propensity", "epsilon"},
        )
        self.assertEqual(ConstantValue.from_config(config).get_config(), config)
