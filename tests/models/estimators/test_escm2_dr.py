import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.models import ESCM2DR
from tfcvr.models import get_estimator
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.testing import TestCase

TINY = {"hidden_units": [8]}
CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_bce(y, p, eps=1e-7):
    p = np.clip(p.astype("float64"), eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


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


class ESCM2DRTest(TestCase):
    def model(self, **kwargs):
        kwargs.setdefault("backbone_config", TINY)
        return ESCM2DR(schema=self.tiny_schema(), embedding_dim=4, **kwargs)

    def test_registered_and_joint_by_default(self):
        self.assertIs(get_estimator("escm2_dr"), ESCM2DR)
        self.assertIn("SIGIR 2022", ESCM2DR.paper)
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

    def test_fit_and_save_load_joint_and_alternating(self):
        for alternating in (False, True):
            with self.subTest(alternating=alternating):
                model = self.model(alternating=alternating)
                features, labels = self.batch(model.schema, batch_size=48)
                self.run_fit_test(model, features, labels)
                self.run_model_saving_test(model, features)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError,
                                    "counterfactual_weight=-1"):
            self.model(counterfactual_weight=-1)

    @pytest.mark.jax
    def test_fit_step_on_current_backend(self):
        for alternating in (False, True):
            model = self.model(alternating=alternating)
            features, labels = self.batch(model.schema, batch_size=32)
            history = self.run_fit_test(model, features, labels, steps=2)
            self.assertEqual(len(history.history["loss"]), 2)
