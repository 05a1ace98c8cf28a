import inspect

import numpy as np

from tfcvr.layers.backbones import BACKBONES
from tfcvr.layers.backbones import Backbone
from tfcvr.layers.backbones import get_backbone
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import TestCase

LAYER_ARGUMENTS = {"name", "trainable", "dtype"}
BACKBONE_ARGUMENTS = {"num_tasks", "activation", "dropout", "batch_norm"}


def own_arguments(cls):
    return {
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    }


class BackboneTest(TestCase):
    def test_every_backbone_is_covered_here(self):
        self.assertEqual(set(BACKBONES), set(TINY_BACKBONES))

    def test_config_lists_exactly_the_constructor_arguments(self):
        for name, cls in sorted(BACKBONES.items()):
            with self.subTest(backbone=name):
                config = dict(TINY_BACKBONES[name], activation="tanh",
                              dropout=0.25, batch_norm=True)
                layer = get_backbone(name, 3, config)
                config = layer.get_config()
                self.assertEqual(
                    set(config),
                    LAYER_ARGUMENTS | BACKBONE_ARGUMENTS | own_arguments(cls),
                )
                self.assertEqual(
                    (config["num_tasks"], config["activation"],
                     config["dropout"], config["batch_norm"]),
                    (3, "tanh", 0.25, True),
                )
                revived = self.run_serialization_test(layer)
                outputs = revived(np.zeros((2, 6), "float32"))
                self.assertEqual(len(outputs), 3)

    def test_mlps_share_the_backbone_settings(self):
        layer = Backbone(num_tasks=1, activation="tanh", dropout=0.5,
                         batch_norm=True)
        mlp = layer.mlp([4, 2], name="tower")
        self.assertEqual(mlp.name, "tower")
        self.assertEqual(mlp.hidden_units, [4, 2])
        self.assertEqual(mlp.dropout, 0.5)
        self.assertTrue(mlp.batch_norm)
        self.assertEqual(mlp.get_config()["activation"], "tanh")

    def test_invalid_shared_arguments(self):
        for name in sorted(BACKBONES):
            with self.subTest(backbone=name):
                with self.assertRaisesRegex(ValueError, "dropout=1.5"):
                    get_backbone(name, 2,
                                 dict(TINY_BACKBONES[name], dropout=1.5))
                with self.assertRaisesRegex(ValueError, "num_tasks=0"):
                    get_backbone(name, 0, TINY_BACKBONES[name])
