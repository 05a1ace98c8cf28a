import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import MultiDR
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_multi_dr(normalization, imputation_normalization, floor, target,
                w=(1.0, 1.0, 1.0)):
    """Multi-DR (WWW 2020): L_CTR + E_MDR + L_imp, DR-JL imputation loss."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    e = np_bce(CONVERSION, P_CVR)
    if target == "error":
        e_hat, imp_value = IMPUTED, (IMPUTED - e) ** 2
    else:
        e_hat, imp_value = np_bce(IMPUTED, P_CVR), np_bce(CONVERSION, IMPUTED)
    weights = CLICK / p
    n_dr = len(CLICK) if normalization == "exposure" else weights.sum()
    n_imp = {"exposure": len(CLICK), "click": CLICK.sum(),
             "snips": weights.sum()}[imputation_normalization]
    return {
        keys.CTR: w[0] * np_bce(CLICK, P_CTR).mean(),
        "dr": w[1] * (e_hat.mean() + (weights * (e - e_hat)).sum() / n_dr),
        IMPUTATION_TERM: w[2] * (weights * imp_value).sum() / n_imp,
    }


class MultiDRTest(EstimatorTestCase):
    estimator = MultiDR
    name = "multi_dr"
    venue = "WWW 2020"
    fit_variants = ({"alternating": False}, {"alternating": True})

    def test_joint_by_default(self):
        self.assertFalse(self.model().alternating)

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None],
                   keys.IMPUTATION: IMPUTED[:, None]}
        cases = [
            ("exposure", "exposure", 0.01, "error", (1.0, 1.0, 1.0)),
            ("snips", "click", 0.01, "error", (0.5, 2.0, 0.3)),
            ("exposure", "snips", 1e-6, "label", (1.0, 1.0, 1.0)),
            ("snips", "exposure", 0.05, "label", (1.0, 0.5, 2.0)),
        ]
        for normalization, imp_norm, floor, target, w in cases:
            with self.subTest(normalization=normalization, imp=imp_norm,
                              target=target):
                model = self.model(
                    normalization=normalization,
                    imputation_normalization=imp_norm,
                    propensity_floor=floor, imputation_target=target,
                    ctr_weight=w[0], cvr_weight=w[1], imputation_weight=w[2],
                )
                terms = model.loss_terms(labels, outputs)
                expected = np_multi_dr(normalization, imp_norm, floor, target,
                                       w)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)

    def test_gradients_follow_the_stop_gradients(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        for stop in (True, False):
            model = self.model(stop_gradient_propensity=stop,
                               stop_gradient_imputation=stop)
            features, labels = self.batch(model.schema, batch_size=32)
            model.build()
            ctr, cvr, imputation = (h.kernel for h in model.heads)
            with tf.GradientTape(persistent=True) as tape:
                terms = model.loss_terms(labels, model(features, training=True))

            def reaches(term, kernel):
                g = tape.gradient(terms[term], kernel)
                return g is not None and np.abs(g.numpy()).sum() > 0

            self.assertTrue(reaches("dr", cvr))
            self.assertEqual(reaches("dr", ctr), not stop)
            self.assertEqual(reaches("dr", imputation), not stop)
            self.assertTrue(reaches(IMPUTATION_TERM, imputation))
            self.assertEqual(reaches(IMPUTATION_TERM, cvr), not stop)
            self.assertEqual(reaches(IMPUTATION_TERM, ctr), not stop)

    def test_output_contract_and_serialization(self):
        model = self.model(normalization="snips", imputation_target="label",
                           alternating=True)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertEqual(set(outputs),
                         set(keys.SERVING_OUTPUTS) | {keys.IMPUTATION})
        revived = self.run_serialization_test(model)
        self.assertTrue(revived.alternating)
        self.assertEqual(revived.dr_loss.imputation_target, "label")

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "imputation_weight=-2"):
            self.model(imputation_weight=-2)
        with self.assertRaisesRegex(ValueError, "normalization='click'"):
            self.model(normalization="click")
        with self.assertRaisesRegex(ValueError, "imputation_target='x'"):
            self.model(imputation_target="x")
