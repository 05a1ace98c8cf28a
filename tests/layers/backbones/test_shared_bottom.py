import keras
import numpy as np

from tfcvr.layers.backbones import SharedBottom
from tfcvr.layers.backbones import get_backbone
from tfcvr.testing import TestCase


class SharedBottomTest(TestCase):
    def x(self, batch=6, dim=10):
        return np.random.default_rng(0).normal(size=(batch, dim)).astype("float32")

    def test_shapes_for_any_number_of_tasks(self):
        for num_tasks in (1, 3):
            layer = SharedBottom(
                num_tasks=num_tasks, bottom_units=[8, 6], tower_units=[5]
            )
            outputs = layer(self.x())
            self.assertEqual(len(outputs), num_tasks)
            for out in outputs:
                self.assertEqual(tuple(out.shape), (6, 5))

    def test_towers_share_the_bottom_only(self):
        x = self.x()
        layer = SharedBottom(num_tasks=2, bottom_units=[7], tower_units=[])
        a, b = layer(x)
        # Without towers both tasks see exactly the shared bottom.
        self.assertAllClose(a, b)
        self.assertAllClose(a, layer.bottom(x))
        layer = SharedBottom(num_tasks=2, bottom_units=[7], tower_units=[4])
        a, b = layer(x)
        self.assertFalse(np.allclose(keras.ops.convert_to_numpy(a),
                                     keras.ops.convert_to_numpy(b)))
        self.assertEqual(len(layer.trainable_weights), 2 + 2 * 2)

    def test_registered_and_serializable(self):
        layer = get_backbone("shared_bottom", 2, {"bottom_units": [8]})
        self.assertIsInstance(layer, SharedBottom)
        layer = SharedBottom(
            num_tasks=3, bottom_units=[8], tower_units=[4, 2], dropout=0.1,
            batch_norm=True, activation="tanh",
        )
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.tower_units, [4, 2])
        self.assertEqual(len(revived(self.x(batch=2))), 3)

    def test_invalid_arguments(self):
        for kwargs in (
            {"bottom_units": []},
            {"bottom_units": [0]},
            {"tower_units": [4, -1]},
            {"tower_units": "64"},
            {"dropout": 1.0},
            {"num_tasks": 0},
        ):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, "Received:"):
                    SharedBottom(**kwargs)
