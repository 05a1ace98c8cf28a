import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import DRJL
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_dr_jl(normalization, imputation_normalization, floor):
    """DR-JL (ICML 2019): E_DR and L_e = (1/|D|) sum o (ê - e)^2 / p̂."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    e = np_bce(CONVERSION, P_CVR)
    weights = CLICK / p
    n_dr = len(CLICK) if normalization == "exposure" else weights.sum()
    n_imp = {"exposure": len(CLICK), "click": CLICK.sum(),
             "snips": weights.sum()}[imputation_normalization]
    return {
        keys.CTR: np_bce(CLICK, P_CTR).mean(),
        "dr": IMPUTED.mean() + (weights * (e - IMPUTED)).sum() / n_dr,
        IMPUTATION_TERM: (weights * (IMPUTED - e) ** 2).sum() / n_imp,
    }


class DRJLTest(EstimatorTestCase):
    estimator = DRJL
    name = "dr_jl"
    venue = "ICML 2019"

    def test_alternating_by_default(self):
        model = self.model()
        self.assertTrue(model.alternating)
        self.assertEqual(model.imputation_steps, 1)

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None],
                   keys.IMPUTATION: IMPUTED[:, None]}
        for normalization in ("exposure", "snips"):
            for imp_norm in ("exposure", "click", "snips"):
                with self.subTest(normalization=normalization, imp=imp_norm):
                    model = self.model(normalization=normalization,
                                       imputation_normalization=imp_norm)
                    terms = model.loss_terms(labels, outputs)
                    expected = np_dr_jl(normalization, imp_norm, 0.01)
                    self.assertEqual(set(terms), set(expected))
                    for name, value in expected.items():
                        self.assertAllClose(terms[name], value, atol=1e-5,
                                            rtol=1e-5, msg=name)

    def test_each_step_trains_only_its_model(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch(model.schema, batch_size=32)
        imputation, prediction = model.alternating_variable_groups()
        with tf.GradientTape(persistent=True) as tape:
            terms = model.loss_terms(labels, model(features, training=True))
        prediction_loss = terms[keys.CTR] + terms["dr"]
        # θ's loss does not reach φ, and φ's loss reaches only φ and the
        # shared embedding (through its input, which the θ step owns).
        for grad in tape.gradient(prediction_loss, imputation):
            self.assertIsNone(grad)
        heads = {id(v) for h in model.heads[:2] for v in h.trainable_variables}
        for v, grad in zip(prediction,
                           tape.gradient(terms[IMPUTATION_TERM], prediction)):
            if id(v) in heads:
                self.assertIsNone(grad, v.path)

    def test_output_contract_and_serialization(self):
        model = self.model(imputation_steps=2, imputation_target="label")
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertIn(keys.IMPUTATION, outputs)
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.imputation_steps, 2)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "imputation_steps=1.5"):
            self.model(imputation_steps=1.5)
        with self.assertRaisesRegex(ValueError, "ctr_weight=-1"):
            self.model(ctr_weight=-1)
