from tfcvr.layers.backbones._checks import check_rate
from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone
from tfcvr.layers.core.mlp import MLP


@register_backbone("shared_bottom")
class SharedBottom(Backbone):
    """A shared MLP bottom followed by one MLP tower per task.

    `h = MLP_shared(x)`, `h_k = MLP_k(h)`: hard parameter sharing, the
    classic multi-task baseline (Caruana, "Multitask Learning", 1997; the
    `SharedBottom` of DeepCTR, PaddleRec `share_bottom` and torch-rechub).

    Args:
        num_tasks: int. Set by the estimator.
        bottom_units: list of int. Widths of the shared bottom. Defaults to
            `[256]`.
        tower_units: list of int. Widths of each task tower; empty gives
            every task the bottom output itself. Defaults to `[128]`.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout after every hidden layer. Defaults to 0.
        batch_norm: bool. Defaults to False.

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, tower_units[-1])` (`(batch, bottom_units[-1])` without towers).
    """

    def __init__(
        self,
        num_tasks=2,
        bottom_units=(256,),
        tower_units=(128,),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.bottom_units = check_units("bottom_units", bottom_units, False)
        self.tower_units = check_units("tower_units", tower_units)
        self.activation = activation
        self.dropout = check_rate("dropout", dropout)
        self.batch_norm = batch_norm
        mlp_args = dict(
            activation=activation,
            dropout=self.dropout,
            batch_norm=batch_norm,
            dtype=self.dtype_policy,
        )
        self.bottom = MLP(self.bottom_units, name="bottom", **mlp_args)
        self.towers = [
            MLP(self.tower_units, name=f"tower_{k}", **mlp_args)
            for k in range(num_tasks)
        ]

    def build(self, input_shape):
        self.bottom.build(input_shape)
        shape = self.bottom.compute_output_shape(input_shape)
        for tower in self.towers:
            tower.build(shape)
        self.built = True

    def call(self, x, training=False):
        h = self.bottom(x, training=training)
        return [tower(h, training=training) for tower in self.towers]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottom_units": self.bottom_units,
                "tower_units": self.tower_units,
                "activation": self.activation,
                "dropout": self.dropout,
                "batch_norm": self.batch_norm,
            }
        )
        return config
