import keras
import numpy as np
import pytest

from tfcvr.losses import ImputationLoss
from tfcvr.testing import TestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_imputation(o, r, ctr, cvr, imputation, normalization, floor, target):
    """(1/N) sum o l / p̂, l = (ê - e)^2 or e(r, r̃)."""
    p = np.maximum(ctr.astype("float64"), floor)
    if target == "error":
        value = (imputation - np_bce(r, cvr)) ** 2
    else:
        value = np_bce(r, imputation)
    w = o / p
    n = {"exposure": len(o), "click": o.sum(), "snips": w.sum()}[normalization]
    return float((w * value).sum() / n)


def inputs():
    """The keyword arguments of a call, outputs shaped `(batch, 1)`."""
    return dict(observed=CLICK, target=CONVERSION, prediction=P_CVR[:, None],
                propensity=P_CTR[:, None], imputation=IMPUTED[:, None])


class ImputationLossTest(TestCase):
    def test_matches_numpy(self):
        for normalization in ("exposure", "click", "snips"):
            for target in ("error", "label"):
                with self.subTest(normalization=normalization, target=target):
                    loss = ImputationLoss(
                        normalization=normalization, imputation_target=target,
                        propensity_floor=0.01,
                    )
                    self.assertAllClose(
                        loss(**inputs()),
                        np_imputation(CLICK, CONVERSION, P_CTR, P_CVR, IMPUTED,
                                      normalization, 0.01, target),
                        atol=1e-5, rtol=1e-5,
                    )

    def test_gradients(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        ctr = tf.Variable(P_CTR[:, None])
        cvr = tf.Variable(P_CVR[:, None])
        imputation = tf.Variable(IMPUTED[:, None])
        for stop in (True, False):
            with tf.GradientTape() as tape:
                value = ImputationLoss(stop_gradient_prediction=stop)(
                    observed=CLICK, target=CONVERSION, prediction=cvr,
                    propensity=ctr, imputation=imputation,
                )
            g_ctr, g_cvr, g_imp = tape.gradient(value, [ctr, cvr, imputation])
            self.assertIsNone(g_ctr)
            self.assertGreater(np.abs(g_imp.numpy()).sum(), 0)
            # Only clicked rows train the imputation model.
            self.assertTrue(np.all(g_imp.numpy()[CLICK == 0] == 0))
            self.assertEqual(g_cvr is None, stop)

    def test_serialization(self):
        loss = ImputationLoss(normalization="click", imputation_target="label",
                              stop_gradient_prediction=False)
        config = loss.get_config()
        self.assertEqual(ImputationLoss.from_config(config).get_config(),
                         config)
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(loss)
        )
        self.assertEqual(restored.get_config(), config)

    def test_invalid_target(self):
        with self.assertRaisesRegex(ValueError, "imputation_target='x'"):
            ImputationLoss(imputation_target="x")

    @pytest.mark.jax
    def test_value_on_current_backend(self):
        self.assertAllClose(
            ImputationLoss(normalization="snips")(**inputs()),
            np_imputation(CLICK, CONVERSION, P_CTR, P_CVR, IMPUTED, "snips",
                          1e-6, "error"),
            atol=1e-5, rtol=1e-5,
        )
