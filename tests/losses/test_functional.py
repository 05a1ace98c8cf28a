import numpy as np

from tfcvr.losses import functional as F
from tfcvr.testing import TestCase


class BinaryEntropyTest(TestCase):
    def test_matches_numpy_and_equals_self_bce(self):
        p = np.array([1e-9, 0.1, 0.5, 0.8, 1.0], "float32")
        q = np.clip(p.astype("float64"), 1e-7, 1 - 1e-7)
        expected = -(q * np.log(q) + (1 - q) * np.log(1 - q))
        # float32 rounds 1 - 1e-7, hence the tolerance at the clipped ends.
        self.assertAllClose(F.binary_entropy(p), expected, atol=1e-5)
        inner = p[1:4]
        self.assertAllClose(F.binary_entropy(inner),
                            F.binary_crossentropy(inner, inner), atol=1e-6)
        self.assertAllClose(F.binary_entropy(np.float32(0.5)), np.log(2.0),
                            atol=1e-6)


class PropensityWeightsTest(TestCase):
    observed = np.array([1, 0, 1, 1, 0], "float32")
    propensity = np.array([0.5, 0.2, 0.1, 1e-4, 0.9], "float32")

    def expected(self, normalization, floor=1e-6, cap=None, g=None):
        p = np.clip(self.propensity.astype("float64"), floor, 1.0)
        w = self.observed * (1.0 / p if g is None else g(p))
        norm = {"exposure": len(w), "click": self.observed.sum(),
                "snips": w.sum()}[normalization]
        w = w / norm
        return w if cap is None else np.minimum(w, cap)

    def test_each_normalization_matches_numpy(self):
        for normalization in ("exposure", "click", "snips"):
            for floor, cap in ((1e-6, None), (0.01, None), (0.01, 0.5)):
                with self.subTest(normalization=normalization, floor=floor,
                                  cap=cap):
                    got = F.propensity_weights(
                        self.observed, self.propensity, normalization,
                        floor=floor, cap=cap,
                    )
                    self.assertAllClose(
                        got, self.expected(normalization, floor, cap),
                        rtol=1e-5,
                    )

    def test_custom_weight_function(self):
        g = lambda p: (1.0 - p) / p**2  # noqa: E731
        got = F.propensity_weights(self.observed, self.propensity, "snips",
                                   floor=0.01, weight_fn=g)
        self.assertAllClose(got, self.expected("snips", 0.01, g=g), rtol=1e-5)

    def test_no_observed_row_gives_zero_weights(self):
        zeros = np.zeros(4, "float32")
        for normalization in ("exposure", "click", "snips"):
            got = F.propensity_weights(zeros, np.full(4, 0.3, "float32"),
                                       normalization)
            self.assertAllClose(got, zeros)

    def test_unknown_normalization(self):
        with self.assertRaisesRegex(ValueError, "Received: normalization='x'"):
            F.propensity_weights(self.observed, self.propensity, "x")
