import keras

from tfcvr.serialization import register_serializable


@register_serializable
class MLP(keras.layers.Layer):
    """A stack of Dense layers: `h_{l+1} = act(W_l h_l + b_l)`.

    Args:
        hidden_units: list of int. Width of each layer. Defaults to
            `[256, 128]`.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout rate after each layer. Defaults to 0.
        batch_norm: bool. Batch normalisation before the activation.
            Defaults to False.
        kernel_regularizer: regularizer or None.

    Input `(batch, d)`; output `(batch, hidden_units[-1])` (the input itself
    when `hidden_units` is empty).
    """

    def __init__(
        self,
        hidden_units=(256, 128),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_units = list(hidden_units)
        if any((not isinstance(u, int)) or u < 1 for u in hidden_units):
            raise ValueError(
                f"hidden_units must be positive ints. Received: "
                f"hidden_units={hidden_units}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"dropout must be in [0, 1). Received: dropout={dropout}"
            )
        self.hidden_units = hidden_units
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.dense_layers = []
        self.norm_layers = []
        self.dropout_layers = []
        for i, units in enumerate(hidden_units):
            self.dense_layers.append(
                keras.layers.Dense(
                    units,
                    # Fused into the matmul unless batch norm sits between.
                    activation=None if batch_norm else self.activation,
                    use_bias=not batch_norm,
                    kernel_regularizer=self.kernel_regularizer,
                    dtype=self.dtype_policy,
                    name=f"dense_{i}",
                )
            )
            if batch_norm:
                self.norm_layers.append(
                    keras.layers.BatchNormalization(
                        dtype=self.dtype_policy, name=f"batch_norm_{i}"
                    )
                )
            if dropout > 0:
                self.dropout_layers.append(
                    keras.layers.Dropout(dropout, name=f"dropout_{i}")
                )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, dense in enumerate(self.dense_layers):
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
            if self.batch_norm:
                self.norm_layers[i].build(shape)
        self.built = True

    def call(self, x, training=False):
        for i, dense in enumerate(self.dense_layers):
            x = dense(x)
            if self.batch_norm:
                x = self.activation(self.norm_layers[i](x, training=training))
            if self.dropout > 0:
                x = self.dropout_layers[i](x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        if not self.hidden_units:
            return tuple(input_shape)
        return tuple(input_shape)[:-1] + (self.hidden_units[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "batch_norm": self.batch_norm,
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config
