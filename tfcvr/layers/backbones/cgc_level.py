import keras
from keras import ops

from tfcvr.layers.backbones._checks import check_int
from tfcvr.layers.backbones._checks import check_rate
from tfcvr.layers.backbones._checks import check_units
from tfcvr.layers.core.mlp import MLP
from tfcvr.serialization import register_serializable


@register_serializable
class CGCLevel(keras.layers.Layer):
    """One Customized Gate Control extraction level of PLE.

    Task k owns `m_t` experts on its own input `x_k`; `m_s` shared experts
    read the shared input `x_s`. Task k's output is
    `sum_j w_k(x_k)_j S_k,j` with `w_k = softmax(W_k x_k + b_k)` over
    `S_k = [E_k,1..E_k,m_t, E_s,1..E_s,m_s]`. With `shared_gate`, a shared
    output `sum_j w_s(x_s)_j S_j` mixes every expert of every task and the
    shared ones (PLE's intermediate levels).
    Reference: Tang et al., "Progressive Layered Extraction (PLE)",
    RecSys 2020.

    Building block of `PLE`; not a backbone by itself.

    Args:
        num_tasks: int.
        num_shared_experts: int. `m_s`. Defaults to 4.
        num_task_experts: int. `m_t`, per task. Defaults to 4.
        expert_units: list of int. Widths of each expert MLP. Defaults to
            `[80]`.
        shared_gate: bool. Also produce the shared output. Defaults to False.
        activation: str. Defaults to `"relu"`.
        dropout: float. Defaults to 0.
        batch_norm: bool. Defaults to False.

    Input: list of `num_tasks + 1` tensors `(batch, d)`, the task inputs
    then the shared input. Output `(outputs, gates)`: `num_tasks` tensors
    `(batch, expert_units[-1])` (then the shared one with `shared_gate`),
    and the matching softmax gates `(batch, m_t + m_s)` (shared gate
    `(batch, num_tasks * m_t + m_s)`).
    """

    def __init__(
        self,
        num_tasks=2,
        num_shared_experts=4,
        num_task_experts=4,
        expert_units=(80,),
        shared_gate=False,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tasks = check_int("num_tasks", num_tasks)
        self.num_shared_experts = check_int(
            "num_shared_experts", num_shared_experts, 0
        )
        self.num_task_experts = check_int("num_task_experts", num_task_experts, 0)
        if num_shared_experts + num_task_experts < 1:
            raise ValueError(
                "A CGC level needs at least one expert per task gate. "
                f"Received: num_shared_experts={num_shared_experts}, "
                f"num_task_experts={num_task_experts}"
            )
        self.expert_units = check_units("expert_units", expert_units, False)
        self.shared_gate = bool(shared_gate)
        self.activation = activation
        self.dropout = check_rate("dropout", dropout)
        self.batch_norm = batch_norm
        mlp_args = dict(
            activation=activation,
            dropout=self.dropout,
            batch_norm=batch_norm,
            dtype=self.dtype_policy,
        )
        # Flat (task-major) so Keras tracks every expert's weights.
        self.task_experts = [
            MLP(self.expert_units, name=f"task_{k}_expert_{j}", **mlp_args)
            for k in range(num_tasks)
            for j in range(num_task_experts)
        ]
        self.shared_experts = [
            MLP(self.expert_units, name=f"shared_expert_{j}", **mlp_args)
            for j in range(num_shared_experts)
        ]
        self.task_gates = [
            keras.layers.Dense(
                num_task_experts + num_shared_experts,
                dtype=self.dtype_policy,
                name=f"task_{k}_gate",
            )
            for k in range(num_tasks)
        ]
        self.shared_gate_layer = (
            keras.layers.Dense(
                num_tasks * num_task_experts + num_shared_experts,
                dtype=self.dtype_policy,
                name="shared_gate",
            )
            if self.shared_gate
            else None
        )

    def _experts_of(self, k):
        m = self.num_task_experts
        return self.task_experts[k * m:(k + 1) * m]

    def build(self, input_shape):
        shapes = list(input_shape)
        if len(shapes) != self.num_tasks + 1:
            raise ValueError(
                f"CGCLevel expects {self.num_tasks + 1} inputs (one per task, "
                f"then the shared one). Received: {len(shapes)} inputs"
            )
        for k in range(self.num_tasks):
            for expert in self._experts_of(k):
                expert.build(shapes[k])
            self.task_gates[k].build(shapes[k])
        for expert in self.shared_experts:
            expert.build(shapes[-1])
        if self.shared_gate_layer is not None:
            self.shared_gate_layer.build(shapes[-1])
        self.built = True

    def call(self, inputs, training=False):
        task_inputs, shared_input = list(inputs[:-1]), inputs[-1]
        shared = [e(shared_input, training=training) for e in self.shared_experts]
        per_task = [
            [e(task_inputs[k], training=training) for e in self._experts_of(k)]
            for k in range(self.num_tasks)
        ]
        outputs, gates = [], []
        for k in range(self.num_tasks):
            weights = ops.softmax(self.task_gates[k](task_inputs[k]), axis=-1)
            experts = ops.stack(per_task[k] + shared, axis=1)
            outputs.append(ops.einsum("be,beu->bu", weights, experts))
            gates.append(weights)
        if self.shared_gate_layer is not None:
            weights = ops.softmax(self.shared_gate_layer(shared_input), axis=-1)
            everything = [e for task in per_task for e in task] + shared
            experts = ops.stack(everything, axis=1)
            outputs.append(ops.einsum("be,beu->bu", weights, experts))
            gates.append(weights)
        return outputs, gates

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_tasks": self.num_tasks,
                "num_shared_experts": self.num_shared_experts,
                "num_task_experts": self.num_task_experts,
                "expert_units": self.expert_units,
                "shared_gate": self.shared_gate,
                "activation": self.activation,
                "dropout": self.dropout,
                "batch_norm": self.batch_norm,
            }
        )
        return config
