import keras_rs
from keras import ops

from tfcvr.layers.backbones._checks import check_int
from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone


@register_backbone("dcn_v2")
class DCNv2(Backbone):
    """Deep & Cross Network v2 shared by all tasks, then per-task towers.

    Cross layers `x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`
    (`keras_rs.layers.FeatureCross`, `W_l` low-rank with `projection_dim`)
    on the input `x_0 = x`; `"parallel"` concatenates the cross output with
    a deep MLP of `x`, `"stacked"` runs the MLP on the cross output.
    `h_k = MLP_k(shared)`.
    Reference: Wang et al., "DCN V2: Improved Deep & Cross Network and
    Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021.
    NISE and IdeFN use DCNv2 as one of their CVR backbones.

    Args:
        num_tasks: int. Set by the estimator.
        num_cross_layers: int. Defaults to 3.
        projection_dim: int or None. Rank of the cross kernels; None is full
            rank `(d, d)`. Defaults to None.
        deep_units: list of int. The deep MLP; empty gives a cross network
            only. Defaults to `[256, 128]`.
        structure: str. `"parallel"` or `"stacked"`. Defaults to
            `"parallel"`.
        tower_units: list of int. Widths of each task tower; empty returns
            the shared representation. Defaults to `[64]`.
        **kwargs: `Backbone` arguments (`activation`, `dropout`,
            `batch_norm`).

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, tower_units[-1])`; without towers `(batch, d + deep_units[-1])`
    for `"parallel"` and `(batch, deep_units[-1])` for `"stacked"`.
    """

    def __init__(
        self,
        num_tasks=2,
        num_cross_layers=3,
        projection_dim=None,
        deep_units=(256, 128),
        structure="parallel",
        tower_units=(64,),
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.num_cross_layers = check_int("num_cross_layers", num_cross_layers)
        if projection_dim is not None:
            check_int("projection_dim", projection_dim)
        if structure not in ("parallel", "stacked"):
            raise ValueError(
                "structure must be 'parallel' or 'stacked'. Received: "
                f"structure={structure!r}"
            )
        self.projection_dim = projection_dim
        self.deep_units = check_units("deep_units", deep_units)
        self.structure = structure
        self.tower_units = check_units("tower_units", tower_units)
        self.cross_layers = [
            keras_rs.layers.FeatureCross(
                projection_dim=projection_dim,
                dtype=self.dtype_policy,
                name=f"cross_{i}",
            )
            for i in range(num_cross_layers)
        ]
        self.deep = self.mlp(self.deep_units, name="deep")
        self.towers = [
            self.mlp(self.tower_units, name=f"tower_{k}")
            for k in range(num_tasks)
        ]

    def _shared_dim(self, input_dim):
        if self.structure == "stacked":
            return self.deep_units[-1] if self.deep_units else input_dim
        return input_dim + (self.deep_units[-1] if self.deep_units else 0)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cross in self.cross_layers:
            cross.build(shape)
        self.deep.build(shape)
        shared = shape[:-1] + (self._shared_dim(shape[-1]),)
        for tower in self.towers:
            tower.build(shared)
        self.built = True

    def call(self, x, training=False):
        crossed = x
        for cross in self.cross_layers:
            crossed = cross(x, crossed)
        if self.structure == "stacked":
            shared = self.deep(crossed, training=training)
        elif self.deep_units:
            shared = ops.concatenate(
                [crossed, self.deep(x, training=training)], axis=-1
            )
        else:
            shared = crossed
        return [tower(shared, training=training) for tower in self.towers]
