import keras
import numpy as np
from keras import ops

from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.serialization import register_serializable

TABLE_LAYOUTS = ("fused", "per_table")


@register_serializable
class FeatureEmbedding(keras.layers.Layer):
    """Embeds every schema feature and concatenates the field vectors.

    Categorical field f with index x gets `E_f[x]`; a multi-valued field gets
    the masked mean (or sum) of its values' embeddings, weighted by
    `<name>__weight` when the schema says so; a numeric field x gets
    `x * v_f + b_f` so every field is a `(batch, dim)` vector. Features of
    one `embedding_group` share a table. Index 0 is padding; an index
    outside `[0, input_dim)` counts as index 0.

    With `table_layout="fused"` every table is a block of rows of one
    variable, `E_f[x] = E[offset_f + x]`, so a batch is one gather whatever
    the number of fields (a table per field costs a gather, a cast and a
    gradient scatter per field). Additive regularizers (L1, L2) give the
    same penalty in both layouts.

    Args:
        schema: `tfcvr.features.Schema` or its dict.
        embedding_dim: int. Size of every field vector. Defaults to 16.
        combiner: str. `"mean"` or `"sum"` pooling of multi-valued fields.
            Defaults to `"mean"`.
        output_mode: str. `"concat"` gives `(batch, num_fields * dim)`,
            `"stack"` gives `(batch, num_fields, dim)`, fields in schema
            order. Defaults to `"concat"`.
        embeddings_initializer: initializer. Defaults to
            `RandomUniform(-0.05, 0.05)`.
        embeddings_regularizer: regularizer or None.
        table_layout: str. `"fused"`: one variable `embeddings` holding
            every table; `"per_table"`: one `keras.layers.Embedding` per
            table, the layout of files saved before tables were fused (a
            config without `table_layout` loads with it). Defaults to
            `"fused"`.

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
        table_layout="fused",
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
        if table_layout not in TABLE_LAYOUTS:
            raise ValueError(
                f"table_layout must be one of {list(TABLE_LAYOUTS)}. "
                f"Received: table_layout={table_layout!r}"
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
        self.table_layout = table_layout
        self.num_fields = len(schema.features)
        # Table name -> (first row in the fused variable, rows).
        self.table_rows = {}
        for spec in schema.categorical_features:
            table = _table_name(spec)
            if table not in self.table_rows:
                start = sum(rows for _, rows in self.table_rows.values())
                self.table_rows[table] = (start, spec.input_dim)
        if table_layout == "per_table":
            self.tables = {
                table: keras.layers.Embedding(
                    rows,
                    embedding_dim,
                    embeddings_initializer=self.embeddings_initializer,
                    embeddings_regularizer=self.embeddings_regularizer,
                    dtype=self.dtype_policy,
                    name=f"embedding_{table}",
                )
                for table, (_, rows) in self.table_rows.items()
            }
        else:
            self._plan_fused_gather()

    def _plan_fused_gather(self):
        """Columns of the one index matrix: single-valued fields first,
        then each multi-valued field's `max_len` positions."""
        features = self.schema.features
        single = [f for f in features if f.is_categorical and not f.is_multi_valued]
        multi = [f for f in features if f.is_multi_valued]
        numeric = [f for f in features if not f.is_categorical]
        self._single, self._multi, self._numeric = single, multi, numeric
        columns = single + [f for f in multi for _ in range(f.max_len)]
        self._row_offset = np.array(
            [self.table_rows[_table_name(f)][0] for f in columns], "int32"
        )
        self._row_limit = np.array([f.input_dim for f in columns], "int32")
        # Blocks come out single, multi, numeric; this puts them back in
        # schema order (None when they already are).
        kind_order = [f.name for f in single + multi + numeric]
        order = [kind_order.index(f.name) for f in features]
        self._field_order = (
            None if order == sorted(order) else np.array(order, "int32")
        )

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
        if self.table_layout == "per_table":
            for table in self.tables.values():
                if not table.built:
                    table.build((None,))
        elif self.table_rows:
            self.embeddings = self.add_weight(
                name="embeddings",
                shape=(
                    sum(rows for _, rows in self.table_rows.values()),
                    self.embedding_dim,
                ),
                initializer=self.embeddings_initializer,
                regularizer=self.embeddings_regularizer,
                # Gather float32 rows, then cast the few gathered ones
                # (as keras.layers.Embedding does), never the whole table.
                autocast=False,
            )
        self.built = True

    def call(self, inputs):
        missing = [f.name for f in self.schema.features if f.name not in inputs]
        if missing:
            raise ValueError(
                f"FeatureEmbedding is missing input `{missing[0]}`. "
                f"Received keys: {sorted(inputs)}"
            )
        if self.table_layout == "per_table":
            fields = self._per_table_fields(inputs)
            if self.output_mode == "stack":
                return ops.stack(fields, axis=1)
            return ops.concatenate(fields, axis=-1)
        blocks = self._fused_blocks(inputs)
        if self.output_mode == "stack":
            return blocks
        return ops.reshape(blocks, (-1, self.num_fields * self.embedding_dim))

    # === Fused layout ===

    def _fused_blocks(self, inputs):
        """`(batch, num_fields, dim)` field vectors in schema order."""
        blocks = []
        if self._single or self._multi:
            columns = [
                ops.stack([_ids(inputs[f.name], rank=1) for f in self._single],
                          axis=1)
            ] if self._single else []
            columns += [_ids(inputs[f.name]) for f in self._multi]
            ids = columns[0] if len(columns) == 1 else ops.concatenate(
                columns, axis=1
            )
            in_range = ops.logical_and(
                ops.greater_equal(ids, 0), ops.less(ids, self._row_limit)
            )
            ids = ops.where(in_range, ids, 0)
            vectors = ops.cast(
                ops.take(self.embeddings, ids + self._row_offset, axis=0),
                self.compute_dtype,
            )
            num_single = len(self._single)
            if num_single and not self._multi:
                # A slice of it all would cost a full-size zero gradient.
                blocks.append(vectors)
            elif num_single:
                blocks.append(vectors[:, :num_single])
            start = num_single
            pooled = []
            for spec in self._multi:
                stop = start + spec.max_len
                pooled.append(
                    self._pool(inputs, spec, ids[:, start:stop],
                               vectors[:, start:stop])
                )
                start = stop
            if pooled:
                blocks.append(ops.stack(pooled, axis=1))
        if self._numeric:
            x = ops.stack(
                [ops.cast(ops.reshape(inputs[f.name], (-1,)), self.compute_dtype)
                 for f in self._numeric],
                axis=1,
            )
            blocks.append(
                ops.expand_dims(x, -1) * self.numeric_kernel + self.numeric_bias
            )
        fields = blocks[0] if len(blocks) == 1 else ops.concatenate(blocks, axis=1)
        if self._field_order is not None:
            fields = ops.take(fields, self._field_order, axis=1)
        return fields

    # === Per-table layout ===

    def _per_table_fields(self, inputs):
        fields = []
        numeric_index = 0
        for spec in self.schema.features:
            value = inputs[spec.name]
            if not spec.is_categorical:
                x = ops.reshape(ops.cast(value, self.compute_dtype), (-1, 1))
                fields.append(
                    x * self.numeric_kernel[numeric_index]
                    + self.numeric_bias[numeric_index]
                )
                numeric_index += 1
                continue
            table = self.tables[_table_name(spec)]
            ids = _ids(value)
            ids = ops.where(
                ops.logical_and(ops.greater_equal(ids, 0),
                                ops.less(ids, spec.input_dim)),
                ids, 0,
            )
            if not spec.is_multi_valued:
                fields.append(table(ops.reshape(ids, (-1,))))
                continue
            fields.append(self._pool(inputs, spec, ids, table(ids)))
        return fields

    def _pool(self, inputs, spec, ids, vectors):
        """Masked mean (or sum) of a multi-valued field's `(batch,
        max_len, dim)` vectors."""
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
        return pooled

    # === Tables by name ===

    def table(self, name):
        """The `(rows, dim)` embedding table `name` (a feature's, or its
        `embedding_group`'s) in either layout: a slice of the fused
        variable, so gradients reach it, or the per-table layer's."""
        if name not in self.table_rows:
            raise ValueError(
                f"No embedding table `{name}`. Received: name={name!r}; "
                f"tables: {sorted(self.table_rows)}"
            )
        if self.table_layout == "per_table":
            return self.tables[name].embeddings
        start, rows = self.table_rows[name]
        return self.embeddings[start:start + rows]

    def table_rows_of(self, name):
        """`(variable, first_row)`: the variable holding table `name` and
        the row where it starts (the fused variable and its offset, or the
        per-table layer's variable and 0), for layers that gather the
        table's rows themselves (`GraphPropagation(row_offset=...)`):
        gathering from the variable keeps the gradient sparse, where
        `table(name)`, a slice, would copy the fused table on every step."""
        self.table(name)  # validates the name
        if self.table_layout == "per_table":
            return self.tables[name].embeddings, 0
        return self.embeddings, self.table_rows[name][0]

    # === Layout conversion and serialization ===

    def fused_table(self):
        """The `(rows, dim)` table of the fused layout, as numpy: this
        layer's per-table weights stacked in `table_rows` order (or its
        fused table), to move a per-table model to the fused layout."""
        if self.table_layout == "fused":
            return keras.ops.convert_to_numpy(self.embeddings)
        return np.concatenate(
            [keras.ops.convert_to_numpy(table.embeddings)
             for table in self.tables.values()],
            axis=0,
        )

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
                "table_layout": self.table_layout,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Saved before tables were fused: the weights are per table.
        return cls(**{"table_layout": "per_table", **config})


def _table_name(spec):
    return spec.embedding_group or spec.name


def _ids(value, rank=None):
    """int32 indices (of `rank` dimensions); no op when they already are."""
    if keras.backend.standardize_dtype(value.dtype) != "int32":
        value = ops.cast(value, "int32")
    if rank == 1 and len(value.shape) != 1:
        value = ops.reshape(value, (-1,))
    return value
