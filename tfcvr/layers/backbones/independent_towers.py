from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone
from tfcvr.layers.core.mlp import MLP


@register_backbone("towers")
class IndependentTowers(Backbone):
    """One MLP per task on the shared embeddings (ESMM's architecture).

    `h_k = MLP_k(x)`: tasks share only the embedding tables.
    Reference: Ma et al., "Entire Space Multi-Task Model", SIGIR 2018, §2.3.

    Args:
        num_tasks: int. Set by the estimator.
        hidden_units: list of int. Each tower's widths. Defaults to
            `[256, 128]` (the ESMM paper used `[360, 200, 80]`).
        activation: str. Defaults to `"relu"`.
        dropout: float. Defaults to 0.
        batch_norm: bool. Defaults to False.

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, hidden_units[-1])`.
    """

    def __init__(
        self,
        num_tasks=2,
        hidden_units=(256, 128),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.towers = [
            MLP(
                hidden_units,
                activation=activation,
                dropout=dropout,
                batch_norm=batch_norm,
                dtype=self.dtype_policy,
                name=f"tower_{k}",
            )
            for k in range(num_tasks)
        ]

    def build(self, input_shape):
        for tower in self.towers:
            tower.build(input_shape)
        self.built = True

    def call(self, x, training=False):
        return [tower(x, training=training) for tower in self.towers]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "activation": self.activation,
                "dropout": self.dropout,
                "batch_norm": self.batch_norm,
            }
        )
        return config
