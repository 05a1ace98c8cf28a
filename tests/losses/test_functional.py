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
