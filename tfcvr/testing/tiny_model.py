"""A tiny dataset directory and trained model directory, built in seconds.

For export/serving tests, the serving benchmark and documentation examples:
`write_tiny_dataset_dir` writes the layout of the Beam job (schema.json,
vocab/, gzip TFRecords of raw values, summary.json) for a schema with every
feature kind; `train_tiny_model` fits a registered estimator on it for one
epoch and writes the layout of `tfcvr train` (model.keras, schema.json,
vocab/, training.json).
"""

import json
import os

import numpy as np
import tensorflow as tf

from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import copy_encoding_files
from tfcvr.export.raw_rows import example_from_row
from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys

TRAINING_RECORD = "training.json"

_TAGS = ("sports", "music", "news", "tech", "food", "travel", "games")
_CITIES = ("paris", "lyon", "nice", "lille", "nantes", "rennes", "brest")
_DEVICES = ("ios", "android", "web", "tv")


def tiny_raw_rows(n, seed=0, unseen_fraction=0.05):
    """`n` raw impression rows with labels (python-typed log values).

    Users 1..40, items 1000..1049, 0..5 clicked items with weights, 0..3
    string tags, a city (sometimes missing), a hashed device, a lognormal
    price and an age that is sometimes missing. A fraction of rows carry
    ids never seen in training (user 999, item 9999, city "atlantis"), so
    they exercise the OOV buckets.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        unseen = rng.random() < unseen_fraction
        item = 9999 if unseen else int(rng.integers(1000, 1050))
        n_hist = int(rng.integers(0, 6))
        tags = [str(t) for t in rng.choice(_TAGS, int(rng.integers(0, 4)))]
        row = {
            "user": 999 if unseen else int(rng.integers(1, 41)),
            "item": item,
            "history": [int(v) for v in rng.integers(1000, 1050, n_hist)],
            "history" + keys.WEIGHT_SUFFIX: [
                float(round(w, 3)) for w in rng.uniform(0.5, 2.0, n_hist)
            ],
            "tags": tags,
            "city": (
                "atlantis" if unseen
                else None if rng.random() < 0.05
                else str(rng.choice(_CITIES))
            ),
            "device": str(rng.choice(_DEVICES)),
            "price": float(round(rng.lognormal(3.0, 1.0), 2)),
            "age": None if rng.random() < 0.1 else float(rng.integers(18, 70)),
        }
        score = (item % 3 - 1) * 0.8 + (0.5 if row["city"] == "paris" else 0)
        click = rng.random() < 1 / (1 + np.exp(-(score - 0.8)))
        convert = rng.random() < 1 / (1 + np.exp(-(score - 0.3)))
        row[keys.CLICK] = int(click)
        row[keys.CONVERSION] = int(click and convert)
        row[keys.ROW_ID] = float(i)
        rows.append(row)
    return rows


def _vocab(values):
    counts = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))


def _numeric_stats(values, log=False, clip_max=None):
    x = np.array([v for v in values if v is not None], dtype="float64")
    if log:
        x = np.log1p(np.maximum(x, 0))
    if clip_max is not None:
        x = np.minimum(x, clip_max)
    std = float(x.std())
    return {
        "mean": float(x.mean()),
        "std": std if std > 0 else 1.0,
        "min": float(x.min()),
        "max": float(x.max()),
    }


def tiny_log_schema(train_rows, vocab_dir=None):
    """The schema of `tiny_raw_rows`, with vocabularies from `train_rows`.

    Writes the vocabulary files under `vocab_dir/vocab/` when given.
    """
    vocabs = {
        "user": _vocab(r["user"] for r in train_rows),
        "item": _vocab(
            [r["item"] for r in train_rows]
            + [v for r in train_rows for v in r["history"]]
        ),
        "tags": _vocab(v for r in train_rows for v in r["tags"]),
        "city": _vocab(r["city"] for r in train_rows if r["city"] is not None),
    }
    if vocab_dir is not None:
        os.makedirs(os.path.join(vocab_dir, keys.VOCAB_DIR), exist_ok=True)
        for name, tokens in vocabs.items():
            path = os.path.join(vocab_dir, keys.VOCAB_DIR, f"{name}.txt")
            with open(path, "w") as f:
                f.write("".join(t + "\n" for t in tokens))

    def vocab_file(name):
        return f"{keys.VOCAB_DIR}/{name}.txt"

    features = [
        FeatureSpec("user", keys.CATEGORICAL_INT,
                    vocab_size=len(vocabs["user"]),
                    vocab_file=vocab_file("user")),
        FeatureSpec("item", keys.CATEGORICAL_INT,
                    vocab_size=len(vocabs["item"]),
                    vocab_file=vocab_file("item"), embedding_group="item"),
        FeatureSpec("history", keys.MULTI_CATEGORICAL,
                    vocab_size=len(vocabs["item"]),
                    vocab_file=vocab_file("item"), embedding_group="item",
                    max_len=4, weighted=True),
        FeatureSpec("tags", keys.MULTI_CATEGORICAL, value_dtype="string",
                    vocab_size=len(vocabs["tags"]),
                    vocab_file=vocab_file("tags"), max_len=3),
        FeatureSpec("city", keys.CATEGORICAL_STRING,
                    vocab_size=len(vocabs["city"]),
                    vocab_file=vocab_file("city")),
        FeatureSpec("device", keys.CATEGORICAL_STRING, hash_buckets=8),
        FeatureSpec("price", keys.NUMERIC, log=True, clip_max=8.0,
                    **_numeric_stats([r["price"] for r in train_rows],
                                     log=True, clip_max=8.0)),
        FeatureSpec("age", keys.NUMERIC, default=40.0,
                    **_numeric_stats([r["age"] for r in train_rows])),
    ]
    return Schema(
        features=features,
        user_id="user",
        item_id="item",
        extra_columns=(keys.ROW_ID,),
        metadata={"source": "tfcvr.testing.tiny_model"},
    )


def _write_split(path, rows, schema):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(path, options) as writer:
        for row in rows:
            example = example_from_row(row, schema)
            for label in schema.labels:
                example.features.feature[label].int64_list.value.append(
                    int(row[label])
                )
            for column in schema.extra_columns:
                example.features.feature[column].float_list.value.append(
                    float(row[column])
                )
            writer.write(example.SerializeToString())


def write_tiny_dataset_dir(path, rows=256, eval_rows=64, seed=0,
                           train_shards=1, relabel=None, extra_columns=None):
    """Writes a dataset directory of `tiny_raw_rows`; returns `path`.

    `train_shards` splits the training rows over that many files (a
    multi-worker run shards by file); `relabel(row)` changes a training
    row's labels in place (e.g. a split without clicks); `extra_columns`
    (dict name -> function of a row -> float) adds stored non-feature
    columns, e.g. a logged propensity.
    """
    extra_columns = extra_columns or {}
    train = tiny_raw_rows(rows, seed=seed, unseen_fraction=0.0)
    if relabel is not None:
        for row in train:
            relabel(row)
    evaluation = tiny_raw_rows(eval_rows, seed=seed + 1)
    for row in train + evaluation:
        row.update({name: fn(row) for name, fn in extra_columns.items()})
    os.makedirs(path, exist_ok=True)
    schema = tiny_log_schema(train, vocab_dir=path)
    if extra_columns:
        schema = schema.replace(
            extra_columns=schema.extra_columns + tuple(extra_columns))
    schema.save(path)
    for shard in range(train_shards):
        _write_split(
            os.path.join(path, keys.TRAIN_SPLIT,
                         f"part-{shard:05d}.tfrecord.gz"),
            train[shard::train_shards], schema,
        )
    _write_split(
        os.path.join(path, keys.EVAL_SPLIT, "part-00000.tfrecord.gz"),
        evaluation, schema,
    )
    with open(os.path.join(path, keys.SUMMARY_FILE), "w") as f:
        json.dump(
            {
                "rows_read": rows + eval_rows,
                "rows_written": {
                    keys.TRAIN_SPLIT: rows, keys.EVAL_SPLIT: eval_rows
                },
                "rows_rejected": {},
            },
            f,
        )
    return path


def train_tiny_model(
    data_dir,
    model_dir,
    estimator="esmm",
    epochs=1,
    batch_size=64,
    seed=0,
    **model_kwargs,
):
    """Fits a registered estimator on a dataset directory and saves it.

    Writes `model_dir/model.keras`, copies `schema.json` and `vocab/` next
    to it and records the dataset directory in `training.json`. Returns the
    trained model.
    """
    import keras

    from tfcvr.data.dataset_dir import DatasetDir
    from tfcvr.models import get_estimator

    keras.utils.set_random_seed(seed)
    data = DatasetDir(data_dir)
    kwargs = {"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}}
    kwargs.update(model_kwargs)
    model = get_estimator(estimator)(schema=data.schema, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(
        data.dataset(keys.TRAIN_SPLIT, batch_size, seed=seed),
        epochs=epochs,
        verbose=0,
    )
    os.makedirs(model_dir, exist_ok=True)
    model.save(os.path.join(model_dir, MODEL_FILE))
    copy_encoding_files(data_dir, model_dir)
    with open(os.path.join(model_dir, TRAINING_RECORD), "w") as f:
        json.dump(
            {"model": estimator, "data_dir": os.path.abspath(data_dir)}, f
        )
    return model
