import keras
import numpy as np
import pytest

from tfcvr.losses import DoublyRobustLoss
from tfcvr.testing import TestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_dr(o, r, ctr, cvr, imputation, normalization, floor, target):
    """(1/B) sum ê + (1/N) sum o (e - ê) / p̂."""
    p = np.maximum(ctr.astype("float64"), floor)
    e = np_bce(r, cvr)
    e_hat = imputation if target == "error" else np_bce(imputation, cvr)
    w = o / p
    n = len(o) if normalization == "exposure" else w.sum()
    return float(e_hat.mean() + (w * (e - e_hat)).sum() / n)


def inputs(click=CLICK, imputation=IMPUTED):
    """The keyword arguments of a call, outputs shaped `(batch, 1)`."""
    return dict(observed=click, target=CONVERSION, prediction=P_CVR[:, None],
                propensity=P_CTR[:, None], imputation=imputation[:, None])


class DoublyRobustLossTest(TestCase):
    def test_matches_numpy(self):
        for normalization in ("exposure", "snips"):
            for target in ("error", "label"):
                with self.subTest(normalization=normalization, target=target):
                    loss = DoublyRobustLoss(
                        normalization=normalization, imputation_target=target,
                        propensity_floor=0.01,
                    )
                    self.assertAllClose(
                        loss(**inputs()),
                        np_dr(CLICK, CONVERSION, P_CTR, P_CVR, IMPUTED,
                              normalization, 0.01, target),
                        atol=1e-5, rtol=1e-5,
                    )

    def test_exact_imputation_gives_the_ideal_loss(self):
        # With ê = e on every row the correction vanishes whatever p̂ is.
        error = np_bce(CONVERSION, P_CVR).astype("float32")
        self.assertAllClose(DoublyRobustLoss()(**inputs(imputation=error)),
                            error.mean(), atol=1e-6)

    def test_no_click_batch_is_the_imputed_mean(self):
        for normalization in ("exposure", "snips"):
            loss = DoublyRobustLoss(normalization=normalization)
            self.assertAllClose(loss(**inputs(click=np.zeros(8, "float32"))),
                                IMPUTED.mean(), atol=1e-6)

    def test_gradients(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        ctr = tf.Variable(P_CTR[:, None])
        cvr = tf.Variable(P_CVR[:, None])
        imputation = tf.Variable(IMPUTED[:, None])
        rows = dict(observed=CLICK, target=CONVERSION, prediction=cvr,
                    propensity=ctr, imputation=imputation)

        def grads(**kwargs):
            with tf.GradientTape() as tape:
                value = DoublyRobustLoss(**kwargs)(**rows)
            return [
                None if g is None else float(np.abs(g.numpy()).sum())
                for g in tape.gradient(value, [ctr, cvr, imputation])
            ]

        g_ctr, g_cvr, g_imp = grads()
        self.assertIsNone(g_ctr)
        self.assertIsNone(g_imp)
        self.assertGreater(g_cvr, 0)
        # Only the clicked rows move r̂ in the error form ...
        with tf.GradientTape() as tape:
            value = DoublyRobustLoss()(**rows)
        g = tape.gradient(value, cvr).numpy()[:, 0]
        self.assertTrue(np.all(g[CLICK == 0] == 0))
        # ... the pseudo label reaches the unclicked ones too.
        with tf.GradientTape() as tape:
            value = DoublyRobustLoss(imputation_target="label")(**rows)
        g = tape.gradient(value, cvr).numpy()[:, 0]
        self.assertTrue(np.all(g[CLICK == 0] != 0))
        g_ctr, _, g_imp = grads(stop_gradient_propensity=False,
                                stop_gradient_imputation=False)
        self.assertGreater(g_ctr, 0)
        self.assertGreater(g_imp, 0)

    def test_serialization(self):
        loss = DoublyRobustLoss(normalization="snips",
                                imputation_target="label",
                                stop_gradient_imputation=False)
        config = loss.get_config()
        self.assertEqual(DoublyRobustLoss.from_config(config).get_config(),
                         config)
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(loss)
        )
        self.assertEqual(restored.get_config(), config)

    def test_invalid_arguments_and_inputs(self):
        with self.assertRaisesRegex(ValueError, "normalization='click'"):
            DoublyRobustLoss(normalization="click")
        with self.assertRaisesRegex(ValueError, "imputation_target='rating'"):
            DoublyRobustLoss(imputation_target="rating")
        rows = inputs()
        del rows["imputation"]
        with self.assertRaisesRegex(ValueError, "imputation=None"):
            DoublyRobustLoss()(**rows)

    @pytest.mark.jax
    def test_value_on_current_backend(self):
        self.assertAllClose(
            DoublyRobustLoss(propensity_floor=0.01)(**inputs()),
            np_dr(CLICK, CONVERSION, P_CTR, P_CVR, IMPUTED, "exposure", 0.01,
                  "error"),
            atol=1e-5, rtol=1e-5,
        )
