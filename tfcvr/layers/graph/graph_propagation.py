import keras
import numpy as np
from keras import ops

from tfcvr.serialization import register_serializable

LAYER_COMBINATIONS = ("last", "mean")


@register_serializable
class GraphPropagation(keras.layers.Layer):
    """Message passing over a fixed neighbour graph, for a batch of ids.

    One hop over a trainable table `E` is the LightGCN-style
    `ẽ_i = w_self e_i + Σ_{j ∈ N(i)} α_ij e_j`, i.e. `Â = w_self I + A` with
    `A_ij = α_ij`; `hops = H` gives `e^(H) = Â^H e` (`"last"`) or LightGCN's
    layer mean `(1/(H+1)) Σ_{h=0..H} Â^h e` (`"mean"`). Only the rows a
    batch needs are gathered (`(K + 1)^H` per id), so a step never touches
    the whole table. The graph, `(N, K)` neighbour indices and weights, is
    held in non-trainable weights: it is saved in `.keras` files and in
    exported SavedModels. Until `set_graph` is called the graph has no
    edges (every `α` is 0). Gradients reach every gathered row of `E`.

    Reference: He et al., "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation", SIGIR 2020 (propagation and
    layer mean, here without degree normalisation: `α` comes from the
    graph builder, e.g. `TopKNeighbourGraph`).

    Args:
        num_nodes: int. Rows `N` of the table the graph is over.
        num_neighbours: int. `K`, neighbour slots per node.
        self_weight: float. `w_self`. Defaults to 1.0.
        hops: int. `H >= 1`. Defaults to 1.
        layer_combination: str. `"last"` or `"mean"`. Defaults to `"last"`.

    Call: `[table, ids]`, `table` `(rows, d)` (the trainable embedding
    matrix, passed as a tensor) whose rows `row_offset ... row_offset + N`
    are the graph's nodes, `ids` int node ids of any shape; returns
    `ids.shape + (d,)`. `row_offset` (default 0) lets the graph read its
    node rows out of a larger fused table (`FeatureEmbedding.table_rows_of`)
    without slicing it, which would copy the table and make its gradient
    dense on every step.

    Example:
        propagation = tfcvr.layers.GraphPropagation(num_nodes=n, num_neighbours=10)
        propagation.set_graph(*tfcvr.layers.TopKNeighbourGraph(10)(frozen_table))
        vectors = propagation([embedding_layer.embeddings, ids])
    """

    def __init__(
        self,
        num_nodes,
        num_neighbours,
        self_weight=1.0,
        hops=1,
        layer_combination="last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_nodes", num_nodes),
                            ("num_neighbours", num_neighbours),
                            ("hops", hops)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive int. Received: {name}={value!r}"
                )
        if isinstance(self_weight, bool) or not isinstance(
            self_weight, (int, float)
        ):
            raise ValueError(
                f"self_weight must be a number. Received: "
                f"self_weight={self_weight!r}"
            )
        if layer_combination not in LAYER_COMBINATIONS:
            raise ValueError(
                f"layer_combination must be one of {LAYER_COMBINATIONS}. "
                f"Received: layer_combination={layer_combination!r}"
            )
        self.num_nodes = num_nodes
        self.num_neighbours = num_neighbours
        self.self_weight = self_weight
        self.hops = hops
        self.layer_combination = layer_combination

    def build(self, input_shape=None):
        shape = (self.num_nodes, self.num_neighbours)
        self.neighbour_indices = self.add_weight(
            name="neighbour_indices", shape=shape, dtype="int32",
            initializer="zeros", trainable=False,
        )
        self.neighbour_weights = self.add_weight(
            name="neighbour_weights", shape=shape, dtype="float32",
            initializer="zeros", trainable=False,
        )
        self.built = True

    def set_graph(self, indices, weights):
        """Stores a graph: `(N, K)` indices in `[0, N)` and finite weights."""
        if not self.built:
            self.build()
        indices = np.asarray(keras.ops.convert_to_numpy(indices))
        weights = np.asarray(keras.ops.convert_to_numpy(weights), "float32")
        shape = (self.num_nodes, self.num_neighbours)
        if indices.shape != shape or weights.shape != shape:
            raise ValueError(
                f"The graph must be two {shape} arrays. Received: "
                f"indices {indices.shape}, weights {weights.shape}"
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_nodes):
            raise ValueError(
                f"Neighbour indices must lie in [0, {self.num_nodes}). "
                f"Received: [{indices.min()}, {indices.max()}]"
            )
        if not np.all(np.isfinite(weights)):
            raise ValueError("Neighbour weights must be finite.")
        self.neighbour_indices.assign(indices.astype("int32"))
        self.neighbour_weights.assign(weights)

    def call(self, inputs, row_offset=0):
        table, ids = inputs
        ids = ops.cast(ids, "int32")
        levels = self._levels(table, ids, self.hops, row_offset)
        if self.layer_combination == "last":
            return levels[-1]
        return ops.mean(ops.stack(levels, axis=0), axis=0)

    def _levels(self, table, ids, hops, row_offset):
        """`[e^(0)_ids, ..., e^(hops)_ids]` with `e^(h) = Â e^(h-1)`."""
        if hops == 0:
            return [ops.take(table, ids + row_offset, axis=0)]
        own = self._levels(table, ids, hops - 1, row_offset)
        neighbours = ops.take(self.neighbour_indices, ids, axis=0)
        alpha = ops.cast(
            ops.take(self.neighbour_weights, ids, axis=0), table.dtype
        )
        around = self._levels(table, neighbours, hops - 1, row_offset)[-1]
        step = self.self_weight * own[-1] + ops.sum(
            ops.expand_dims(alpha, -1) * around, axis=-2
        )
        return own + [step]

    def compute_output_shape(self, input_shape):
        table_shape, ids_shape = input_shape
        return tuple(ids_shape) + (table_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_nodes": self.num_nodes,
                "num_neighbours": self.num_neighbours,
                "self_weight": self.self_weight,
                "hops": self.hops,
                "layer_combination": self.layer_combination,
            }
        )
        return config
