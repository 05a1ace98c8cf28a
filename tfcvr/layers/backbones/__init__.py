"""Multi-task backbones. Every module in this folder is imported, so adding a
backbone is adding one file with a `@register_backbone` class."""

import importlib
import pkgutil

from tfcvr.layers.backbones.backbone import BACKBONES
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import get_backbone
from tfcvr.layers.backbones.backbone import register_backbone

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

for _cls in set(BACKBONES.values()):
    globals()[_cls.__name__] = _cls

__all__ = ["BACKBONES", "Backbone", "get_backbone", "register_backbone"] + [
    cls.__name__ for cls in set(BACKBONES.values())
]
