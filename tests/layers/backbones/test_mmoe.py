import keras
import numpy as np

from tfcvr.layers.backbones import MMoE
from tfcvr.layers.backbones import get_backbone
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


class MMoETest(TestCase):
    def x(self, batch=6, dim=10):
        return np.random.default_rng(0).normal(size=(batch, dim)).astype("float32")

    def test_shapes_for_any_number_of_tasks(self):
        for num_tasks in (1, 3):
            layer = MMoE(num_tasks=num_tasks, num_experts=3, expert_units=[8],
                         tower_units=[5])
            outputs = layer(self.x())
            self.assertEqual(len(outputs), num_tasks)
            for out in outputs:
                self.assertEqual(tuple(out.shape), (6, 5))

    def test_gates_are_distributions_and_mix_the_experts(self):
        x = self.x()
        layer = MMoE(num_tasks=2, num_experts=4, expert_units=[6, 5],
                     tower_units=[])
        outputs, gates = layer(x, return_gates=True)
        self.assertEqual(len(gates), 2)
        experts = np.stack([to_np(e(x)) for e in layer.experts], axis=1)
        for out, gate, dense in zip(outputs, gates, layer.gates):
            gate = to_np(gate)
            self.assertEqual(gate.shape, (6, 4))
            self.assertAllClose(gate.sum(axis=1), np.ones(6), atol=1e-6)
            self.assertTrue(np.all(gate > 0))
            logits = to_np(dense(x))
            expected_gate = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            self.assertAllClose(gate, expected_gate, atol=1e-6)
            self.assertAllClose(
                out, np.einsum("be,beu->bu", expected_gate, experts), atol=1e-5
            )
        # Each task has its own gate, so the mixtures differ.
        self.assertFalse(np.allclose(to_np(outputs[0]), to_np(outputs[1])))

    def test_registered_and_serializable(self):
        layer = get_backbone("mmoe", 3, {"num_experts": 2})
        self.assertIsInstance(layer, MMoE)
        self.assertEqual(layer.num_tasks, 3)
        layer = MMoE(num_tasks=2, num_experts=3, expert_units=[8, 4],
                     tower_units=[2], dropout=0.2, batch_norm=True)
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.num_experts, 3)
        outputs = revived(self.x(batch=2))
        self.assertEqual(tuple(outputs[1].shape), (2, 2))
        self.assertEqual(len(revived.experts), 3)

    def test_invalid_arguments(self):
        for kwargs in (
            {"num_experts": 0},
            {"num_experts": 2.5},
            {"expert_units": []},
            {"tower_units": [0]},
            {"dropout": -0.1},
        ):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, "Received:"):
                    MMoE(**kwargs)
