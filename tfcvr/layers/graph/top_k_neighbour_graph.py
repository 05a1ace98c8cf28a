import math

import keras
from keras import ops

from tfcvr.serialization import register_serializable

WEIGHTINGS = ("uniform", "softmax")

# Cosines lie in [-1, 1]: an excluded column scores _EXCLUDED, the row
# itself _SELF, and any score below _VALID_ABOVE marks an empty slot.
_EXCLUDED = -4.0
_SELF = -8.0
_VALID_ABOVE = -2.0


@register_serializable
class TopKNeighbourGraph(keras.layers.Layer):
    """Top-K cosine-similarity neighbour graph of the rows of a table.

    For each row `i` of an `(N, d)` embedding table, `N_K(i)` holds the `K`
    other rows `j` of highest `s_ij = cos(e_i, e_j)`, with weights
    `α_ij = 1 / |N_K(i)|` (`"uniform"`) or `α_ij = softmax_j(s_ij / τ)` over
    `N_K(i)` (`"softmax"`); each row's weights sum to 1. Rows that
    `node_mask` excludes and rows of zero norm (cosine undefined) neither
    have nor are neighbours: their weights are 0. A row with fewer than `K`
    eligible rows keeps the ones there are; an empty slot points at the row
    itself with weight 0, so a gather never reads a foreign row for it.

    The build never holds an `N × N` matrix. Rows are processed in blocks
    of `block_size`; columns are cut into `≈ sqrt(N / (K + 1)) / 2`-wide
    groups and each block first takes only the maximum of every group
    (`block_size × column_block_size` scores at a time). The `K + 1` groups
    of highest maximum contain the row's exact top `K` (each of the top `K`
    lies in a group whose maximum is at least the `K`-th score, and at most
    `K + 1` groups, the row's own included, reach it), so the scores are
    recomputed on those groups alone and the top `K` taken there. Cost:
    the `N² d` similarity products, one max-reduction over them, and top-K
    over `O(N sqrt(N K))` candidates; memory `O(block_size · (column_block_size
    + sqrt(N K) d))`. Ties are broken by the lower index.

    Use it eagerly, once per table (it is a graph *builder*: the loops run
    in Python over concrete shapes); `GraphPropagation` uses its output.

    Args:
        num_neighbours: int. `K`. Defaults to 10.
        weighting: str. `"uniform"` or `"softmax"`. Defaults to `"uniform"`.
        temperature: float. `τ` of `"softmax"`. Defaults to 0.1.
        block_size: int. Rows scored at a time. Defaults to 512.
        column_block_size: int. Columns scored at a time within a block
            (rounded to whole groups). Defaults to 8192.
        epsilon: float. Rows of norm at most this have no cosine. Defaults
            to 1e-12.

    Call: `embeddings` `(N, d)`, optional `node_mask` `(N,)` bool (True =
    may have and be a neighbour). Returns `(indices, weights)`, `(N, K)`
    int32 and `(N, K)` float32.

    Example:
        indices, weights = tfcvr.layers.TopKNeighbourGraph(10)(table)
    """

    def __init__(
        self,
        num_neighbours=10,
        weighting="uniform",
        temperature=0.1,
        block_size=512,
        column_block_size=8192,
        epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive_int(num_neighbours=num_neighbours)
        _check_positive_int(block_size=block_size)
        _check_positive_int(column_block_size=column_block_size)
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {WEIGHTINGS}. Received: "
                f"weighting={weighting!r}"
            )
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(
                f"temperature must be > 0. Received: temperature={temperature!r}"
            )
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon!r}")
        self.num_neighbours = num_neighbours
        self.weighting = weighting
        self.temperature = temperature
        self.block_size = block_size
        self.column_block_size = column_block_size
        self.epsilon = epsilon

    def call(self, embeddings, node_mask=None):
        x = ops.cast(ops.convert_to_tensor(embeddings), "float32")
        if len(x.shape) != 2 or x.shape[0] is None:
            raise ValueError(
                "TopKNeighbourGraph takes a concrete (N, d) table. Received: "
                f"shape={tuple(x.shape)}"
            )
        n, k = int(x.shape[0]), self.num_neighbours
        norms = ops.sqrt(ops.sum(ops.square(x), axis=-1))
        valid = ops.greater(norms, self.epsilon)
        if node_mask is not None:
            mask = ops.convert_to_tensor(node_mask)
            if tuple(mask.shape) != (n,):
                raise ValueError(
                    f"node_mask must have shape ({n},). Received: "
                    f"shape={tuple(mask.shape)}"
                )
            valid = ops.logical_and(valid, ops.cast(mask, "bool"))
        unit = ops.where(
            valid[:, None], x / ops.maximum(norms, self.epsilon)[:, None], 0.0
        )
        group = _group_width(n, k)
        num_groups = -(-n // group)
        # One more coordinate carries the exclusion: the query side has 1
        # there and the column side 0 (eligible) or _EXCLUDED, so the
        # similarity product itself scores excluded and padding columns
        # below every cosine.
        column_side = ops.concatenate(
            [unit, ops.where(valid, 0.0, _EXCLUDED)[:, None]], axis=-1
        )
        padding = num_groups * group - n
        if padding:
            pad = ops.concatenate(
                [ops.zeros((padding, x.shape[1])),
                 ops.full((padding, 1), _EXCLUDED)], axis=-1
            )
            column_side = ops.concatenate([column_side, pad], axis=0)
        query_side = ops.concatenate([unit, ops.ones((n, 1))], axis=-1)
        width = max(group, self.column_block_size // group * group)
        tiles = [
            ops.transpose(column_side[start:start + width])
            for start in range(0, num_groups * group, width)
        ]
        indices, weights = [], []
        for start in range(0, n, self.block_size):
            stop = min(start + self.block_size, n)
            block_indices, block_weights = self._block(
                query_side[start:stop], column_side, tiles, group,
                ops.arange(start, stop, dtype="int32"), valid[start:stop],
            )
            indices.append(block_indices)
            weights.append(block_weights)
        return ops.concatenate(indices, axis=0), ops.concatenate(weights, axis=0)

    def _block(self, query, column_side, tiles, group, rows, row_valid):
        b, k = int(query.shape[0]), self.num_neighbours
        group_max = ops.concatenate(
            [ops.max(ops.reshape(ops.matmul(query, tile), (b, -1, group)), -1)
             for tile in tiles],
            axis=1,
        )
        top_groups = min(k + 1, int(group_max.shape[1]))
        _, group_ids = ops.top_k(group_max, top_groups)
        columns = ops.reshape(
            group_ids[:, :, None] * group
            + ops.arange(group, dtype="int32")[None, None, :],
            (b, top_groups * group),
        )
        candidates = ops.take(column_side, columns, axis=0)
        scores = ops.einsum("bd,bmd->bm", query, candidates)
        scores = ops.where(ops.equal(columns, rows[:, None]), _SELF, scores)
        kept = min(k, top_groups * group)
        scores, position = ops.top_k(scores, kept)
        neighbours = ops.take_along_axis(columns, position, axis=1)
        present = ops.logical_and(
            ops.greater(scores, _VALID_ABOVE), row_valid[:, None]
        )
        if kept < k:
            fill = k - kept
            neighbours = ops.concatenate(
                [neighbours, ops.zeros((b, fill), "int32")], axis=1)
            scores = ops.concatenate([scores, ops.zeros((b, fill))], axis=1)
            present = ops.concatenate(
                [present, ops.zeros((b, fill), "bool")], axis=1)
        presence = ops.cast(present, "float32")
        if self.weighting == "uniform":
            weights = presence / ops.maximum(
                ops.sum(presence, axis=1, keepdims=True), 1.0)
        else:
            logits = ops.where(present, scores / self.temperature, -1e9)
            shifted = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))
            shifted = shifted * presence
            weights = shifted / ops.maximum(
                ops.sum(shifted, axis=1, keepdims=True), 1e-30)
        neighbours = ops.where(present, neighbours, rows[:, None])
        return ops.cast(neighbours, "int32"), weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_neighbours": self.num_neighbours,
                "weighting": self.weighting,
                "temperature": self.temperature,
                "block_size": self.block_size,
                "column_block_size": self.column_block_size,
                "epsilon": self.epsilon,
            }
        )
        return config


def _group_width(n, k):
    """Columns per group. `sqrt(N / (K + 1))` would balance the group maxima
    (`N / width` top-k elements per row) against the candidates (`(K + 1)
    width`) if both cost alike; a candidate costs a gathered d-vector,
    several times a top-k element, so half of it (measured: about 2x faster
    candidates at 10^5 nodes). Rounded to a multiple of 16 once that large,
    so the reductions vectorise."""
    width = math.sqrt(n / (k + 1)) / 2
    if width >= 16:
        return int(16 * round(width / 16))
    return max(1, round(width))


def _check_positive_int(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive int. Received: {name}={value!r}"
            )
