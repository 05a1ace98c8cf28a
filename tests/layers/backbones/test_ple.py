import keras
import numpy as np

from tfcvr.layers.backbones import PLE
from tfcvr.layers.backbones import get_backbone
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class PLETest(TestCase):
    def x(self, batch=6, dim=10):
        return np.random.default_rng(0).normal(size=(batch, dim)).astype("float32")

    def test_shapes_for_levels_and_tasks(self):
        for num_tasks, num_levels in ((1, 1), (2, 1), (3, 2), (2, 3)):
            layer = PLE(num_tasks=num_tasks, num_levels=num_levels,
                        num_shared_experts=2, num_task_experts=1,
                        expert_units=[8], tower_units=[5])
            outputs = layer(self.x())
            self.assertEqual(len(outputs), num_tasks)
            for out in outputs:
                self.assertEqual(tuple(out.shape), (6, 5))
            self.assertEqual(len(layer.levels), num_levels)

    def test_gates_sum_to_one_per_row(self):
        layer = PLE(num_tasks=3, num_levels=2, num_shared_experts=2,
                    num_task_experts=3, expert_units=[4], tower_units=[2])
        _, gates = layer(self.x(), return_gates=True)
        self.assertEqual(len(gates), 2)
        # Intermediate levels add a shared gate over every expert.
        self.assertEqual([len(g) for g in gates], [4, 3])
        widths = [to_np(g).shape[1] for g in gates[0]]
        self.assertEqual(widths, [5, 5, 5, 3 * 3 + 2])
        for level in gates:
            for gate in level:
                self.assertAllClose(
                    to_np(gate).sum(axis=1), np.ones(6), atol=1e-6
                )

    def test_cgc_mixes_own_and_shared_experts_only(self):
        x = self.x()
        layer = PLE(num_tasks=2, num_levels=1, num_shared_experts=2,
                    num_task_experts=2, expert_units=[5], tower_units=[])
        outputs = layer(x)
        level = layer.levels[0]
        shared = [to_np(e(x)) for e in level.shared_experts]
        for k in range(2):
            own = [to_np(e(x)) for e in level.task_experts[2 * k:2 * k + 2]]
            gate = softmax(to_np(level.task_gates[k](x)))
            expected = np.einsum("be,beu->bu", gate, np.stack(own + shared, 1))
            self.assertAllClose(outputs[k], expected, atol=1e-5)

    def test_registered_and_serializable(self):
        layer = get_backbone("ple", 2, {"num_levels": 2})
        self.assertIsInstance(layer, PLE)
        layer = PLE(num_tasks=2, num_levels=2, num_shared_experts=1,
                    num_task_experts=0, expert_units=[4], tower_units=[3],
                    dropout=0.1)
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.num_levels, 2)
        self.assertEqual(tuple(revived(self.x(batch=2))[0].shape), (2, 3))

    def test_invalid_arguments(self):
        for kwargs in (
            {"num_levels": 0},
            {"num_shared_experts": -1},
            {"num_task_experts": 1.5},
            {"num_shared_experts": 0, "num_task_experts": 0},
            {"expert_units": []},
            {"tower_units": [3, 0]},
            {"dropout": 2.0},
        ):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, "Received:"):
                    PLE(**kwargs)
