import os

import tensorflow as tf

from tfcvr.features import keys
from tfcvr.features import wire


class FeatureTransform(tf.Module):
    """Raw feature values -> the model's inputs, in TensorFlow.

    The one implementation of vocabulary lookup, hashing and numeric
    normalisation: `tfcvr.data.make_dataset` applies it to parsed
    TFRecords and `tfcvr.export` puts it inside the SavedModel, so training
    and serving cannot disagree.

    Index layout (see `FeatureSpec`): 0 padding/missing, `1..num_oov` OOV
    buckets, then vocabulary entries in file order; hashed features map to
    `1 + fingerprint(value) % hash_buckets`. Numeric values become
    `(clip(log1p(max(x, 0)) if log else x) - mean) / std`; missing ones take
    `default`.

    Args:
        schema: `tfcvr.features.Schema`.
        vocab_dir: str or None. Directory holding the vocabulary files named
            by the schema (normally the dataset directory).

    Outputs of `__call__`: categorical `(batch,)` int32, multi-valued
    `(batch, max_len)` int32 (0-padded) plus `(batch, max_len)` float32
    `<name>__weight` for weighted fields, numeric `(batch,)` float32.
    """

    def __init__(self, schema, vocab_dir=None, name="feature_transform"):
        super().__init__(name=name)
        self.schema = schema
        self._tables = {}
        for spec in schema.categorical_features:
            if spec.hash_buckets is not None or spec.vocab_size == 0:
                continue
            if vocab_dir is None or spec.vocab_file is None:
                raise ValueError(
                    f"Feature `{spec.name}` has a vocabulary but no vocabulary "
                    f"file was given. Received: vocab_dir={vocab_dir!r}, "
                    f"vocab_file={spec.vocab_file!r}"
                )
            path = os.path.join(vocab_dir, spec.vocab_file)
            if not os.path.exists(path):
                raise ValueError(f"Vocabulary file not found: {path}")
            if path not in self._tables:
                self._tables[path] = tf.lookup.StaticVocabularyTable(
                    tf.lookup.TextFileInitializer(
                        path,
                        key_dtype=_tf_dtype(spec.value_dtype),
                        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                        value_dtype=tf.int64,
                        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                    ),
                    num_oov_buckets=spec.num_oov,
                )
        # Tracked by tf.Module so SavedModels keep the tables and copy the
        # vocabulary files as assets.
        self.tables = list(self._tables.values())
        self._table_of = {
            spec.name: self._tables[os.path.join(vocab_dir, spec.vocab_file)]
            for spec in schema.categorical_features
            if spec.hash_buckets is None and spec.vocab_size > 0
        }

    # === Parsing ===

    def parse_spec(self, include_labels=True, include_extra=False):
        """`tf.io.parse_example` features for the TFRecords of this schema."""
        spec = {}
        for f in self.schema.features:
            dtype = _tf_dtype(f.value_dtype)
            if f.is_multi_valued:
                spec[f.name] = tf.io.RaggedFeature(dtype)
                if f.weighted:
                    spec[f.name + keys.WEIGHT_SUFFIX] = tf.io.RaggedFeature(
                        tf.float32
                    )
            elif f.is_categorical:
                default = "" if f.value_dtype == "string" else wire.INT_MISSING
                spec[f.name] = tf.io.FixedLenFeature([], dtype, default)
            else:
                spec[f.name] = tf.io.FixedLenFeature(
                    [], tf.float32, float("nan")
                )
        if include_labels:
            for label in self.schema.labels:
                spec[label] = tf.io.FixedLenFeature([], tf.int64)
        if include_extra:
            for column in self.schema.extra_columns:
                spec[column] = tf.io.FixedLenFeature(
                    [], tf.float32, float("nan")
                )
        return spec

    # === Transform ===

    def __call__(self, raw):
        """Transforms a dict of raw batched values to model inputs."""
        out = {}
        for f in self.schema.features:
            if f.name not in raw:
                raise ValueError(
                    f"Missing input feature `{f.name}`. Expected: "
                    f"{list(self.schema.feature_names)}"
                )
            value = raw[f.name]
            if f.is_multi_valued:
                ragged = _to_ragged(value, f.value_dtype)
                ids = ragged.with_flat_values(
                    self._lookup(f, ragged.flat_values)
                )
                out[f.name] = tf.cast(
                    ids.to_tensor(
                        default_value=keys.PADDING_INDEX, shape=[None, f.max_len]
                    ),
                    tf.int32,
                )
                if f.weighted:
                    weights = raw.get(f.name + keys.WEIGHT_SUFFIX)
                    if weights is None:
                        weights = ragged.with_flat_values(
                            tf.ones(tf.shape(ragged.flat_values), tf.float32)
                        )
                    # An absent, short or NaN weight counts 1.0 (as in
                    # serving); padding positions are masked by index 0.
                    weights = _weights_matrix(weights, f.max_len)
                    out[f.name + keys.WEIGHT_SUFFIX] = tf.where(
                        tf.math.is_nan(weights), tf.ones_like(weights), weights
                    )
            elif f.is_categorical:
                value = tf.reshape(value, [-1])
                if f.value_dtype == "string":
                    value = tf.strings.as_string(value) if (
                        value.dtype != tf.string
                    ) else value
                    missing = tf.equal(value, "")
                else:
                    value = tf.cast(value, tf.int64)
                    missing = tf.equal(value, wire.INT_MISSING)
                ids = self._lookup(f, value)
                out[f.name] = tf.cast(
                    tf.where(missing, tf.zeros_like(ids), ids), tf.int32
                )
            else:
                x = tf.reshape(tf.cast(value, tf.float32), [-1])
                x = tf.where(tf.math.is_nan(x), tf.fill(tf.shape(x), f.default), x)
                if f.log:
                    x = tf.math.log1p(tf.maximum(x, 0.0))
                if f.clip_min is not None:
                    x = tf.maximum(x, f.clip_min)
                if f.clip_max is not None:
                    x = tf.minimum(x, f.clip_max)
                out[f.name] = (x - f.mean) / f.std
        return out

    def _lookup(self, spec, values):
        if spec.hash_buckets is not None:
            as_text = (
                values
                if values.dtype == tf.string
                else tf.strings.as_string(values)
            )
            return 1 + tf.strings.to_hash_bucket_fast(
                as_text, spec.hash_buckets
            )
        if spec.value_dtype == "string" and values.dtype != tf.string:
            values = tf.strings.as_string(values)
        if spec.value_dtype == "int64":
            values = tf.cast(values, tf.int64)
        if spec.vocab_size == 0:
            return 1 + tf.strings.to_hash_bucket_fast(
                tf.strings.as_string(values)
                if values.dtype != tf.string
                else values,
                spec.num_oov,
            )
        raw_ids = self._table_of[spec.name].lookup(values)
        # StaticVocabularyTable puts OOV after the vocabulary; move it first.
        in_vocab = raw_ids < spec.vocab_size
        return tf.where(
            in_vocab, raw_ids + 1 + spec.num_oov, raw_ids - spec.vocab_size + 1
        )


