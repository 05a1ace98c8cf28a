import keras
import numpy as np
import pytest

from tfcvr.losses import IPWLoss
from tfcvr.testing import TestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_ipw(o, r, ctr, cvr, normalization, floor, cap=None):
    """(1/N) sum o e(r, r̂) / p̂ with p̂ = max(ctr, floor)."""
    p = np.maximum(ctr.astype("float64"), floor)
    w = o / p
    n = {"exposure": len(o), "click": max(o.sum(), 1.0),
         "snips": max(w.sum(), 1e-12)}[normalization]
    w = w / n
    if cap is not None:
        w = np.minimum(w, cap)
    return float((w * np_bce(r, cvr)).sum())


def inputs(ctr=P_CTR, cvr=P_CVR, click=CLICK):
    """The keyword arguments of a call, predictions shaped `(batch, 1)`."""
    return dict(observed=click, target=CONVERSION, prediction=cvr[:, None],
                propensity=ctr[:, None])


class IPWLossTest(TestCase):
    def test_matches_numpy_for_every_normalization(self):
        for normalization in ("exposure", "click", "snips"):
            for floor in (1e-6, 0.05):
                with self.subTest(normalization=normalization, floor=floor):
                    loss = IPWLoss(normalization=normalization,
                                   propensity_floor=floor)
                    self.assertAllClose(
                        loss(**inputs()),
                        np_ipw(CLICK, CONVERSION, P_CTR, P_CVR,
                               normalization, floor),
                        atol=1e-5, rtol=1e-5,
                    )

    def test_weight_cap_clips_normalised_weights(self):
        loss = IPWLoss(normalization="click", weight_cap=15.0)
        expected = np_ipw(CLICK, CONVERSION, P_CTR, P_CVR, "click", 1e-6, 15.0)
        uncapped = np_ipw(CLICK, CONVERSION, P_CTR, P_CVR, "click", 1e-6)
        self.assertLess(expected, uncapped)  # the 0.004 row is capped
        self.assertAllClose(loss(**inputs()), expected, atol=1e-5,
                            rtol=1e-5)

    def test_per_row_contributions_sum_to_the_loss(self):
        loss = IPWLoss()
        rows = keras.ops.convert_to_numpy(loss.call(**inputs()))
        self.assertEqual(rows.shape, (8,))
        self.assertTrue(np.all(rows[CLICK == 0] == 0))
        self.assertAllClose(rows.sum(), loss(**inputs()), atol=1e-6)

    def test_unclicked_space_with_the_complement_propensity(self):
        # DCMT's counterfactual term: observed 1 - o, propensity 1 - ô.
        value = IPWLoss()(observed=1 - CLICK, target=1 - CONVERSION,
                          prediction=P_CVR, propensity=1 - P_CTR)
        self.assertAllClose(
            value, np_ipw(1 - CLICK, 1 - CONVERSION, 1 - P_CTR, P_CVR,
                          "exposure", 1e-6),
            atol=1e-5, rtol=1e-5,
        )

    def test_batch_without_clicks_is_zero(self):
        for normalization in ("exposure", "click", "snips"):
            value = IPWLoss(normalization=normalization)(
                **inputs(click=np.zeros(8, "float32"))
            )
            self.assertEqual(float(keras.ops.convert_to_numpy(value)), 0.0)

    def test_propensity_gets_no_gradient_unless_asked(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        ctr = tf.Variable(P_CTR[:, None])
        cvr = tf.Variable(P_CVR[:, None])
        for stop, expect_ctr_grad in ((True, False), (False, True)):
            for normalization in ("exposure", "snips"):
                loss = IPWLoss(stop_gradient_propensity=stop,
                               normalization=normalization)
                with tf.GradientTape() as tape:
                    value = loss(observed=CLICK, target=CONVERSION,
                                 prediction=cvr, propensity=ctr)
                g_ctr, g_cvr = tape.gradient(value, [ctr, cvr])
                self.assertGreater(np.abs(g_cvr.numpy()).sum(), 0)
                has_ctr_grad = (
                    g_ctr is not None and np.abs(g_ctr.numpy()).sum() > 0
                )
                self.assertEqual(has_ctr_grad, expect_ctr_grad)

    def test_serialization(self):
        loss = IPWLoss(normalization="snips", propensity_floor=0.02,
                       weight_cap=10.0, stop_gradient_propensity=False,
                       name="my_ipw")
        config = loss.get_config()
        revived = IPWLoss.from_config(config)
        self.assertEqual(revived.get_config(), config)
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(loss)
        )
        self.assertIsInstance(restored, IPWLoss)
        self.assertEqual(restored.get_config(), config)

    def test_invalid_arguments_and_inputs(self):
        with self.assertRaisesRegex(ValueError, "normalization='batch'"):
            IPWLoss(normalization="batch")
        with self.assertRaisesRegex(ValueError, "propensity_floor=0"):
            IPWLoss(propensity_floor=0)
        with self.assertRaisesRegex(ValueError, "weight_cap=-1"):
            IPWLoss(weight_cap=-1)
        with self.assertRaisesRegex(ValueError, "propensity=7"):
            IPWLoss()(**inputs(ctr=P_CTR[:7]))
        with self.assertRaisesRegex(ValueError, "reads no imputation"):
            IPWLoss()(**inputs(), imputation=P_CVR)
        with self.assertRaisesRegex(TypeError, "propensity"):
            IPWLoss()(observed=CLICK, target=CONVERSION, prediction=P_CVR)

    @pytest.mark.jax
    def test_value_on_current_backend(self):
        self.assertAllClose(
            IPWLoss(normalization="snips")(**inputs()),
            np_ipw(CLICK, CONVERSION, P_CTR, P_CVR, "snips", 1e-6),
            atol=1e-5, rtol=1e-5,
        )
