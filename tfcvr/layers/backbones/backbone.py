import keras

from tfcvr.layers.backbones._checks import check_rate
from tfcvr.layers.core.mlp import MLP
from tfcvr.serialization import register_serializable
from tfcvr.serialization import subclass_config

BACKBONES = {}


def register_backbone(name):
    """Class decorator: makes a `Backbone` subclass available by `name`
    (`backbone="name"` of every estimator) and registers it for `.keras`
    saving."""

    def decorator(cls):
        if name in BACKBONES and BACKBONES[name] is not cls:
            raise ValueError(f"Backbone name {name!r} is already registered.")
        BACKBONES[name] = cls
        cls.backbone_name = name
        return register_serializable(cls)

    return decorator


class Backbone(keras.layers.Layer):
    """Base of the multi-task backbones every estimator can sit on.

    A backbone maps the concatenated field embeddings `(batch, d)` to one
    representation per task, a list of `num_tasks` tensors `(batch, h_k)`;
    the estimator puts a one-unit logit head on each. Its MLPs (`mlp`)
    share one activation, dropout and batch norm. A subclass stores each
    constructor argument under its own name; `get_config` lists them.

    Args:
        num_tasks: int. Number of task representations to produce; set by
            the estimator (e.g. 2 for ESMM: CTR and CVR).
        activation: str. Activation of every hidden layer. Defaults to
            `"relu"`.
        dropout: float. Dropout after every hidden layer. Defaults to 0.
        batch_norm: bool. Batch normalisation before each activation.
            Defaults to False.
    """

    backbone_name = None

    def __init__(
        self,
        num_tasks=2,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(
                f"num_tasks must be a positive int. Received: "
                f"num_tasks={num_tasks!r}"
            )
        self.num_tasks = num_tasks
        self.activation = activation
        self.dropout = check_rate("dropout", dropout)
        self.batch_norm = batch_norm

    def mlp(self, units, name):
        """An `MLP` of widths `units` with the backbone's activation,
        dropout, batch norm and dtype policy."""
        return MLP(
            units,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            dtype=self.dtype_policy,
            name=name,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_tasks": self.num_tasks,
                "activation": self.activation,
                "dropout": self.dropout,
                "batch_norm": self.batch_norm,
            }
        )
        config.update(subclass_config(self, Backbone, exclude=config))
        return config


def get_backbone(identifier, num_tasks, config=None):
    """A backbone from a registered name (with `config` kwargs) or instance."""
    from tfcvr.layers import backbones  # noqa: F401  (fills the registry)

    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, Backbone):
        if config:
            raise ValueError(
                "backbone_config is only used with a backbone name. Received "
                f"a backbone instance and backbone_config={config}"
            )
        if identifier.num_tasks != num_tasks:
            raise ValueError(
                f"This estimator needs a backbone with num_tasks={num_tasks}. "
                f"Received: num_tasks={identifier.num_tasks}"
            )
        return identifier
    if identifier not in BACKBONES:
        raise ValueError(
            f"Unknown backbone. Expected one of {sorted(BACKBONES)} or a "
            f"Backbone instance. Received: backbone={identifier!r}"
        )
    return BACKBONES[identifier](num_tasks=num_tasks, **(config or {}))
