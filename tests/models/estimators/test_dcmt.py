import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import DCMT
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.999], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
P_TWIN = np.array([0.1, 0.6, 0.5, 0.3, 0.9, 0.5, 0.8, 0.2], "float32")


def np_dcmt(normalization, floor, unclick_floor, lam, w=(1.0, 1.0, 1.0)):
    """DCMT as restated by NISE Eq. 6 (plus L_CTR and L_CTCVR):
    factual IPS over O with ô, counterfactual IPS over N with 1 - ô and
    r* = 1 - r, and λ mean |1 - (r̂ + r̂*)|."""
    p = np.maximum(P_CTR.astype("float64"), floor)
    q = np.maximum(1.0 - P_CTR.astype("float64"), unclick_floor)
    wf = CLICK / p
    wc = (1 - CLICK) / q
    if normalization == "exposure":
        nf = nc = len(CLICK)
    else:
        nf, nc = wf.sum(), wc.sum()
    return {
        keys.CTR: w[0] * np_bce(CLICK, P_CTR).mean(),
        "factual": w[1] * (wf * np_bce(CONVERSION, P_CVR)).sum() / nf,
        "counterfactual": w[1]
        * (wc * np_bce(1 - CONVERSION, P_TWIN)).sum() / nc,
        "constraint": w[1] * lam * np.abs(1 - (P_CVR + P_TWIN)).mean(),
        keys.CTCVR: w[2] * np_bce(CLICK * CONVERSION, P_CTR * P_CVR).mean(),
    }


class DCMTTest(EstimatorTestCase):
    estimator = DCMT
    name = "dcmt"
    venue = "ICDE 2023"
    fit_variants = ({"twin_tower": "separate"}, {"twin_tower": "shared"})

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None],
                   keys.COUNTERFACTUAL_CVR: P_TWIN[:, None]}
        cases = [("exposure", 1e-6, 1e-6, 1e-3, (1.0, 1.0, 1.0)),
                 ("snips", 1e-6, 1e-6, 1e-3, (1.0, 1.0, 1.0)),
                 ("exposure", 0.05, 0.05, 0.5, (0.5, 2.0, 0.0)),
                 ("snips", 0.01, 0.1, 1.0, (1.0, 0.3, 1.0))]
        for normalization, floor, unclick_floor, lam, w in cases:
            with self.subTest(normalization=normalization, floor=floor):
                model = self.model(
                    normalization=normalization, propensity_floor=floor,
                    unclick_propensity_floor=unclick_floor,
                    constraint_weight=lam, ctr_weight=w[0], cvr_weight=w[1],
                    ctcvr_weight=w[2],
                )
                terms = model.loss_terms(labels, outputs)
                expected = np_dcmt(normalization, floor, unclick_floor, lam, w)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)

    def test_twin_towers(self):
        features, _ = self.batch(self.tiny_schema(), batch_size=16)
        for twin, num_tasks in (("separate", 3), ("shared", 2)):
            with self.subTest(twin=twin):
                model = self.model(twin_tower=twin)
                self.assertEqual(model.backbone.num_tasks, num_tasks)
                outputs = self.run_output_contract_test(model, features)
                self.assertEqual(
                    set(outputs),
                    set(keys.SERVING_OUTPUTS) | {keys.COUNTERFACTUAL_CVR},
                )
                revived = self.run_serialization_test(model)
                self.assertEqual(revived.twin_tower, twin)

    def test_gradients(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        for stop in (True, False):
            model = self.model(stop_gradient_propensity=stop)
            features, labels = self.batch(model.schema, batch_size=32)
            model.build()
            ctr, cvr, twin = (h.kernel for h in model.heads)
            with tf.GradientTape(persistent=True) as tape:
                terms = model.loss_terms(labels, model(features, training=True))

            def reaches(term, kernel):
                g = tape.gradient(terms[term], kernel)
                return g is not None and np.abs(g.numpy()).sum() > 0

            self.assertEqual(reaches("factual", ctr), not stop)
            self.assertEqual(reaches("counterfactual", ctr), not stop)
            self.assertTrue(reaches("factual", cvr))
            self.assertFalse(reaches("factual", twin))
            self.assertTrue(reaches("counterfactual", twin))
            self.assertFalse(reaches("counterfactual", cvr))
            self.assertTrue(reaches("constraint", cvr))
            self.assertTrue(reaches("constraint", twin))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "twin_tower='twin'"):
            self.model(twin_tower="twin")
        with self.assertRaisesRegex(ValueError, "normalization='click'"):
            self.model(normalization="click")
        with self.assertRaisesRegex(ValueError, "unclick_propensity_floor=0"):
            self.model(unclick_propensity_floor=0)
        with self.assertRaisesRegex(ValueError, "constraint_weight=-1"):
            self.model(constraint_weight=-1)
