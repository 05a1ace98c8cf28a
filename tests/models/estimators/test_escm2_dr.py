import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import ESCM2DR
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_escm2_dr(normalization, floor, lambda_c, lambda_g, w_imp):
    """ESCM2-DR official `counterfact_dr`: λ_c [mean(ê + o δ/ô') +
    mean(o δ^2/ô')] with δ = e - ê, ô' = max(ô, floor), plus L_CTR and
    λ_g L_CTCVR."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    delta = np_bce(CONVERSION, P_CVR) - IMPUTED
    weights = CLICK / p
    n = len(CLICK) if normalization == "exposure" else weights.sum()
    return {
        keys.CTR: np_bce(CLICK, P_CTR).mean(),
        "dr": lambda_c * (IMPUTED.mean() + (weights * delta).sum() / n),
        IMPUTATION_TERM: lambda_c * w_imp * (weights * delta**2).mean(),
        keys.CTCVR: lambda_g * np_bce(CLICK * CONVERSION, P_CTR * P_CVR).mean(),
    }


class ESCM2DRTest(EstimatorTestCase):
    estimator = ESCM2DR
    name = "escm2_dr"
    venue = "SIGIR 2022"
    fit_variants = ({"alternating": False}, {"alternating": True})

    def test_joint_by_default(self):
        self.assertFalse(self.model().alternating)

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None],
                   keys.IMPUTATION: IMPUTED[:, None]}
        cases = [("exposure", 1e-6, 0.5, 0.5, 1.0),
                 ("snips", 0.01, 0.1, 1.0, 2.0)]
        for normalization, floor, lambda_c, lambda_g, w_imp in cases:
            with self.subTest(normalization=normalization):
                model = self.model(normalization=normalization,
                                   propensity_floor=floor,
                                   counterfactual_weight=lambda_c,
                                   global_weight=lambda_g,
                                   imputation_weight=w_imp)
                terms = model.loss_terms(labels, outputs)
                expected = np_escm2_dr(normalization, floor, lambda_c,
                                       lambda_g, w_imp)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)

    def test_official_gradients_leak_everywhere(self):
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

            self.assertEqual(reaches("dr", ctr), not stop)
            self.assertEqual(reaches("dr", imputation), not stop)
            self.assertEqual(reaches(IMPUTATION_TERM, cvr), not stop)
            self.assertTrue(reaches(IMPUTATION_TERM, imputation))
            self.assertTrue(reaches(keys.CTCVR, cvr))

    def test_output_contract_and_serialization(self):
        model = self.model(alternating=True, stop_gradient_imputation=False,
                           backbone="mmoe", backbone_config={
                               "num_experts": 2, "expert_units": [4],
                               "tower_units": [4]})
        features, _ = self.batch(model.schema, batch_size=16)
        self.assertIn(keys.IMPUTATION,
                      self.run_output_contract_test(model, features))
        revived = self.run_serialization_test(model)
        self.assertTrue(revived.alternating)
        self.assertFalse(revived.stop_gradient_imputation)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError,
                                    "counterfactual_weight=-1"):
            self.model(counterfactual_weight=-1)
