import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import ESCM2IPS
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_escm2_ips(normalization, floor, cap, lambda_c=0.5, lambda_g=0.5):
    """ESCM2-IPS: L_CTR + λ_c L_IPS + λ_g L_CTCVR; the official code's
    L_IPS = mean_B o * min(1 / (ô n_clk), cap) * e."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    weights = CLICK / p
    n = {"exposure": len(CLICK), "click": CLICK.sum(),
         "snips": weights.sum()}[normalization]
    weights = weights / n
    if cap is not None:
        weights = np.minimum(weights, cap)
    return {
        keys.CTR: np_bce(CLICK, P_CTR).mean(),
        "ips": lambda_c * (weights * np_bce(CONVERSION, P_CVR)).sum(),
        keys.CTCVR: lambda_g * np_bce(CLICK * CONVERSION, P_CTR * P_CVR).mean(),
    }


class ESCM2IPSTest(EstimatorTestCase):
    estimator = ESCM2IPS
    name = "escm2_ips"
    venue = "SIGIR 2022"

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None]}
        # The official code's weight 1/(0.004 * 4 clicks) = 62.5 is capped.
        cases = [("click", 1e-6, 15.0, 0.5, 0.5),
                 ("exposure", 1e-6, None, 1.0, 1.0),
                 ("snips", 0.05, None, 0.1, 1.0),
                 ("click", 0.01, 2.0, 0.5, 0.5)]
        for normalization, floor, cap, lambda_c, lambda_g in cases:
            with self.subTest(normalization=normalization, cap=cap):
                model = self.model(normalization=normalization,
                                   propensity_floor=floor, weight_cap=cap,
                                   counterfactual_weight=lambda_c,
                                   global_weight=lambda_g)
                terms = model.loss_terms(labels, outputs)
                expected = np_escm2_ips(normalization, floor, cap, lambda_c,
                                        lambda_g)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)

    def test_zero_counterfactual_weight_is_esmm(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None]}
        model = self.model(counterfactual_weight=0.0, global_weight=1.0)
        self.assertAllClose(
            model.compute_loss(y=labels, y_pred=outputs),
            np_bce(CLICK, P_CTR).mean()
            + np_bce(CLICK * CONVERSION, P_CTR * P_CVR).mean(),
            atol=1e-5, rtol=1e-5,
        )

    def test_ips_term_gives_the_propensity_no_gradient(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        for stop in (True, False):
            model = self.model(stop_gradient_propensity=stop, weight_cap=None)
            features, labels = self.batch(model.schema, batch_size=32)
            model.build()
            ctr_kernel = model.heads[0].kernel
            cvr_kernel = model.heads[1].kernel
            with tf.GradientTape(persistent=True) as tape:
                terms = model.loss_terms(labels, model(features, training=True))
            self.assertEqual(tape.gradient(terms["ips"], ctr_kernel) is None,
                             stop)
            self.assertGreater(
                np.abs(tape.gradient(terms["ips"], cvr_kernel)).sum(), 0
            )

    def test_output_contract_and_serialization(self):
        model = self.model(weight_cap=None, normalization="exposure")
        features, _ = self.batch(model.schema, batch_size=16)
        self.run_output_contract_test(model, features)
        revived = self.run_serialization_test(model)
        self.assertIsNone(revived.weight_cap)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "global_weight=-0.5"):
            self.model(global_weight=-0.5)
        with self.assertRaisesRegex(ValueError, "weight_cap=0"):
            self.model(weight_cap=0)
