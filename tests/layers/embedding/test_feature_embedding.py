import keras
import numpy as np

from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.layers import FeatureEmbedding
from tfcvr.testing import TestCase

DIM = 3


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def reference(schema, table, table_rows, kernel, bias, features, combiner):
    """FeatureEmbedding in NumPy: each field's rows of its table block,
    masked (weighted) pooling, `x * v + b`, in schema order."""
    fields = []
    numeric = 0
    for spec in schema.features:
        value = np.asarray(features[spec.name])
        if not spec.is_categorical:
            fields.append(value[:, None] * kernel[numeric] + bias[numeric])
            numeric += 1
            continue
        start, rows = table_rows[spec.embedding_group or spec.name]
        ids = np.where((value >= 0) & (value < rows), value, 0)
        vectors = table[start + ids]
        if not spec.is_multi_valued:
            fields.append(vectors)
            continue
        mask = (ids != 0).astype("float64")
        if spec.weighted:
            mask = mask * features[spec.name + keys.WEIGHT_SUFFIX]
        pooled = (vectors * mask[..., None]).sum(1)
        if combiner == "mean":
            pooled = pooled / np.maximum(np.abs(mask).sum(1, keepdims=True), 1)
        fields.append(pooled)
    return np.stack(fields, axis=1)


def mixed_schema():
    """Kinds interleaved (numeric first, multi-valued in the middle), two
    groups, hashing and several OOV buckets."""
    return Schema(features=[
        FeatureSpec("price", keys.NUMERIC),
        FeatureSpec("user", keys.CATEGORICAL_INT, vocab_size=6, num_oov=2),
        FeatureSpec("history", keys.MULTI_CATEGORICAL, vocab_size=5,
                    max_len=3, embedding_group="item", weighted=True),
        FeatureSpec("item", keys.CATEGORICAL_INT, vocab_size=5,
                    embedding_group="item"),
        FeatureSpec("tags", keys.MULTI_CATEGORICAL, hash_buckets=4, max_len=2),
        FeatureSpec("city", keys.CATEGORICAL_STRING, hash_buckets=7),
        FeatureSpec("age", keys.NUMERIC),
    ])


