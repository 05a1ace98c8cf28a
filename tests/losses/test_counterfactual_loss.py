import keras
import numpy as np

from tfcvr.losses import CounterfactualLoss
from tfcvr.testing import TestCase


class ConstantValue(CounterfactualLoss):
    """v_i = 1 on every row, d_i = 2: the estimate of (1/|D|) sum 1 plus 2."""

    def row_terms(self, target, prediction, imputation):
        ones = keras.ops.ones_like(keras.ops.reshape(target, (-1,)))
        return 2.0 * ones, ones


class CounterfactualLossTest(TestCase):
    def test_is_abstract(self):
        with self.assertRaises(TypeError):
            CounterfactualLoss()

    def test_one_hook_gives_a_new_estimator(self):
        click = np.array([1, 0, 1, 0], "float32")
        ctr = np.array([0.5, 0.5, 0.25, 0.5], "float32")
        rows = dict(observed=click, target=np.zeros(4, "float32"),
                    prediction=np.full(4, 0.5, "float32"), propensity=ctr)
        expected = {
            "exposure": 2.0 + (2.0 + 4.0) / 4,
            "click": 2.0 + (2.0 + 4.0) / 2,
            "snips": 3.0,
        }
        for normalization, value in expected.items():
            with self.subTest(normalization=normalization):
                loss = ConstantValue(normalization=normalization)
                self.assertAllClose(loss(**rows), value, atol=1e-6)

    def test_floor_clips_the_propensity(self):
        loss = ConstantValue(propensity_floor=0.1)
        value = loss(observed=np.ones(2, "float32"),
                     target=np.zeros(2, "float32"),
                     prediction=np.zeros(2, "float32"),
                     propensity=np.array([0.001, 1.0], "float32"))
        self.assertAllClose(value, 2.0 + (10.0 + 1.0) / 2, atol=1e-5)

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
