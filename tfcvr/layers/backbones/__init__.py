"""Multi-task backbones: embeddings `(batch, d)` -> one representation per
task. A backbone is one file with a `@register_backbone` class plus its
import line here (importing it is what registers it)."""

from tfcvr.layers.backbones.backbone import BACKBONES
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import get_backbone
from tfcvr.layers.backbones.backbone import register_backbone
from tfcvr.layers.backbones.dcn_v2 import DCNv2
from tfcvr.layers.backbones.independent_towers import IndependentTowers
from tfcvr.layers.backbones.mmoe import MMoE
from tfcvr.layers.backbones.ple import PLE
from tfcvr.layers.backbones.shared_bottom import SharedBottom

__all__ = [
    "BACKBONES",
    "Backbone",
    "DCNv2",
    "IndependentTowers",
    "MMoE",
    "PLE",
    "SharedBottom",
    "get_backbone",
    "register_backbone",
]
