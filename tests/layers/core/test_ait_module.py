import keras
import numpy as np

from tfcvr.layers.core.ait_module import AITModule
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def reference(items, wq, wk, wv):
    """The AIT module in NumPy: softmax_u(<Qu, Ku> / sqrt(k)) weighted sum of Vu."""
    stacked = np.stack(items, axis=1).astype("float64")
    q, k, v = stacked @ wq, stacked @ wk, stacked @ wv
    scores = (q * k).sum(-1) / np.sqrt(wq.shape[1])
    w = np.exp(scores - scores.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return (w[:, :, None] * v).sum(1), w


class AITModuleTest(TestCase):
    def items(self, num=2, batch=5, dim=6, scale=1.0):
        rng = np.random.default_rng(3)
        return [(scale * rng.normal(size=(batch, dim))).astype("float32")
                for _ in range(num)]

    def test_matches_numpy_reference(self):
        for attention_dim in (None, 4):
            with self.subTest(attention_dim=attention_dim):
                # Large inputs so the attention weights are far from uniform.
                items = self.items(scale=3.0)
                layer = AITModule(attention_dim=attention_dim)
                z, weights = layer(items, return_weights=True)
                expected_z, expected_w = reference(
                    items,
                    to_np(layer.query_kernel),
                    to_np(layer.key_kernel),
                    to_np(layer.value_kernel),
                )
                self.assertEqual(tuple(z.shape), (5, attention_dim or 6))
                self.assertAllClose(weights, expected_w, atol=1e-5)
                self.assertAllClose(z, expected_z, atol=1e-4, rtol=1e-4)
                self.assertAllClose(to_np(weights).sum(1), np.ones(5))
                self.assertGreater(np.abs(to_np(weights) - 0.5).max(), 0.05)

    def test_no_bias_and_any_number_of_items(self):
        layer = AITModule()
        zeros = [np.zeros((3, 4), "float32")] * 3
        z, weights = layer(zeros, return_weights=True)
        self.assertAllClose(z, np.zeros((3, 4)))
        self.assertAllClose(weights, np.full((3, 3), 1 / 3))
        self.assertEqual(len(layer.weights), 3)

    def test_regularizer_adds_a_loss(self):
        layer = AITModule(kernel_regularizer=keras.regularizers.L2(0.1))
        layer(self.items())
        expected = 0.1 * sum(np.sum(to_np(w) ** 2) for w in layer.weights)
        self.assertAllClose(keras.ops.sum(layer.losses), expected, rtol=1e-5)

    def test_serialization(self):
        layer = AITModule(attention_dim=3, kernel_regularizer="l2")
        revived = self.run_serialization_test(layer)
        self.assertEqual(tuple(revived(self.items()).shape), (5, 3))

    def test_invalid_arguments_and_inputs(self):
        for value in (0, -2, 2.0, True):
            with self.assertRaisesRegex(ValueError, "Received:"):
                AITModule(attention_dim=value)
        with self.assertRaisesRegex(ValueError, "Received:"):
            AITModule()([np.zeros((2, 3), "float32"),
                         np.zeros((2, 4), "float32")])
