import keras
import numpy as np

from tfcvr.losses import ImputationLoss
from tfcvr.losses import MRDRImputationLoss
from tfcvr.testing import TestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.04, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
IMPUTED = np.array([0.3, 0.9, 0.1, 0.5, 0.05, 0.6, 0.2, 0.4], "float32")


def np_mrdr(o, r, ctr, cvr, imputation, normalization, target):
    """(1/N) sum o (1 - p̂) / p̂^2 l (Guo et al., SIGIR 2021)."""
    p = ctr.astype("float64")
    if target == "error":
        value = (imputation - np_bce(r, cvr)) ** 2
    else:
        value = np_bce(r, imputation)
    w = o * (1 - p) / p**2
    n = {"exposure": len(o), "click": o.sum(), "snips": w.sum()}[normalization]
    return float((w * value).sum() / n)


class MRDRImputationLossTest(TestCase):
    def setUp(self):
        super().setUp()
        self.rows = dict(observed=CLICK, target=CONVERSION,
                         prediction=P_CVR[:, None], propensity=P_CTR[:, None],
                         imputation=IMPUTED[:, None])

    def test_matches_numpy(self):
        for normalization in ("exposure", "click", "snips"):
            for target in ("error", "label"):
                with self.subTest(normalization=normalization, target=target):
                    loss = MRDRImputationLoss(normalization=normalization,
                                              imputation_target=target)
                    self.assertAllClose(
                        loss(**self.rows),
                        np_mrdr(CLICK, CONVERSION, P_CTR, P_CVR, IMPUTED,
                                normalization, target),
                        atol=1e-5, rtol=1e-5,
                    )

    def test_differs_from_dr_jl_weighting(self):
        mrdr = MRDRImputationLoss()(**self.rows)
        dr = ImputationLoss()(**self.rows)
        self.assertGreater(
            abs(float(keras.ops.convert_to_numpy(mrdr - dr))), 1e-3
        )

    def test_serialization(self):
        loss = MRDRImputationLoss(normalization="snips",
                                  imputation_target="label")
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(loss)
        )
        self.assertIsInstance(restored, MRDRImputationLoss)
        self.assertEqual(restored.get_config(), loss.get_config())
