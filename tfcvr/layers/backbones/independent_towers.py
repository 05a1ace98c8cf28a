from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone


@register_backbone("towers")
class IndependentTowers(Backbone):
    """One MLP per task on the shared embeddings (ESMM's architecture).

    `h_k = MLP_k(x)`: tasks share only the embedding tables.
    Reference: Ma et al., "Entire Space Multi-Task Model", SIGIR 2018, §2.3.

    Args:
        num_tasks: int. Set by the estimator.
        hidden_units: list of int. Each tower's widths. Defaults to
            `[256, 128]` (the ESMM paper used `[360, 200, 80]`).
        **kwargs: `Backbone` arguments (`activation`, `dropout`,
            `batch_norm`).

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, hidden_units[-1])`.
    """

    def __init__(self, num_tasks=2, hidden_units=(256, 128), **kwargs):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.hidden_units = list(hidden_units)
        self.towers = [
            self.mlp(self.hidden_units, name=f"tower_{k}")
            for k in range(num_tasks)
        ]

    def build(self, input_shape):
        for tower in self.towers:
            tower.build(input_shape)
        self.built = True

    def call(self, x, training=False):
        return [tower(x, training=training) for tower in self.towers]
