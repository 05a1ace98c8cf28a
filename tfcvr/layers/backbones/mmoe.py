import keras
from keras import ops

from tfcvr.layers.backbones._checks import check_int
from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.backbones.backbone import Backbone
from tfcvr.layers.backbones.backbone import register_backbone


@register_backbone("mmoe")
class MMoE(Backbone):
    """Multi-gate Mixture-of-Experts.

    `n` expert MLPs `f_i(x)` are shared by all tasks; task k mixes them with
    its own gate on the input, `g_k(x) = softmax(W_k x + b_k)`, and feeds
    `sum_i g_k(x)_i f_i(x)` to its tower: `h_k = MLP_k(sum_i g_k,i f_i(x))`.
    Reference: Ma et al., "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts", KDD 2018.

    Configurations used by CVR papers: ESCM2's official code (PaddleRec)
    has 8 experts of `[16]` and towers `[8]`; NISE (RecSys 2024) has 8
    experts of `[80]` and towers `[40]`, the defaults here.

    Args:
        num_tasks: int. Set by the estimator.
        num_experts: int. Number of shared experts. Defaults to 8.
        expert_units: list of int. Widths of each expert MLP (at least one
            layer). Defaults to `[80]`.
        tower_units: list of int. Widths of each task tower; empty returns
            the mixture itself. Defaults to `[40]`.
        **kwargs: `Backbone` arguments (`activation`, `dropout`,
            `batch_norm`).

    Input `(batch, d)`; output: list of `num_tasks` tensors
    `(batch, tower_units[-1])` (`(batch, expert_units[-1])` without
    towers). `call(x, return_gates=True)` also returns the list of task
    gates, each `(batch, num_experts)` with rows summing to 1.
    """

    def __init__(
        self,
        num_tasks=2,
        num_experts=8,
        expert_units=(80,),
        tower_units=(40,),
        **kwargs,
    ):
        super().__init__(num_tasks=num_tasks, **kwargs)
        self.num_experts = check_int("num_experts", num_experts)
        self.expert_units = check_units("expert_units", expert_units, False)
        self.tower_units = check_units("tower_units", tower_units)
        self.experts = [
            self.mlp(self.expert_units, name=f"expert_{i}")
            for i in range(num_experts)
        ]
        self.gates = [
            keras.layers.Dense(
                num_experts, dtype=self.dtype_policy, name=f"gate_{k}"
            )
            for k in range(num_tasks)
        ]
        self.towers = [
            self.mlp(self.tower_units, name=f"tower_{k}")
            for k in range(num_tasks)
        ]

    def build(self, input_shape):
        for expert in self.experts:
            expert.build(input_shape)
        for gate in self.gates:
            gate.build(input_shape)
        shape = tuple(input_shape)[:-1] + (self.expert_units[-1],)
        for tower in self.towers:
            tower.build(shape)
        self.built = True

    def call(self, x, training=False, return_gates=False):
        # (batch, num_experts, units)
        experts = ops.stack(
            [expert(x, training=training) for expert in self.experts], axis=1
        )
        outputs, gates = [], []
        for gate, tower in zip(self.gates, self.towers):
            weights = ops.softmax(gate(x), axis=-1)
            mixture = ops.einsum("be,beu->bu", weights, experts)
            outputs.append(tower(mixture, training=training))
            gates.append(weights)
        if return_gates:
            return outputs, gates
        return outputs
