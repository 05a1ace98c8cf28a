import keras
import numpy as np

from tfcvr.layers.backbones.cgc_level import CGCLevel
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class CGCLevelTest(TestCase):
    def inputs(self, num, batch=4, dim=6):
        rng = np.random.default_rng(1)
        return [rng.normal(size=(batch, dim)).astype("float32")
                for _ in range(num)]

    def test_shared_gate_mixes_every_expert(self):
        inputs = self.inputs(3)
        level = CGCLevel(num_tasks=2, num_shared_experts=1, num_task_experts=2,
                         expert_units=[5], shared_gate=True)
        outputs, gates = level(inputs)
        self.assertEqual(len(outputs), 3)
        self.assertEqual([to_np(g).shape for g in gates],
                         [(4, 3), (4, 3), (4, 5)])
        # Task experts read their own task's input, shared ones the shared input.
        experts = [to_np(e(inputs[0])) for e in level.task_experts[:2]]
        experts += [to_np(e(inputs[1])) for e in level.task_experts[2:]]
        experts += [to_np(level.shared_experts[0](inputs[2]))]
        gate = softmax(to_np(level.shared_gate_layer(inputs[2])))
        expected = np.einsum("be,beu->bu", gate, np.stack(experts, 1))
        self.assertAllClose(outputs[2], expected, atol=1e-5)
        self.assertAllClose(to_np(gates[2]).sum(1), np.ones(4), atol=1e-6)

    def test_wrong_number_of_inputs(self):
        level = CGCLevel(num_tasks=2)
        with self.assertRaisesRegex(ValueError, "Received:"):
            level(self.inputs(2))

    def test_serialization(self):
        level = CGCLevel(num_tasks=3, num_shared_experts=0, num_task_experts=1,
                         expert_units=[3], shared_gate=True)
        revived = self.run_serialization_test(level)
        outputs, _ = revived(self.inputs(4))
        self.assertEqual(len(outputs), 4)
