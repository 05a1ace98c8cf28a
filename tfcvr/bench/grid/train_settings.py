import copy
import dataclasses

from tfcvr.bench.grid._canonical import canonical_json
from tfcvr.bench.grid._canonical import normalize

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def deep_merge(base, override):
    """`base` updated by `override`, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How every estimator of the grid is trained: the same for all.

    The estimator is built as `Estimator(schema, embedding_dim=...,
    backbone=..., backbone_config=..., **params)` (params deep-merged last,
    so `--param backbone_config.hidden_units=[64,32]` wins) and trained by
    `tfcvr.training.train` with Adam.

    Args:
        epochs: int >= 1.
        batch_size: int >= 1.
        learning_rate: float > 0.
        embedding_dim: int >= 1.
        backbone: str. Registered backbone name (`towers`, `mmoe`, ...).
        backbone_config: dict. Backbone constructor kwargs.
        params: dict. Extra estimator constructor kwargs.
        precision: str. `float32`, `mixed_bfloat16` or `mixed_float16`.
    """

    epochs: int = 1
    batch_size: int = 1024
    learning_rate: float = 1e-3
    embedding_dim: int = 16
    backbone: str = "towers"
    backbone_config: dict = dataclasses.field(default_factory=dict)
    params: dict = dataclasses.field(default_factory=dict)
    precision: str = "float32"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be an integer >= 1. Received: {name}={value!r}"
                )
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(
                f"learning_rate must be a number > 0. Received: learning_rate={lr!r}"
            )
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(
                f"backbone must be a backbone name. Received: backbone={self.backbone!r}"
            )
        for name in ("backbone_config", "params"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(
                    f"{name} must be a dict. Received: {name}={value!r}"
                )
            normalize(value)  # raises for values JSON cannot hold
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(PRECISIONS)}. Received: "
                f"precision={self.precision!r}"
            )

    def __hash__(self):
        return hash(canonical_json(self.to_dict()))

    def model_params(self):
        """Constructor kwargs of the estimator (besides the schema)."""
        base = {
            "embedding_dim": self.embedding_dim,
            "backbone": self.backbone,
            "backbone_config": copy.deepcopy(self.backbone_config),
        }
        return deep_merge(base, self.params)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, config):
        return cls(**config)
