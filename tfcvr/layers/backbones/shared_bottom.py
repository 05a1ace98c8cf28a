from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone


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
        **kwargs: `Backbone` arguments (`activation`, `dropout`,
            `batch_norm`).

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, tower_units[-1])` (`(batch, bottom_units[-1])` without towers).
    """

    def __init__(
        self,
        num_tasks=2,
        bottom_units=(256,),
        tower_units=(128,),
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.bottom_units = check_units("bottom_units", bottom_units, False)
        self.tower_units = check_units("tower_units", tower_units)
        self.bottom = self.mlp(self.bottom_units, name="bottom")
        self.towers = [
            self.mlp(self.tower_units, name=f"tower_{k}")
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
