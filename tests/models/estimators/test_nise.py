import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.models import NISE
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_nise(alpha, beta, dynamic, unclicked_weight):
    """NISE (RecSys 2024, `adaptive_ucvrlc`): L_ctr + w [mean(o e(r, r̂)) +
    u mean((1 - o) e(r̂, r̂))], w = α min(L_ctr / L_cvr, β)."""
    ctr_loss = np_bce(CLICK, P_CTR).mean()
    clicked = (CLICK * np_bce(CONVERSION, P_CVR)).mean()
    unclicked = ((1 - CLICK) * np_bce(P_CVR, P_CVR)).mean()
    cvr_loss = clicked + unclicked_weight * unclicked
    weight = alpha * min(ctr_loss / cvr_loss, beta) if dynamic else alpha
    return {keys.CTR: ctr_loss, keys.CVR: weight * cvr_loss}


class NISETest(EstimatorTestCase):
    estimator = NISE
    name = "nise"
    venue = "RecSys 2024"

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
                   keys.CTCVR: (P_CTR * P_CVR)[:, None]}
        # The ratio L_ctr / L_cvr is about 2 here, so β = 1.2 caps it.
        cases = [(1.0, 50.0, True, 1.0), (0.5, 1.2, True, 1.0),
                 (2.0, 50.0, False, 1.0), (1.0, 50.0, True, 0.0)]
        for alpha, beta, dynamic, unclicked in cases:
            with self.subTest(alpha=alpha, beta=beta, dynamic=dynamic,
                              unclicked=unclicked):
                model = self.model(alpha=alpha, beta=beta,
                                   dynamic_weight=dynamic,
                                   unclicked_weight=unclicked)
                terms = model.loss_terms(labels, outputs)
                expected = np_nise(alpha, beta, dynamic, unclicked)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)

    def test_entropy_pushes_unclicked_predictions_away_from_one_half(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        cvr = tf.Variable(P_CVR[:, None])
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        with tf.GradientTape() as tape:
            terms = model.loss_terms(
                labels, {keys.CTR: P_CTR[:, None], keys.CVR: cvr})
        grad = tape.gradient(terms[keys.CVR], cvr).numpy()[:, 0]
        unclicked = CLICK == 0
        # A descent step moves each unclicked r̂ towards 0 or 1 (lower
        # entropy): the gradient has the sign of 0.5 - r̂.
        self.assertTrue(np.all(np.sign(grad[unclicked])
                               == np.sign(0.5 - P_CVR[unclicked])))

    def test_dynamic_weight_gets_no_gradient(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch(model.schema, batch_size=32)
        model.build()
        with tf.GradientTape() as tape:
            terms = model.loss_terms(labels, model(features, training=True))
        # The CVR term reaches the CTR head only through the (stopped)
        # loss ratio.
        self.assertIsNone(tape.gradient(terms[keys.CVR],
                                        model.heads[0].kernel))

    def test_output_contract_and_serialization(self):
        model = self.model(alpha=0.5, dynamic_weight=False)
        features, _ = self.batch(model.schema, batch_size=16)
        self.run_output_contract_test(model, features)
        revived = self.run_serialization_test(model)
        self.assertFalse(revived.dynamic_weight)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "beta=-1"):
            self.model(beta=-1)
        with self.assertRaisesRegex(ValueError, "dynamic_weight='yes'"):
            self.model(dynamic_weight="yes")