def _tf_dtype(value_dtype):
    return {"int64": tf.int64, "string": tf.string, "float32": tf.float32}[
        value_dtype
    ]


def _to_ragged(value, value_dtype):
    if isinstance(value, tf.RaggedTensor):
        return value
    if isinstance(value, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(value)
    value = tf.convert_to_tensor(value)
    if value.shape.rank == 1:
        value = tf.expand_dims(value, 1)
    # A dense padded matrix: "" / negative ids / NaN weights mark padding.
    if value.dtype == tf.string:
        mask = tf.not_equal(value, "")
    elif value.dtype.is_floating:
        mask = tf.logical_not(tf.math.is_nan(value))
    else:
        mask = tf.greater_equal(value, 0)
    return tf.ragged.boolean_mask(value, mask)


def _weights_matrix(weights, max_len):
    """`(batch, max_len)` weights aligned with the ids; absent entries 1.0.

    A dense matrix keeps its positions (NaN = weight 1, not padding), so it
    is padded/truncated rather than masked like the ids.
    """
    if isinstance(weights, tf.SparseTensor):
        weights = tf.RaggedTensor.from_sparse(weights)
    if isinstance(weights, tf.RaggedTensor):
        return tf.cast(weights, tf.float32).to_tensor(
            default_value=1.0, shape=[None, max_len]
        )
    weights = tf.cast(tf.convert_to_tensor(weights), tf.float32)
    if weights.shape.rank == 1:
        weights = tf.expand_dims(weights, 1)
    weights = weights[:, :max_len]
    pad = max_len - tf.shape(weights)[1]
    return tf.pad(weights, [[0, 0], [0, pad]], constant_values=1.0)
