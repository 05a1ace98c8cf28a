import keras
import numpy as np

from tfcvr.layers.backbones import DCNv2
from tfcvr.layers.backbones import get_backbone
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


class DCNv2Test(TestCase):
    def x(self, batch=6, dim=10):
        return np.random.default_rng(0).normal(size=(batch, dim)).astype("float32")

    def test_shapes(self):
        cases = (
            ({"deep_units": [8], "tower_units": [5]}, 5),
            ({"deep_units": [8], "tower_units": []}, 10 + 8),
            ({"deep_units": [], "tower_units": []}, 10),
            ({"deep_units": [8, 7], "structure": "stacked",
              "tower_units": []}, 7),
        )
        for kwargs, width in cases:
            with self.subTest(kwargs=kwargs):
                layer = DCNv2(num_tasks=3, num_cross_layers=2, **kwargs)
                outputs = layer(self.x())
                self.assertEqual(len(outputs), 3)
                for out in outputs:
                    self.assertEqual(tuple(out.shape), (6, width))

    def test_cross_network_matches_the_formula(self):
        x = self.x()
        layer = DCNv2(num_tasks=1, num_cross_layers=2, deep_units=[],
                      tower_units=[])
        (out,) = layer(x)
        expected = x
        for cross in layer.cross_layers:
            w = to_np(cross.dense.kernel)
            b = to_np(cross.dense.bias)
            # Give the bias a value so the test sees it enter the formula.
            cross.dense.bias.assign(b + 0.3)
            expected = x * (expected @ w + b + 0.3) + expected
        (out,) = layer(x)
        self.assertAllClose(out, expected, atol=1e-5)

    def test_low_rank_cross(self):
        layer = DCNv2(num_tasks=2, num_cross_layers=1, projection_dim=3,
                      deep_units=[4], tower_units=[2])
        layer(self.x())
        shapes = sorted(tuple(w.shape) for w in layer.cross_layers[0].weights)
        self.assertEqual(shapes, [(3, 10), (10,), (10, 3)])

    def test_registered_and_serializable(self):
        layer = get_backbone("dcn_v2", 2, {"num_cross_layers": 1})
        self.assertIsInstance(layer, DCNv2)
        layer = DCNv2(num_tasks=2, num_cross_layers=2, projection_dim=2,
                      deep_units=[4], structure="stacked", tower_units=[3],
                      dropout=0.1)
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.structure, "stacked")
        self.assertEqual(tuple(revived(self.x(batch=2))[1].shape), (2, 3))

    def test_invalid_arguments(self):
        for kwargs in (
            {"num_cross_layers": 0},
            {"projection_dim": 0},
            {"structure": "serial"},
            {"deep_units": [8, 0]},
            {"tower_units": None},
            {"dropout": 1.5},
        ):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, "Received:"):
                    DCNv2(**kwargs)
