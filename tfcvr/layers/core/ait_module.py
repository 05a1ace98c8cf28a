import keras
from keras import ops

from tfcvr.serialization import register_serializable


@register_serializable
class AITModule(keras.layers.Layer):
    """Adaptive Information Transfer: self-attention pooling of L vectors.

    For items `u` (AITM: the transferred `p_{t-1}` and the task's own
    `q_t`), `w_u = softmax_u(<Q u, K u> / sqrt(k))` over the L items and
    `z = sum_u w_u V u`, with bias-free `(d, k)` maps Q, K, V.
    Reference: Xi et al., "Modeling the Sequential Dependence among
    Audience Multi-step Conversions with Multi-task Learning in Targeted
    Display Advertising", KDD 2021 (official code: k = d = 32,
    kernels drawn from N(0, 0.01) with an L2 penalty of 1e-6).

    Args:
        attention_dim: int or None. k; None uses the input width d, as the
            official code does. Defaults to None.
        kernel_initializer: initializer. Defaults to `"glorot_uniform"`.
        kernel_regularizer: regularizer or None.

    Input: list of L >= 1 tensors `(batch, d)`. Output `(batch, k)`;
    `call(inputs, return_weights=True)` also returns the attention weights
    `(batch, L)`, rows summing to 1.
    """

    def __init__(
        self,
        attention_dim=None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention_dim is not None and (
            isinstance(attention_dim, bool)
            or not isinstance(attention_dim, int)
            or attention_dim < 1
        ):
            raise ValueError(
                "attention_dim must be a positive int or None. Received: "
                f"attention_dim={attention_dim!r}"
            )
        self.attention_dim = attention_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if not shapes or any(len(s) != 2 for s in shapes):
            raise ValueError(
                "AITModule expects a non-empty list of (batch, d) tensors. "
                f"Received: shapes={shapes}"
            )
        widths = {s[-1] for s in shapes}
        if len(widths) != 1:
            raise ValueError(
                "AITModule inputs must share their width d. Received: "
                f"shapes={shapes}"
            )
        d = widths.pop()
        k = self.attention_dim or d
        for name in ("query", "key", "value"):
            setattr(
                self,
                f"{name}_kernel",
                self.add_weight(
                    name=f"{name}_kernel",
                    shape=(d, k),
                    initializer=self.kernel_initializer,
                    regularizer=self.kernel_regularizer,
                ),
            )
        self.built = True

    def call(self, inputs, return_weights=False):
        items = ops.stack(list(inputs), axis=1)  # (batch, L, d)
        query = ops.matmul(items, self.query_kernel)
        key = ops.matmul(items, self.key_kernel)
        value = ops.matmul(items, self.value_kernel)
        scale = ops.sqrt(ops.cast(ops.shape(query)[-1], query.dtype))
        scores = ops.sum(query * key, axis=-1) / scale  # (batch, L)
        weights = ops.softmax(scores, axis=-1)
        z = ops.sum(ops.expand_dims(weights, -1) * value, axis=1)
        if return_weights:
            return z, weights
        return z

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0])
        return shape[:-1] + (self.attention_dim or shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_dim": self.attention_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config
