"""Raw sample rows for warmup requests and export checks.

Either real rows read back from a dataset directory's TFRecords, or
synthetic rows built from the schema and its vocabulary files: tokens
drawn from the vocabulary, some unseen ids (OOV), some missing values,
lists longer than `max_len` (truncation) and numeric values inside the
training range.
"""

import glob
import math
import os

import numpy as np
import tensorflow as tf

from tfcvr.export.raw_rows import rows_from_examples
from tfcvr.features import keys

UNSEEN_STRING = "__tfcvr_unseen__"
UNSEEN_INT_OFFSET = 10**12


def _read_vocab(vocab_dir, spec, limit=1000):
    if spec.vocab_file is None or vocab_dir is None:
        return []
    path = os.path.join(vocab_dir, spec.vocab_file)
    if not os.path.exists(path):
        return []
    tokens = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens.append(line.rstrip("\n"))
            if len(tokens) >= limit:
                break
    return tokens


def _token(spec, tokens, rng, unseen_rate):
    if spec.hash_buckets is not None or not tokens or rng.random() < unseen_rate:
        if spec.value_dtype == "string":
            return f"{UNSEEN_STRING}{int(rng.integers(0, 1000))}"
        return UNSEEN_INT_OFFSET + int(rng.integers(0, 1000))
    token = tokens[int(rng.integers(0, len(tokens)))]
    return token if spec.value_dtype == "string" else int(token)


def _numeric(spec, rng):
    if spec.min is not None and spec.max is not None and spec.max > spec.min:
        x = float(rng.uniform(spec.min, spec.max))
    else:
        x = float(spec.mean + spec.std * rng.normal())
    if spec.log:
        # Stats are of log1p(x); invert so the raw value lands in range.
        x = math.expm1(min(x, 50.0))
    return round(x, 4)


def synthetic_rows(schema, vocab_dir, num_rows=8, seed=0, missing_rate=0.1,
                   unseen_rate=0.1, keep_present=()):
    """`num_rows` raw rows built from the schema and vocabulary files.

    Args:
        schema: `tfcvr.features.Schema`.
        vocab_dir: str or None. Directory the `vocab_file`s are relative to;
            without a vocabulary file every id of that feature is unseen.
        num_rows: int.
        seed: int.
        missing_rate: float. Chance that a feature is absent from a row.
        unseen_rate: float. Chance that an id is not in the vocabulary.
        keep_present: feature names never made missing (required inputs).
    """
    if num_rows < 1:
        raise ValueError(f"num_rows must be >= 1. Received: {num_rows}")
    rng = np.random.default_rng(seed)
    vocabs = {f.name: _read_vocab(vocab_dir, f) for f in schema.categorical_features}
    rows = []
    for _ in range(num_rows):
        row = {}
        for f in schema.features:
            if f.name not in keep_present and rng.random() < missing_rate:
                continue
            if f.is_multi_valued:
                n = int(rng.integers(0, f.max_len + 2))
                row[f.name] = [
                    _token(f, vocabs[f.name], rng, unseen_rate)
                    for _ in range(n)
                ]
                if f.weighted:
                    row[f.name + keys.WEIGHT_SUFFIX] = [
                        round(float(w), 3) for w in rng.uniform(0.5, 1.5, n)
                    ]
            elif f.is_categorical:
                row[f.name] = _token(f, vocabs[f.name], rng, unseen_rate)
            else:
                row[f.name] = _numeric(f, rng)
        rows.append(row)
    return rows


def dataset_rows(data_dir, schema, num_rows=8, split=keys.EVAL_SPLIT):
    """The first `num_rows` raw rows of a dataset directory's split."""
    files = sorted(glob.glob(os.path.join(data_dir, split, "*.tfrecord*")))
    if not files:
        raise ValueError(f"No TFRecords for split {split!r} in {data_dir}")
    serialized = []
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        ds = tf.data.TFRecordDataset(path, compression_type=compression)
        for record in ds.take(num_rows - len(serialized)).as_numpy_iterator():
            serialized.append(record)
        if len(serialized) >= num_rows:
            break
    if not serialized:
        raise ValueError(f"The {split} split of {data_dir} has no records.")
    return rows_from_examples(serialized, schema)
