import keras
from keras import ops

from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.serialization import register_serializable


@register_serializable
class FeatureEmbedding(keras.layers.Layer):
    """Embeds every schema feature and concatenates the field vectors.

    Categorical field f with index x gets `E_f[x]`; a multi-valued field gets
    the masked mean (or sum) of its values' embeddings, weighted by
    `<name>__weight` when the schema says so; a numeric field x gets
    `x * v_f + b_f` so every field is a `(batch, dim)` vector. Features of
    one `embedding_group` share a table. Index 0 is padding.

    Args:
        schema: `tfcvr.features.Schema` or its dict.
        embedding_dim: int. Size of every field vector. Defaults to 16.
        combiner: str. `"mean"` or `"sum"` pooling of multi-valued fields.
            Defaults to `"mean"`.
        output_mode: str. `"concat"` gives `(batch, num_fields * dim)`,
            `"stack"` gives `(batch, num_fields, dim)`. Defaults to
            `"concat"`.
        embeddings_initializer: initializer. Defaults to
            `RandomUniform(-0.05, 0.05)`.
        embeddings_regularizer: regularizer or None.

    Inputs: dict of `(batch,)` int indices, `(batch, max_len)` int indices
    for multi-valued fields and `(batch,)` floats for numeric fields.
    """

    def __init__(
        self,
        schema,
        embedding_dim=16,
        combiner="mean",
        output_mode="concat",
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(schema, dict):
            schema = Schema.from_dict(schema)
        if not isinstance(schema, Schema):
            raise ValueError(
                f"schema must be a tfcvr Schema or its dict. Received: "
                f"schema={schema!r}"
            )
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(
                f"embedding_dim must be a positive int. Received: "
                f"embedding_dim={embedding_dim!r}"
            )
        if combiner not in ("mean", "sum"):
            raise ValueError(
                f"combiner must be 'mean' or 'sum'. Received: "
                f"combiner={combiner!r}"
            )
        if output_mode not in ("concat", "stack"):
            raise ValueError(
                f"output_mode must be 'concat' or 'stack'. Received: "
                f"output_mode={output_mode!r}"
            )
        self.schema = schema
        self.embedding_dim = embedding_dim
        self.combiner = combiner
        self.output_mode = output_mode
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.embeddings_regularizer = keras.regularizers.get(
            embeddings_regularizer
        )
        self.tables = {}
        for spec in schema.categorical_features:
            table = spec.embedding_group or spec.name
            if table not in self.tables:
                self.tables[table] = keras.layers.Embedding(
                    spec.input_dim,
                    embedding_dim,
                    embeddings_initializer=self.embeddings_initializer,
                    embeddings_regularizer=self.embeddings_regularizer,
                    dtype=self.dtype_policy,
                    name=f"embedding_{table}",
                )
        self.num_fields = len(schema.features)

    def build(self, input_shape=None):
        numeric = self.schema.numeric_features
        if numeric:
            self.numeric_kernel = self.add_weight(
                name="numeric_kernel",
                shape=(len(numeric), self.embedding_dim),
                initializer=self.embeddings_initializer,
            )
            self.numeric_bias = self.add_weight(
                name="numeric_bias",
                shape=(len(numeric), self.embedding_dim),
                initializer="zeros",
            )
        for spec in self.schema.categorical_features:
            table = self.tables[spec.embedding_group or spec.name]
            if not table.built:
                table.build((None,))
        self.built = True

    def call(self, inputs):
        fields = []
        numeric_index = 0
        for spec in self.schema.features:
            if spec.name not in inputs:
                raise ValueError(
                    f"FeatureEmbedding is missing input `{spec.name}`. "
                    f"Received keys: {sorted(inputs)}"
                )
            value = inputs[spec.name]
            if not spec.is_categorical:
                x = ops.reshape(ops.cast(value, self.compute_dtype), (-1, 1))
                fields.append(
                    x * self.numeric_kernel[numeric_index]
                    + self.numeric_bias[numeric_index]
                )
                numeric_index += 1
                continue
            table = self.tables[spec.embedding_group or spec.name]
            ids = ops.cast(value, "int32")
            if not spec.is_multi_valued:
                fields.append(table(ops.reshape(ids, (-1,))))
                continue
            vectors = table(ids)
            mask = ops.cast(
                ops.not_equal(ids, keys.PADDING_INDEX), self.compute_dtype
            )
            if spec.weighted and spec.name + keys.WEIGHT_SUFFIX in inputs:
                mask = mask * ops.cast(
                    inputs[spec.name + keys.WEIGHT_SUFFIX], self.compute_dtype
                )
            pooled = ops.sum(vectors * ops.expand_dims(mask, -1), axis=1)
            if self.combiner == "mean":
                count = ops.sum(ops.abs(mask), axis=1, keepdims=True)
                pooled = pooled / ops.maximum(count, 1.0)
            fields.append(pooled)
        if self.output_mode == "stack":
            return ops.stack(fields, axis=1)
        return ops.concatenate(fields, axis=-1)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "stack":
            return (None, self.num_fields, self.embedding_dim)
        return (None, self.num_fields * self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "schema": self.schema.to_dict(),
                "embedding_dim": self.embedding_dim,
                "combiner": self.combiner,
                "output_mode": self.output_mode,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
            }
        )
        return config
