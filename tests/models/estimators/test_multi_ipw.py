import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import MultiIPW
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_multi_ipw(normalization, floor, w_ctr=1.0, w_cvr=1.0):
    """Multi-IPW (WWW 2020): L_CTR + (1/N) sum o e(r, r̂) / ô."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    weights = CLICK / p
    n = {"exposure": len(CLICK), "click": CLICK.sum(),
         "snips": weights.sum()}[normalization]
    return (w_ctr * np_bce(CLICK, P_CTR).mean(),
            w_cvr * (weights * np_bce(CONVERSION, P_CVR)).sum() / n)


class MultiIPWTest(EstimatorTestCase):
    estimator = MultiIPW
    name = "multi_ipw"
    venue = "WWW 2020"

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None]}
        for normalization in ("exposure", "click", "snips"):
            for floor, w_ctr, w_cvr in ((0.01, 1.0, 1.0), (1e-6, 0.5, 2.0)):
                with self.subTest(normalization=normalization, floor=floor):
                    model = self.model(normalization=normalization,
                                       propensity_floor=floor,
                                       ctr_weight=w_ctr, cvr_weight=w_cvr)
                    terms = model.loss_terms(labels, outputs)
                    ref_ctr, ref_ipw = np_multi_ipw(normalization, floor,
                                                    w_ctr, w_cvr)
                    self.assertEqual(set(terms), {keys.CTR, "ipw"})
                    self.assertAllClose(terms[keys.CTR], ref_ctr, atol=1e-5,
                                        rtol=1e-5)
                    self.assertAllClose(terms["ipw"], ref_ipw, atol=1e-5,
                                        rtol=1e-5)
                    self.assertAllClose(
                        model.compute_loss(y=labels, y_pred=outputs),
                        ref_ctr + ref_ipw, atol=1e-5, rtol=1e-5,
                    )

    def test_ipw_term_gives_the_propensity_no_gradient(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        for stop in (True, False):
            model = self.model(stop_gradient_propensity=stop)
            features, labels = self.batch(model.schema, batch_size=32)
            model.build()
            ctr_kernel = model.heads[0].kernel
            cvr_kernel = model.heads[1].kernel
            with tf.GradientTape(persistent=True) as tape:
                terms = model.loss_terms(labels, model(features, training=True))
            g_ctr = tape.gradient(terms["ipw"], ctr_kernel)
            self.assertEqual(g_ctr is None, stop)
            self.assertGreater(
                np.abs(tape.gradient(terms["ipw"], cvr_kernel).numpy()).sum(), 0
            )
            self.assertIsNone(tape.gradient(terms[keys.CTR], cvr_kernel))

    def test_output_contract_and_serialization(self):
        model = self.model(normalization="snips", propensity_floor=0.05)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertEqual(set(outputs), set(keys.SERVING_OUTPUTS))
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.normalization, "snips")
        self.assertEqual(revived.ipw_loss.propensity_floor, 0.05)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: cvr_weight=-1"):
            self.model(cvr_weight=-1)
        with self.assertRaisesRegex(ValueError, "normalization='all'"):
            self.model(normalization="all")
        with self.assertRaisesRegex(ValueError, "propensity_floor=1.5"):
            self.model(propensity_floor=1.5)
