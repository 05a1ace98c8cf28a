"""Raw rows <-> `tf.train.Example`, exactly as the dataset contract says.

Categorical values are stored raw (int64 or utf-8 bytes), multi-valued ones
as lists (with `<name>__weight` floats when weighted), numeric values as one
float, labels as one int64, extra columns as one float. A missing
single value is an absent key (so the fixed-length parser's default applies);
a multi-valued field with no values is an empty list.
"""

import math

import tensorflow as tf

from tfcvr.data.feature_transform import WEIGHT_SUFFIX


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _float(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def encode_example(row, schema):
    """Serialized `tf.train.Example` of one row dict (schema column names)."""
    features = {}
    for spec in schema.features:
        value = row.get(spec.name)
        if spec.is_multi_valued:
            values = [] if _missing(value) else list(value)[: spec.max_len]
            if spec.value_dtype == "string":
                features[spec.name] = _bytes([str(v).encode() for v in values])
            else:
                features[spec.name] = _int64([int(v) for v in values])
            if spec.weighted:
                weights = row.get(spec.name + WEIGHT_SUFFIX)
                weights = [1.0] * len(values) if weights is None else weights
                features[spec.name + WEIGHT_SUFFIX] = _float(
                    [float(w) for w in list(weights)[: len(values)]]
                )
        elif _missing(value):
            continue
        elif spec.is_categorical:
            if spec.value_dtype == "string":
                features[spec.name] = _bytes([str(value).encode()])
            else:
                features[spec.name] = _int64([int(value)])
        else:
            features[spec.name] = _float([float(value)])
    for label in schema.labels:
        features[label] = _int64([int(row[label])])
    for column in schema.extra_columns:
        value = row.get(column)
        if not _missing(value):
            features[column] = _float([float(value)])
    return tf.train.Example(
        features=tf.train.Features(feature=features)
    ).SerializeToString()


def write_tfrecords(path, rows, schema):
    """Writes rows (an iterable of dicts) as one gzip TFRecord file."""
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    count = 0
    with tf.io.TFRecordWriter(path, options) as writer:
        for row in rows:
            writer.write(encode_example(row, schema))
            count += 1
    return count
