from tfcvr.layers.backbones._checks import check_int
from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone
from tfcvr.layers.backbones.cgc_level import CGCLevel


@register_backbone("ple")
class PLE(Backbone):
    """Progressive Layered Extraction: stacked CGC levels, then towers.

    Each level (`CGCLevel`) has task-specific and shared experts; task k's
    gate mixes its own and the shared experts, and every level but the last
    also has a shared gate over all experts whose output feeds the next
    level's shared experts. Level 1 reads `x` everywhere; level l reads the
    task and shared outputs of level l - 1. `h_k = MLP_k(g_k^L)`.
    `num_levels=1` is CGC, the single-level model of the paper.
    Reference: Tang et al., "Progressive Layered Extraction (PLE): A Novel
    Multi-Task Learning (MTL) Model for Personalized Recommendations",
    RecSys 2020.

    Configurations used by CVR papers: NISE (RecSys 2024) has 4 shared and
    4 task-specific experts, the defaults here (experts `[80]`, towers
    `[40]` as its MMoE).

    Args:
        num_tasks: int. Set by the estimator.
        num_levels: int. Extraction levels. Defaults to 1 (CGC).
        num_shared_experts: int. Shared experts per level. Defaults to 4.
        num_task_experts: int. Experts per task per level. Defaults to 4.
        expert_units: list of int. Widths of each expert MLP. Defaults to
            `[80]`.
        tower_units: list of int. Widths of each task tower; empty returns
            the last level's task outputs. Defaults to `[40]`.
        **kwargs: `Backbone` arguments (`activation`, `dropout`,
            `batch_norm`).

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, tower_units[-1])`. `call(x, return_gates=True)` also returns
    one list of gates per level (task gates, then the shared gate on
    intermediate levels), each row summing to 1.
    """

    def __init__(
        self,
        num_tasks=2,
        num_levels=1,
        num_shared_experts=4,
        num_task_experts=4,
        expert_units=(80,),
        tower_units=(40,),
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.num_levels = check_int("num_levels", num_levels)
        self.num_shared_experts = check_int(
            "num_shared_experts", num_shared_experts, 0
        )
        self.num_task_experts = check_int("num_task_experts", num_task_experts, 0)
        self.expert_units = check_units("expert_units", expert_units, False)
        self.tower_units = check_units("tower_units", tower_units)
        self.levels = [
            CGCLevel(
                num_tasks=num_tasks,
                num_shared_experts=num_shared_experts,
                num_task_experts=num_task_experts,
                expert_units=self.expert_units,
                shared_gate=level < num_levels - 1,
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
                dtype=self.dtype_policy,
                name=f"cgc_{level}",
            )
            for level in range(num_levels)
        ]
        self.towers = [
            self.mlp(self.tower_units, name=f"tower_{k}")
            for k in range(num_tasks)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for level in self.levels:
            level.build([shape] * (self.num_tasks + 1))
            shape = shape[:-1] + (self.expert_units[-1],)
        for tower in self.towers:
            tower.build(shape)
        self.built = True

    def call(self, x, training=False, return_gates=False):
        inputs = [x] * (self.num_tasks + 1)
        all_gates = []
        for level in self.levels:
            outputs, gates = level(inputs, training=training)
            all_gates.append(gates)
            inputs = outputs
        outputs = [
            tower(h, training=training)
            for tower, h in zip(self.towers, inputs[: self.num_tasks])
        ]
        if return_gates:
            return outputs, all_gates
        return outputs
