"""Raw rows (dicts of log values) <-> serving inputs and tf.train.Examples.

A raw row is what a client knows about an impression, python-typed as the
Beam readers produce it: categorical ids as int, strings as str,
multi-valued fields as lists (plus `<name>__weight` lists), numeric values
as float; `None` or an absent key means missing.
"""

import math

import numpy as np
import tensorflow as tf

from tfcvr.features import keys
from tfcvr.features import wire


def serving_input_specs(schema):
    """`{input name: (dtype, rank)}` of the `serving_default` signature."""
    specs = {}
    for f in schema.features:
        if f.is_categorical:
            dtype = (
                wire.DT_STRING
                if f.value_dtype == "string"
                else wire.DT_INT64
            )
            specs[f.name] = (dtype, 2 if f.is_multi_valued else 1)
            if f.is_multi_valued and f.weighted:
                specs[f.name + keys.WEIGHT_SUFFIX] = (wire.DT_FLOAT, 2)
        else:
            specs[f.name] = (wire.DT_FLOAT, 1)
    return specs


def _numpy_dtype(dtype):
    if dtype == wire.DT_STRING:
        return object
    if dtype in wire.INTEGER_DTYPES:
        return np.int64
    return np.float32


def _as_text(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def columns_from_rows(rows, schema):
    """Raw rows -> `{input name: numpy array}` for `serving_default`.

    Absent values get the missing-value markers of
    `tfcvr.features.wire`; multi-valued lists are padded to the
    longest list of the batch.
    """
    if not rows:
        raise ValueError("columns_from_rows needs at least one row.")
    specs = serving_input_specs(schema)
    completed = wire.complete_instances(
        [{k: v for k, v in row.items() if k in specs} for row in rows], specs
    )
    columns = {}
    for name, (dtype, _) in specs.items():
        values = [row[name] for row in completed]
        if dtype == wire.DT_STRING:
            values = [
                [_as_text(v) for v in value]
                if isinstance(value, list)
                else _as_text(value)
                for value in values
            ]
        columns[name] = np.array(values, dtype=_numpy_dtype(dtype))
    return columns


def transform_inputs_from_rows(rows, schema):
    """Raw rows -> the `FeatureTransform` input that training would parse.

    Multi-valued fields become RaggedTensors; weights are aligned with the
    ids (an absent or null weight is 1.0); single-valued fields carry the
    missing-value markers. The reference for checking the SavedModel.
    """
    columns = columns_from_rows(rows, schema)
    raw = {}
    for f in schema.features:
        if not f.is_multi_valued:
            raw[f.name] = tf.constant(columns[f.name])
            continue
        lists = [list(row.get(f.name) or []) for row in rows]
        lengths = [len(v) for v in lists]
        flat = [_as_text(v) if f.value_dtype == "string" else int(v)
                for v in sum(lists, [])]
        dtype = tf.string if f.value_dtype == "string" else tf.int64
        raw[f.name] = tf.RaggedTensor.from_row_lengths(
            tf.constant(flat, dtype=dtype, shape=[len(flat)]), lengths
        )
        if f.weighted:
            weights = []
            for row, n in zip(rows, lengths):
                given = list(row.get(f.name + keys.WEIGHT_SUFFIX) or [])[:n]
                given += [None] * (n - len(given))
                weights += [1.0 if w is None or (
                    isinstance(w, float) and math.isnan(w)) else float(w)
                    for w in given]
            raw[f.name + keys.WEIGHT_SUFFIX] = tf.RaggedTensor.from_row_lengths(
                tf.constant(weights, dtype=tf.float32, shape=[len(weights)]),
                lengths,
            )
    return raw


def example_from_row(row, schema):
    """One raw row -> `tf.train.Example` in the dataset-directory layout.

    A missing single-valued feature is left out of the Example (readers
    then use the parse default); a missing list is an empty list.
    """
    feature = {}
    for f in schema.features:
        value = row.get(f.name)
        if f.is_multi_valued:
            values = [] if value is None else list(value)
            feature[f.name] = _feature_list(values, f.value_dtype)
            if f.weighted:
                weights = row.get(f.name + keys.WEIGHT_SUFFIX)
                weights = [1.0] * len(values) if weights is None else weights
                feature[f.name + keys.WEIGHT_SUFFIX] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=list(weights))
                )
        elif f.is_categorical:
            if value is not None:
                feature[f.name] = _feature_list([value], f.value_dtype)
        elif not (
            value is None or (isinstance(value, float) and math.isnan(value))
        ):
            feature[f.name] = tf.train.Feature(
                float_list=tf.train.FloatList(value=[float(value)])
            )
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _feature_list(values, value_dtype):
    if value_dtype == "string":
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[_as_text(v) for v in values])
        )
    return tf.train.Feature(
        int64_list=tf.train.Int64List(value=[int(v) for v in values])
    )


def parse_raw_examples(serialized, schema):
    """Serialized `tf.train.Example`s -> raw feature tensors, in TF.

    Single-valued features become `(batch,)` tensors with the
    missing-value markers (`INT_MISSING`, `""`, NaN) where the Example has
    no value, whether the key is absent or its list is empty; multi-valued
    features (and weights) become RaggedTensors. Labels are ignored.
    """
    spec = {}
    for f in schema.features:
        dtype = tf.string if f.value_dtype == "string" else tf.int64
        if not f.is_categorical:
            dtype = tf.float32
        spec[f.name] = tf.io.RaggedFeature(dtype)
        if f.is_multi_valued and f.weighted:
            spec[f.name + keys.WEIGHT_SUFFIX] = tf.io.RaggedFeature(tf.float32)
    parsed = tf.io.parse_example(serialized, spec)
    raw = {}
    for f in schema.features:
        value = parsed[f.name]
        if f.is_multi_valued:
            raw[f.name] = value
            if f.weighted:
                raw[f.name + keys.WEIGHT_SUFFIX] = parsed[f.name + keys.WEIGHT_SUFFIX]
            continue
        if not f.is_categorical:
            marker = float("nan")
        elif f.value_dtype == "string":
            marker = ""
        else:
            marker = wire.INT_MISSING
        raw[f.name] = value.to_tensor(default_value=marker, shape=[None, 1])[
            :, 0
        ]
    return raw


def rows_from_examples(serialized, schema):
    """Serialized `tf.train.Example`s -> raw rows (labels dropped)."""
    parsed = parse_raw_examples(tf.constant(list(serialized)), schema)
    rows = [dict() for _ in range(len(serialized))]
    for name, value in parsed.items():
        if isinstance(value, tf.RaggedTensor):
            column = value.to_list()
        else:
            column = value.numpy().tolist()
        for row, v in zip(rows, column):
            v = _python_value(v)
            row[name] = None if v == "" else v
    return rows


def _python_value(value):
    if isinstance(value, list):
        return [_python_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, int) and value == wire.INT_MISSING:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