class FeatureEmbeddingTest(TestCase):
    def weights(self, layer):
        return (to_np(layer.fused_table()), to_np(layer.numeric_kernel),
                to_np(layer.numeric_bias))

    def check_against_reference(self, schema, features, **kwargs):
        for layout in ("fused", "per_table"):
            for mode in ("concat", "stack"):
                with self.subTest(layout=layout, output_mode=mode):
                    layer = FeatureEmbedding(schema, DIM, output_mode=mode,
                                             table_layout=layout, **kwargs)
                    out = to_np(layer(features))
                    table, kernel, bias = self.weights(layer)
                    expected = reference(schema, table, layer.table_rows,
                                         kernel, bias, features,
                                         layer.combiner)
                    if mode == "concat":
                        expected = expected.reshape(len(out), -1)
                    self.assertAllClose(out, expected, atol=1e-6)

    def test_matches_numpy_reference(self):
        for combiner in ("mean", "sum"):
            schema = mixed_schema()
            features, _ = self.batch(schema, batch_size=9, seed=4)
            self.check_against_reference(schema, features, combiner=combiner)

    def test_matches_numpy_reference_on_the_tiny_schema(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=7, seed=2)
        self.check_against_reference(schema, features)

    def test_one_block_per_table_shared_by_its_group(self):
        layer = FeatureEmbedding(mixed_schema(), DIM)
        layer.build()
        # user 1+2+6, item group 1+1+5, tags 1+4, city 1+7 rows, back to back.
        self.assertEqual(layer.table_rows, {"user": (0, 9), "item": (9, 7),
                                            "tags": (16, 5), "city": (21, 8)})
        self.assertEqual(tuple(layer.embeddings.shape), (29, DIM))
        self.assertEqual(len(layer.trainable_weights), 3)

    def test_fused_equals_per_table_on_the_same_weights(self):
        schema = mixed_schema()
        features, _ = self.batch(schema, batch_size=6, seed=8)
        old = FeatureEmbedding(schema, DIM, table_layout="per_table")
        new = FeatureEmbedding(schema, DIM)
        old.build()
        new.build()
        new.embeddings.assign(old.fused_table())
        new.numeric_kernel.assign(old.numeric_kernel)
        new.numeric_bias.assign(old.numeric_bias)
        self.assertAllClose(new(features), old(features), atol=1e-6)
        blocks = [to_np(t.embeddings) for t in old.tables.values()]
        self.assertAllClose(new.fused_table(), np.concatenate(blocks))
        # A table by name is the same rows in both layouts.
        for name in ("user", "item", "tags", "city"):
            self.assertAllClose(new.table(name), old.table(name))
        self.assertEqual(tuple(new.table("item").shape), (7, DIM))
        with self.assertRaisesRegex(ValueError, "No embedding table `history`"):
            new.table("history")

    def test_oov_and_out_of_range_indices_stay_in_their_table(self):
        schema = mixed_schema()
        layer = FeatureEmbedding(schema, DIM, output_mode="stack")
        layer.build()
        table = np.arange(29 * DIM, dtype="float32").reshape(29, DIM)
        layer.embeddings.assign(table)
        features, _ = self.batch(schema, batch_size=4, seed=1)
        # user: the second OOV bucket, padding, the last row, past the end.
        features["user"] = np.array([2, 0, 8, 9], "int32")
        features["item"] = np.array([1, -3, 6, 700], "int32")
        out = to_np(layer(features))
        user, item = 1, 3
        self.assertAllClose(out[:, user], table[[2, 0, 8, 0]])
        self.assertAllClose(out[:, item], table[[10, 9, 15, 9]])
        # Out-of-range values of a multi-valued field drop out of its pool.
        features["history"] = np.array([[1, 7, 0]] * 4, "int32")
        features["history" + keys.WEIGHT_SUFFIX] = np.ones((4, 3), "float32")
        out = to_np(layer(features))
        self.assertAllClose(out[:, 2], np.tile(table[10], (4, 1)))

    def test_int64_and_column_inputs(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=5, seed=3)
        layer = FeatureEmbedding(schema, DIM)
        expected = to_np(layer(features))
        wide = {k: (v.astype("int64") if v.dtype == np.int32 else v)
                for k, v in features.items()}
        wide["user"] = wide["user"][:, None]
        self.assertAllClose(layer(wide), expected)

    def test_additive_regularizer_is_the_same_in_both_layouts(self):
        schema = mixed_schema()
        old = FeatureEmbedding(schema, DIM, table_layout="per_table",
                               embeddings_regularizer=keras.regularizers.L2(0.1))
        new = FeatureEmbedding(schema, DIM,
                               embeddings_regularizer=keras.regularizers.L2(0.1))
        old.build()
        new.build()
        new.embeddings.assign(old.fused_table())
        penalty = 0.1 * np.sum(old.fused_table() ** 2)
        self.assertAllClose(sum(to_np(x) for x in old.losses), penalty, rtol=1e-5)
        self.assertAllClose(sum(to_np(x) for x in new.losses), penalty, rtol=1e-5)

    def test_mixed_precision_gathers_float32_rows(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=3)
        layer = FeatureEmbedding(schema, DIM, dtype="mixed_bfloat16")
        out = layer(features)
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "bfloat16")
        self.assertEqual(layer.embeddings.dtype, "float32")

    def test_serialization_and_old_configs(self):
        layer = FeatureEmbedding(mixed_schema(), DIM, combiner="sum")
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.table_layout, "fused")
        config = layer.get_config()
        config.pop("table_layout")
        self.assertEqual(
            FeatureEmbedding.from_config(config).table_layout, "per_table"
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: table_layout='rows'"):
            FeatureEmbedding(mixed_schema(), table_layout="rows")
        with self.assertRaisesRegex(ValueError, "missing input `item`"):
            features, _ = self.batch(self.tiny_schema(), batch_size=2)
            features.pop("item")
            FeatureEmbedding(self.tiny_schema(), DIM)(features)
